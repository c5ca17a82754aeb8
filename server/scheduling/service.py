"""Book, cancel, reschedule. The database guarantees no double booking; Python only picks a seat.

Each booking claims one seat (0 … capacity-1) of one slot with ``INSERT … ON CONFLICT DO NOTHING``
against the partial unique index (resource, start, seat) of active bookings. Two transactions
cannot both win a seat — PostgreSQL makes the second wait for the first and then skip, SQLite
serialises writers — so a slot with capacity 1 gets exactly one booking, and a class of 30 exactly 30.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.base import new_id, utcnow
from server.records.audit import AuditContext
from server.scheduling.fast_booking import CachedResource, Contact, FastBooking
from server.scheduling.models import (
    AvailabilityException,
    AvailabilityRule,
    Booking,
    BookingStatus,
    ExceptionKind,
    Resource,
)
from server.scheduling.slots import Period, Policy, Slot, Window, free_slots, slot_at


class SchedulingError(Exception):
    code = "scheduling_error"
    status = 400


class SlotUnavailable(SchedulingError):
    """The time is not a slot of this resource (closed, outside hours, too soon, too far)."""

    code = "slot_unavailable"
    status = 422


SWITCHED_OFF = "this calendar is not open for booking"


class SlotTaken(SchedulingError):
    """Every seat of the slot is taken: somebody else booked first."""

    code = "slot_taken"
    status = 409


class NotAMember(SchedulingError):
    """The person booked for does not belong to the resource's tenant."""

    code = "invalid_body"
    status = 400


@dataclass(frozen=True, slots=True)
class NewBooking:
    """A booking just inserted by the fast path: a plain record (an ORM instance costs more to build
    than the slot check), which the answer and the confirmation read like a Booking."""

    id: str
    resource_id: str
    tenant_id: str
    starts_at: datetime
    ends_at: datetime
    seat: int
    subject_user_id: str
    note: str
    created_by: str
    created_at: datetime
    contact: Contact | None  # the subject's, for the confirmation

    @property
    def status(self) -> BookingStatus:
        return BookingStatus.BOOKED


class StaleCalendar(Exception):
    """The cached calendar no longer matches the database: reload it and decide again."""


class BookingNotActive(SchedulingError):
    code = "booking_not_active"
    status = 409


@dataclass(frozen=True)
class Calendar:
    """Everything slot computation needs about one resource, read in one go."""

    policy: Policy
    windows: list[Window]
    closed: list[Period]
    opened: list[Period]


def policy_of(resource: Resource) -> Policy:
    return Policy(
        timezone=resource.timezone,
        slot_minutes=resource.slot_minutes,
        buffer_minutes=resource.buffer_minutes,
        min_notice_minutes=resource.min_notice_minutes,
        horizon_days=resource.horizon_days,
        capacity=resource.capacity,
    )


async def load_calendar(db: AsyncSession, resource: Resource) -> Calendar:
    rules = (await db.execute(select(AvailabilityRule).where(AvailabilityRule.resource_id == resource.id))).scalars()
    exceptions = (
        await db.execute(select(AvailabilityException).where(AvailabilityException.resource_id == resource.id))
    ).scalars().all()
    return Calendar(
        policy=policy_of(resource),
        windows=[Window(r.weekday, r.start_time, r.end_time, r.valid_from, r.valid_until) for r in rules],
        closed=[Period(e.starts_at, e.ends_at) for e in exceptions if e.kind == ExceptionKind.CLOSED],
        opened=[Period(e.starts_at, e.ends_at) for e in exceptions if e.kind == ExceptionKind.OPEN],
    )


async def booked_starts(db: AsyncSession, resource_id: str, start: datetime, end: datetime) -> list[datetime]:
    rows = await db.execute(
        select(Booking.starts_at).where(
            Booking.resource_id == resource_id,
            Booking.status == BookingStatus.BOOKED,
            Booking.starts_at >= start - timedelta(days=1),
            Booking.starts_at < end,
        )
    )
    return [row[0] for row in rows]


async def slots_between(
    db: AsyncSession, resource: Resource, start: datetime, end: datetime, *, now: datetime | None = None,
    include_full: bool = False,
) -> list[Slot]:
    calendar = await load_calendar(db, resource)
    return free_slots(
        calendar.windows, calendar.closed, calendar.opened, await booked_starts(db, resource.id, start, end),
        calendar.policy, now=now or utcnow(), start=start, end=end, include_full=include_full,
    )


async def check_slot(db: AsyncSession, resource: Resource, start: datetime, *, now: datetime | None = None) -> Slot:
    """The slot at ``start`` if the rules allow it (ignoring seats, which the insert decides)."""
    if not resource.active:
        raise SlotUnavailable(SWITCHED_OFF)
    calendar = await load_calendar(db, resource)
    found = slot_at(start, calendar.windows, calendar.closed, calendar.opened, calendar.policy, now=now or utcnow())
    if found is None:
        raise SlotUnavailable("this time is not an available slot")
    return Slot(found[0], found[1], resource.capacity, 0)


