"""Searching the audit log: one query shared by the admin page, its CSV export and FHIR AuditEvent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.records.audit import AuditEvent, Outcome


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Every field narrows the search; None means "any". Times are UTC, ``not_before`` <= at < ``before``."""

    event_id: str | None = None
    actor_id: str | None = None
    target_id: str | None = None
    target_type: str | None = None
    action: str | None = None
    outcome: Outcome | None = None
    not_before: datetime | None = None
    before: datetime | None = None

    def narrowed(self, not_before: datetime | None = None, before: datetime | None = None) -> AuditFilter:
        """This filter with a further time bound (several bounds combine to their intersection)."""
        low = max(filter(None, (self.not_before, not_before)), default=None)
        high = min(filter(None, (self.before, before)), default=None)
        return replace(self, not_before=low, before=high)


def _conditions(f: AuditFilter, tenants: frozenset[str] | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if tenants is not None:
        # An admin sees the rows of their own tenants only; None is the platform admin's "all".
        conditions.append(AuditEvent.tenant_id.in_(sorted(tenants)))
    if f.event_id is not None:
        conditions.append(AuditEvent.id == f.event_id)
    if f.actor_id is not None:
        conditions.append(AuditEvent.actor_id == f.actor_id)
    if f.target_id is not None:
        conditions.append(AuditEvent.target_id == f.target_id)
    if f.target_type is not None:
        conditions.append(AuditEvent.target_type == f.target_type)
    if f.action is not None:
        conditions.append(AuditEvent.action == f.action)
    if f.outcome is not None:
        conditions.append(AuditEvent.outcome == f.outcome)
    if f.not_before is not None:
        conditions.append(AuditEvent.at >= f.not_before)
    if f.before is not None:
        conditions.append(AuditEvent.at < f.before)
    return conditions


def audit_query(f: AuditFilter, tenants: frozenset[str] | None) -> Select[Any]:
    """Newest first; the id breaks ties so that pages never overlap or skip rows."""
    return (select(AuditEvent).where(and_(True, *_conditions(f, tenants)))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()))


async def search_audit(
    db: AsyncSession, f: AuditFilter, tenants: frozenset[str] | None, *, limit: int, offset: int = 0
) -> tuple[Sequence[AuditEvent], int]:
    """One page of matching rows and the number of all matching rows."""
    total = (await db.execute(
        select(func.count()).select_from(AuditEvent).where(and_(True, *_conditions(f, tenants)))
    )).scalar_one()
    rows: Sequence[AuditEvent] = (
        await db.execute(audit_query(f, tenants).limit(limit).offset(offset))).scalars().all()
    return rows, int(total)
