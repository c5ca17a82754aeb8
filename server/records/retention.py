"""Retention: delete what has outlived its retention period — rows and files — and audit each deletion.

Periods per record type come from CAUNOI_RETENTION_DAYS (JSON, merged over the defaults below).
Defaults follow Thông tư 33/2025/TT-BYT as collected in ../shared/domain/vn-telemedicine-rules.md:
outpatient medical records 10 years, registers ("sổ, sách") 5 years; longer periods for psychiatric,
accident or death records are set per facility by raising the document periods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.models import LoginSession
from server.db.base import utcnow
from server.records.audit import AuditContext, Outcome, audit_row
from server.records.documents.models import Document, DocumentKind, DocumentVersion
from server.records.documents.storage import LocalStorage
from server.scheduling.models import Booking, CalendarFeed, ReminderDelivery

log = logging.getLogger(__name__)

TEN_YEARS = 3653
DEFAULT_RETENTION_DAYS: dict[str, int] = {
    **{f"document.{kind.value}": TEN_YEARS for kind in DocumentKind},
    "booking": 1827,  # a register of appointments: 5 years
    "login_session": 30,  # after it expired
    "reminder_delivery": 365,
    "calendar_feed": 365,  # after it was revoked
}
SYSTEM = AuditContext(actor_id=None, actor_role="system")


@dataclass
class Report:
    deleted: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, count: int = 1) -> None:
        if count:
            self.deleted[kind] = self.deleted.get(kind, 0) + count


def policy(overrides: Mapping[str, int]) -> dict[str, int]:
    unknown = set(overrides) - set(DEFAULT_RETENTION_DAYS)
    if unknown:
        raise ValueError(f"unknown record types in CAUNOI_RETENTION_DAYS: {', '.join(sorted(unknown))}")
    return {**DEFAULT_RETENTION_DAYS, **overrides}


async def _delete_documents(db: AsyncSession, storage: LocalStorage, days: Mapping[str, int], now: datetime,
                            report: Report) -> list[str]:
    keys: list[str] = []
    for kind in DocumentKind:
        cutoff = now - timedelta(days=days[f"document.{kind.value}"])
        expired = (await db.execute(select(Document).where(Document.kind == kind, Document.created_at < cutoff))
                   ).scalars().all()
        for document in expired:
            keys += [k for k in (await db.execute(select(DocumentVersion.storage_key).where(
                DocumentVersion.document_id == document.id))).scalars() if k]
            db.add(audit_row(SYSTEM, "retention.delete", Outcome.SUCCESS, target_type="document",
                             target_id=document.id, tenant_id=document.tenant_id))
            await db.delete(document)  # versions and signatures go with it (ON DELETE CASCADE)
            report.add(f"document.{kind.value}")
    return keys


async def apply_retention(sessions: async_sessionmaker[AsyncSession], storage: LocalStorage,
                          days: Mapping[str, int], *, now: datetime | None = None) -> Report:
    """Delete everything past its period; files are removed once the rows are gone for good."""
    now = now or utcnow()
    report = Report()
    async with sessions.begin() as db:
        keys = await _delete_documents(db, storage, days, now, report)
        bookings = (await db.execute(select(Booking.id, Booking.tenant_id).where(
            Booking.starts_at < now - timedelta(days=days["booking"])))).all()
        for booking_id, tenant_id in bookings:
            db.add(audit_row(SYSTEM, "retention.delete", Outcome.SUCCESS, target_type="booking",
                             target_id=booking_id, tenant_id=tenant_id))
        if bookings:
            await db.execute(delete(ReminderDelivery).where(ReminderDelivery.booking_id.in_([b for b, _ in bookings])))
            await db.execute(delete(Booking).where(Booking.id.in_([b for b, _ in bookings])))
            report.add("booking", len(bookings))
        for kind, statement in (
            ("login_session", delete(LoginSession).where(
                LoginSession.expires_at < now - timedelta(days=days["login_session"]))),
            ("reminder_delivery", delete(ReminderDelivery).where(
                ReminderDelivery.claimed_at < now - timedelta(days=days["reminder_delivery"]))),
            ("calendar_feed", delete(CalendarFeed).where(
                CalendarFeed.revoked_at < now - timedelta(days=days["calendar_feed"]))),
        ):
            count = int(getattr(await db.execute(statement), "rowcount", 0) or 0)
            if count:
                # Technical rows, not health data: one audit row per run and kind.
                db.add(audit_row(SYSTEM, "retention.delete", Outcome.SUCCESS, target_type=kind,
                                 target_id=f"count={count}"))
                report.add(kind, count)
    for key in keys:
        await storage.delete(key)
    return report


def retention_ctx(interval_seconds: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running the retention job every ``interval_seconds``."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        from server.keys import DOCUMENT_STORAGE, SESSIONS, SETTINGS

        days = policy(app[SETTINGS].retention_days)

        async def loop() -> None:
            while True:
                try:
                    report = await apply_retention(app[SESSIONS], app[DOCUMENT_STORAGE], days)
                    if report.deleted:
                        log.info("retention deleted %s", report.deleted)
                except Exception:
                    log.exception("retention job failed; retrying at the next interval")
                await asyncio.sleep(interval_seconds)

        task = asyncio.create_task(loop(), name="retention")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
