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
