"""Demo class: the teacher hosts, five students take part."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from server.rooms.models import Room, RoomKind, RoomMember, RoomRole

if TYPE_CHECKING:
    from server.demo import Demo


async def seed_demo(db: AsyncSession, demo: Demo) -> None:
    room = Room(tenant_id=demo.school.id, kind=RoomKind.CLASS, title="Lớp 5A · Toán")
    db.add(room)
    await db.flush()
    db.add(RoomMember(room_id=room.id, user_id=demo.users["teacher"].id, role=RoomRole.HOST))
    for i in range(1, 6):
        db.add(RoomMember(room_id=room.id, user_id=demo.users[f"student{i}"].id, role=RoomRole.PARTICIPANT))
    await db.flush()
    await seed_timetable(db, demo)


async def seed_timetable(db: AsyncSession, demo: Demo) -> None:
    """Lớp 5A as a bookable class (30 seats) with maths every Monday and Wednesday 07:30 for a term."""
    from datetime import date, datetime, time, timedelta

    from server.scheduling.models import Resource, ResourceKind, Series

    resource = Resource(tenant_id=demo.school.id, kind=ResourceKind.CLASS, user_id=demo.users["teacher"].id,
                        name="Lớp 5A", capacity=30, slot_minutes=40)
    db.add(resource)
    await db.flush()
    today = date.today()
    monday = today + timedelta(days=(7 - today.weekday()) % 7)
    db.add(Series(resource_id=resource.id, tenant_id=demo.school.id, title="Toán 5A",
                  rrule="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=36", first_start_local=datetime.combine(monday, time(7, 30)),
                  timezone=resource.timezone, duration_minutes=40, created_by=demo.users["teacher"].id))
    await db.flush()
