"""Book, cancel, reschedule. The database guarantees no double booking; Python only picks a seat.

Each booking claims one seat (0 … capacity-1) of one slot with ``INSERT … ON CONFLICT DO NOTHING``
against the partial unique index (resource, start, seat) of active bookings. Two transactions
cannot both win a seat — PostgreSQL makes the second wait for the first and then skip, SQLite
serialises writers — so a slot with capacity 1 gets exactly one booking, and a class of 30 exactly 30.

Bookings that overlap without starting together (after a change of slot length, buffer, zone or
hours, an old booking lies across a slot of the new grid; a rule and an "open" period may also make
grids that cross) hold their seat over their whole time too: on PostgreSQL the exclusion constraint
of migration 0014 refuses one seat at overlapping times, so the same insert skips it; on SQLite,
which has no such constraint, claim_seat checks the overlaps right after its insert, while it holds
SQLite's only write lock (no other booking can commit in between). A slot over which ``capacity``
active bookings already lie is full, as the slot list counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
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
    """Every seat of the slot is taken: somebody else booked first, or older bookings that start at
    another time overlap it."""

    code = "slot_taken"
    status = 409


TAKEN = "this slot has just been booked by someone else; please choose another time"
OVERLAPS = ("this time overlaps another booking of this calendar that starts at another time (for example "
            "one made before the slot length changed); please choose one of the listed times")


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


def _overlaps(db: AsyncSession, start: datetime, end: datetime) -> ColumnElement[bool]:
    """Active bookings overlapping [start, end): on PostgreSQL through the exclusion constraint's index."""
    if db.get_bind().dialect.name == "postgresql":
        return func.tstzrange(Booking.starts_at, Booking.ends_at).op("&&")(func.tstzrange(start, end))
    return (Booking.starts_at < end) & (Booking.ends_at > start)


async def overlapping(db: AsyncSession, resource_id: str, start: datetime, end: datetime
                      ) -> list[tuple[str, datetime, int]]:
    """(id, start, seat) of the active bookings of the resource that overlap [start, end)."""
    rows = await db.execute(select(Booking.id, Booking.starts_at, Booking.seat).where(
        Booking.resource_id == resource_id, Booking.status == BookingStatus.BOOKED,
        _overlaps(db, start, end)))
    return [(row[0], row[1], row[2]) for row in rows]


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
    """Insert the booking in the first free seat; raise SlotTaken if none is left (see the module's
    docstring for bookings that overlap without starting together)."""
    insert = _insert(db)
    exclusion = db.get_bind().dialect.name == "postgresql"  # the database refuses overlapping seats itself
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
        if booking is None:
            continue
        # Our insert holds the write lock on SQLite; on PostgreSQL the bookings committed meanwhile are
        # seen by this statement, and those still in flight hold other seats (the constraint).
        others = [row for row in await overlapping(db, resource.id, slot.start, slot.end) if row[0] != booking_id]
        if len(others) < resource.capacity and (exclusion or all(taken != seat for _, _, taken in others)):
            return booking
        await db.execute(delete(Booking).where(Booking.id == booking_id).execution_options(synchronize_session=False))
        db.expunge(booking)
        if len(others) >= resource.capacity:
            break
    raise SlotTaken(await _why_taken(db, resource.id, slot))


async def _why_taken(db: AsyncSession, resource_id: str, slot: Slot) -> str:
    others = await overlapping(db, resource_id, slot.start, slot.end)
    return OVERLAPS if any(start != slot.start for _, start, _ in others) else TAKEN


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
    """Move a booking, in the caller's transaction: the old booking is released and the new seat
    claimed in it, so a move to a time that overlaps the booking's own (an old booking onto the new
    grid) is not refused because of itself; a failed move raises, the caller's transaction rolls
    back and the old booking is intact."""
    if booking.status != BookingStatus.BOOKED:
        raise BookingNotActive("only an active booking can be moved")
    slot = await check_slot(db, resource, start, now=now)
    await cancel(db, booking, actor_id=actor_id, reason="rescheduled")
    return await claim_seat(db, resource, slot, subject_user_id=booking.subject_user_id, actor_id=actor_id,
                            note=booking.note, rescheduled_from_id=booking.id)


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
    # Lost races on seats that looked free are retried above; this is a full slot, or a lost last seat.
    raise SlotTaken(OVERLAPS if result.overlapped else TAKEN)
