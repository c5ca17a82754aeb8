"""Booking reminders and confirmations through the configured notifiers.

Each reminder is claimed in ``reminder_deliveries`` (unique per booking, offset and channel) before
it is sent: a restart, or a second node running the same job, never sends it twice. Offsets form
windows: with 1440 and 15 minutes, the "24 h" reminder is due from 24 h until 15 min before the
start, then the "15 min" one; a node that was down during a whole window skips that reminder rather
than sending a stale one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.models import User
from server.db.base import new_id, utcnow
from server.i18n import Translator, locale_var
from server.notify.base import Attachment, Notification, Notifier, NotifyError
from server.scheduling.ical import BookingLike, ResourceLike, booking_event, calendar
from server.scheduling.models import Booking, BookingStatus, ReminderDelivery, ReminderStatus, Resource

log = logging.getLogger(__name__)


def due_offset(starts_at: datetime, now: datetime, offsets: Sequence[int]) -> int | None:
    """The offset (minutes) whose window contains ``now``, for a booking starting at ``starts_at``."""
    ordered = sorted(offsets, reverse=True)
    for index, offset in enumerate(ordered):
        next_offset = ordered[index + 1] if index + 1 < len(ordered) else 0
        if starts_at - timedelta(minutes=offset) <= now < starts_at - timedelta(minutes=next_offset):
            return offset
    return None


def describe(translator: Translator, locale: str, booking: Booking, resource: Resource) -> tuple[str, str]:
    """(subject, body) of a reminder in the recipient's language and the resource's zone."""
    token = locale_var.set(locale)
    try:
        _ = translator.gettext
        local = booking.starts_at.astimezone(ZoneInfo(resource.timezone))
        when = local.strftime("%H:%M %d/%m/%Y")
        subject = _("Reminder: appointment at {when}").format(when=when)
        body = _("You have an appointment with {what} at {when}.").format(what=resource.name, when=when)
        return subject, body
    finally:
        locale_var.reset(token)


def confirmation(translator: Translator, locale: str, booking: BookingLike, resource: ResourceLike, *,
                 with_ics: bool = True) -> Notification:
    token = locale_var.set(locale)
    try:
        _ = translator.gettext
        when = booking.starts_at.astimezone(ZoneInfo(resource.timezone)).strftime("%H:%M %d/%m/%Y")
        subject = _("Booking confirmed: {when}").format(when=when)
        body = _("Your booking with {what} at {when} is confirmed.").format(what=resource.name, when=when)
        if not with_ics:
            return Notification(subject=subject, body=body)
        event = booking_event(booking, resource, summary=resource.name, stamp=utcnow())
        ics = calendar(resource.name, [event], method="PUBLISH")
        return Notification(subject=subject, body=body,
                            attachments=(Attachment("booking.ics", "text/calendar", ics),))
    finally:
        locale_var.reset(token)


async def _claim(db: AsyncSession, booking_id: str, offset: int, channel: str) -> str | None:
    insert = postgresql.Insert if db.get_bind().dialect.name == "postgresql" else sqlite.Insert
    claim_id = new_id()
    statement = insert(ReminderDelivery).values(
        id=claim_id, booking_id=booking_id, offset_minutes=offset, channel=channel,
        status=ReminderStatus.SENDING, claimed_at=utcnow(), error="",
    ).on_conflict_do_nothing().returning(ReminderDelivery.id)
    return (await db.execute(statement)).scalar_one_or_none()


async def send_due_reminders(
    sessions: async_sessionmaker[AsyncSession], notifiers: Sequence[Notifier], translator: Translator,
    offsets: Sequence[int], default_locale: str, *, now: datetime | None = None,
) -> int:
    """Send every reminder due now; returns how many deliveries succeeded."""
    now = now or utcnow()
    if not offsets or not notifiers:
        return 0
    horizon = now + timedelta(minutes=max(offsets))
    async with sessions() as db:
        rows = (await db.execute(
            select(Booking, Resource, User)
            .join(Resource, Resource.id == Booking.resource_id)
            .join(User, User.id == Booking.subject_user_id)
            .where(Booking.status == BookingStatus.BOOKED, Booking.starts_at > now, Booking.starts_at <= horizon)
        )).all()
    sent = 0
    for booking, resource, user in rows:
        offset = due_offset(booking.starts_at, now, offsets)
        if offset is None:
            continue
        subject, body = describe(translator, user.locale or default_locale, booking, resource)
        notification = Notification(subject=subject, body=body, email=user.email, phone=user.phone)
        for notifier in notifiers:
            if not notifier.accepts(notification):
                continue
            async with sessions.begin() as db:
                claim = await _claim(db, booking.id, offset, notifier.channel)
            if claim is None:
                continue  # another node, or an earlier run, has it
            status, error = ReminderStatus.SENT, ""
            try:
                await notifier.send(notification)
                sent += 1
            except NotifyError as exc:
                status, error = ReminderStatus.FAILED, str(exc)[:200]
                log.warning("reminder %s for booking %s failed: %s", notifier.channel, booking.id, exc)
            async with sessions.begin() as db:
                delivery = await db.get(ReminderDelivery, claim)
                if delivery is not None:
                    delivery.status, delivery.error, delivery.finished_at = status, error, utcnow()
    return sent


class Recipient(Protocol):
    """Where a message goes: a User, or the contact details the booking statement returned."""

    @property
    def email(self) -> str: ...
    @property
    def phone(self) -> str | None: ...


async def send_confirmation(
    notifiers: Sequence[Notifier], translator: Translator, locale: str, booking: BookingLike,
    resource: ResourceLike, user: Recipient,
) -> None:
    reach = Notification(subject="", body="", email=user.email, phone=user.phone)
    channels = [notifier for notifier in notifiers if notifier.accepts(reach)]
    if not channels:
        return
    # The .ics costs more CPU than the rest of a booking: build it only for a channel that carries it.
    base = confirmation(translator, locale, booking, resource,
                        with_ics=any(notifier.carries_attachments for notifier in channels))
    notification = Notification(subject=base.subject, body=base.body, email=user.email, phone=user.phone,
                                attachments=base.attachments)
    for notifier in channels:
        if notifier.accepts(notification):
            try:
                await notifier.send(notification)
            except NotifyError as exc:
                log.warning("confirmation %s for booking %s failed: %s", notifier.channel, booking.id, exc)


def reminders_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context running the reminder job every CAUNOI_REMINDER_INTERVAL_SECONDS."""
    return _run_reminders(app)


async def _run_reminders(app: web.Application) -> AsyncIterator[None]:
    from server.keys import NOTIFIERS, SESSIONS, SETTINGS, TRANSLATOR

    settings = app[SETTINGS]
    notifiers: list[Notifier] = app[NOTIFIERS]

    async def loop() -> None:
        while True:
            try:
                await send_due_reminders(app[SESSIONS], notifiers, app[TRANSLATOR],
                                         settings.reminder_offsets_minutes, settings.default_locale)
            except Exception:
                log.exception("reminder job failed; retrying at the next interval")
            await asyncio.sleep(settings.reminder_interval_seconds)

    task = asyncio.create_task(loop(), name="reminders")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
