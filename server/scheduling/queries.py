"""Read-side queries of the scheduling API: names for bookings, "my bookings" across resources, and
slots that an existing booking of another length still covers.

Kept apart from service.py (booking, cancelling, moving: the write path) so that both can change
without stepping on each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import User
from server.scheduling.models import Booking, BookingStatus, Resource
from server.scheduling.slots import Slot


async def names_of(db: AsyncSession, user_ids: Iterable[str | None]) -> dict[str, str]:
    """Display names by user id, in one query (the callers decide who may see whose name)."""
    ids = {user_id for user_id in user_ids if user_id}
    if not ids:
        return {}
    rows = await db.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}


async def bookings_of_user(
    db: AsyncSession, user_id: str, staff_tenants: set[str], start: datetime, end: datetime,
    status: BookingStatus | None = None,
) -> list[tuple[Booking, Resource]]:
    """Bookings for the user, and those the user made for someone else in a tenant where the user
    is staff now (a nurse who booked for a patient). Someone who is no longer staff there no
    longer sees the others' bookings they once made."""
    made_for_others = Booking.created_by == user_id
    if staff_tenants:
        mine = or_(Booking.subject_user_id == user_id, made_for_others & Booking.tenant_id.in_(staff_tenants))
    else:
        mine = Booking.subject_user_id == user_id
    query = (select(Booking, Resource).join(Resource, Resource.id == Booking.resource_id)
             .where(mine, Booking.starts_at >= start, Booking.starts_at < end)
             .order_by(Booking.starts_at, Booking.id))
    if status is not None:
        query = query.where(Booking.status == status)
    return [(booking, resource) for booking, resource in (await db.execute(query)).all()]


async def active_periods(db: AsyncSession, resource_id: str, start: datetime, end: datetime
                         ) -> list[tuple[datetime, datetime]]:
    """(start, end) of the active bookings that overlap [start, end)."""
    rows = await db.execute(select(Booking.starts_at, Booking.ends_at).where(
        Booking.resource_id == resource_id, Booking.status == BookingStatus.BOOKED,
        Booking.starts_at < end, Booking.ends_at > start))
    return [(row[0], row[1]) for row in rows]


def count_overlaps(slots: Sequence[Slot], periods: Sequence[tuple[datetime, datetime]], *,
                   include_full: bool = False) -> list[Slot]:
    """Slots with the seats of bookings that overlap them but start at another time.

    After a resource's slot length or buffer changes, existing bookings keep their times, and the
    new grid may put a slot across one of them (a 07:30–08:00 booking under a 20-minute grid
    overlaps the 07:50 slot). Such a booking holds its seat there too; a slot left with no seat is
    not offered (``include_full`` keeps it, counted full: FHIR lists it as busy). The booking path
    refuses such a slot too (service.claim_seat, fast_booking.BOOK). Bookings that start with the
    slot are already counted by the slot computation.
    """
    result = []
    for slot in slots:
        extra = sum(1 for begin, finish in periods if begin != slot.start and begin < slot.end and slot.start < finish)
        counted = replace(slot, booked=slot.booked + extra) if extra else slot
        if counted.free or include_full:
            result.append(counted)
    return result


async def upcoming_count(db: AsyncSession, resource_id: str, now: datetime) -> int:
    count = await db.scalar(select(func.count()).select_from(Booking).where(
        Booking.resource_id == resource_id, Booking.status == BookingStatus.BOOKED, Booking.starts_at >= now))
    return int(count or 0)
