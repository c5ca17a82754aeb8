"""Demo consultations: one room per patient, hosted by the doctor, with the nurse assisting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from server.rooms.models import Room, RoomKind, RoomMember, RoomRole

if TYPE_CHECKING:
    from server.demo import Demo


async def seed_demo(db: AsyncSession, demo: Demo) -> None:
    for handle in ("patient1", "patient2"):
        patient = demo.users[handle]
        room = Room(tenant_id=demo.facility.id, kind=RoomKind.CONSULTATION,
                    title=f"Khám từ xa · {patient.display_name}")
        db.add(room)
        await db.flush()
        db.add_all([
            RoomMember(room_id=room.id, user_id=demo.users["doctor"].id, role=RoomRole.HOST),
            RoomMember(room_id=room.id, user_id=demo.users["nurse"].id, role=RoomRole.PARTICIPANT),
            RoomMember(room_id=room.id, user_id=patient.id, role=RoomRole.PARTICIPANT),
        ])
    await db.flush()
    await seed_schedule(db, demo)


async def seed_schedule(db: AsyncSession, demo: Demo) -> None:
    """The doctor's remote-consultation hours: weekday mornings and afternoons, Saturday mornings."""
    from datetime import time

    from server.scheduling.models import AvailabilityRule, Resource, ResourceKind

    resource = Resource(tenant_id=demo.facility.id, kind=ResourceKind.PRACTITIONER, user_id=demo.users["doctor"].id,
                        name=f"{demo.users['doctor'].display_name} · khám từ xa", slot_minutes=15,
                        buffer_minutes=5, min_notice_minutes=60, horizon_days=30)
    db.add(resource)
    await db.flush()
    hours = [(time(7, 30), time(11, 30)), (time(13, 30), time(16, 30))]
    for weekday in range(6):
        for start, end in hours[:1] if weekday == 5 else hours:
            db.add(AvailabilityRule(resource_id=resource.id, weekday=weekday, start_time=start, end_time=end))
    await db.flush()
