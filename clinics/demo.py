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