def _insert(db: AsyncSession) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if db.get_bind().dialect.name == "postgresql" else sqlite.Insert


async def claim_seat(
    db: AsyncSession,
    resource: Resource,
    slot: Slot,
    *,
    subject_user_id: str | None,
    actor_id: str | None,
    note: str = "",
    rescheduled_from_id: str | None = None,
) -> Booking:
    """Insert the booking in the first free seat; raise SlotTaken if none is left."""
    insert = _insert(db)
    seen = 0
    if resource.capacity > 1:
        # Start at the number of seats we can see taken: under contention this skips most conflicts.
        seen = int(await db.scalar(select(func.count()).select_from(Booking).where(
            Booking.resource_id == resource.id, Booking.starts_at == slot.start,
            Booking.status == BookingStatus.BOOKED)) or 0)
    for seat in [*range(seen, resource.capacity), *range(0, seen)]:
        booking_id = new_id()
        statement = insert(Booking).values(
            id=booking_id, resource_id=resource.id, tenant_id=resource.tenant_id, starts_at=slot.start,
            ends_at=slot.end, seat=seat, status=BookingStatus.BOOKED, subject_user_id=subject_user_id, note=note,
            created_by=actor_id, created_at=utcnow(), cancel_reason="", rescheduled_from_id=rescheduled_from_id,
        ).on_conflict_do_nothing().returning(Booking)
        booking = (await db.scalars(statement)).one_or_none()
        if booking is not None:
            return booking
    raise SlotTaken("this slot has just been booked by someone else; please choose another time")


async def book(
    db: AsyncSession, resource: Resource, start: datetime, *, subject_user_id: str | None, actor_id: str | None,
    note: str = "", now: datetime | None = None,
) -> Booking:
    slot = await check_slot(db, resource, start, now=now)
    return await claim_seat(db, resource, slot, subject_user_id=subject_user_id, actor_id=actor_id, note=note)


async def cancel(db: AsyncSession, booking: Booking, *, actor_id: str | None, reason: str = "") -> Booking:
    if booking.status != BookingStatus.BOOKED:
        raise BookingNotActive("this booking is already cancelled")
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_by = actor_id
    booking.cancelled_at = utcnow()
    booking.cancel_reason = reason[:200]
    await db.flush()
    return booking


async def reschedule(
    db: AsyncSession, booking: Booking, resource: Resource, start: datetime, *, actor_id: str | None,
    now: datetime | None = None,
) -> Booking:
    """Move a booking: the new seat is claimed first, so a failed move leaves the old one intact."""
    if booking.status != BookingStatus.BOOKED:
        raise BookingNotActive("only an active booking can be moved")
    slot = await check_slot(db, resource, start, now=now)
    moved = await claim_seat(db, resource, slot, subject_user_id=booking.subject_user_id, actor_id=actor_id,
                             note=booking.note, rescheduled_from_id=booking.id)
    await cancel(db, booking, actor_id=actor_id, reason="rescheduled")
    return moved


async def book_cached(
    fast: FastBooking, resource: CachedResource, start: datetime, *, subject_user_id: str, actor_id: str,
    note: str, context: AuditContext, now: datetime | None = None,
) -> NewBooking:
    """Book on PostgreSQL in one statement per try (see fast_booking): slot rules checked here against
    the cached calendar, seat and audit row in the database. Raises StaleCalendar when the cache is
    out of date: the caller reloads it (authorization included) and calls again."""
    now = now or utcnow()
    if not resource.active:
        raise SlotUnavailable(SWITCHED_OFF)
    found = slot_at(start, resource.windows, resource.closed, resource.opened, resource.policy, now=now)
    if found is None:
        raise SlotUnavailable("this time is not an available slot")
    slot_start, slot_end = found
    # Each lost race means another booking took the seat tried, so capacity + 1 tries settle it.
    for _ in range(resource.capacity + 1):
        booking_id, result = await fast.attempt(resource, slot_start, slot_end, subject_user_id=subject_user_id,
                                                actor_id=actor_id, note=note, now=now, context=context)
        if not result.fresh:
            raise StaleCalendar(resource.id)
        if not result.member:
            raise NotAMember("subject_user_id: not a member of this tenant")
        if result.seat is not None:
            return NewBooking(booking_id, resource.id, resource.tenant_id, slot_start, slot_end, result.seat,
                              subject_user_id, note, actor_id, now, result.contact)
        if result.free_seat is None or resource.capacity == 1:
            break
    raise SlotTaken("this slot has just been booked by someone else; please choose another time")
