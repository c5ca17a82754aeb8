"""Who may enter which room, with which grants."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.tokens import Grants
from server.rooms.models import Room, RoomMember, RoomRole

GRANTS_BY_ROOM_ROLE: dict[RoomRole, Grants] = {
    RoomRole.HOST: Grants(can_publish=True, can_subscribe=True, room_admin=True),
    RoomRole.PARTICIPANT: Grants(can_publish=True, can_subscribe=True),
    RoomRole.VIEWER: Grants(can_subscribe=True),
}


async def rooms_of(db: AsyncSession, user_id: str) -> list[tuple[Room, RoomRole]]:
    rows = await db.execute(
        select(Room, RoomMember.role)
        .join(RoomMember, RoomMember.room_id == Room.id)
        .where(RoomMember.user_id == user_id)
        .order_by(Room.title)
    )
    return [(room, role) for room, role in rows]


async def room_access(db: AsyncSession, user_id: str, room_name: str) -> tuple[Room, Grants] | None:
    """The room and the user's grants in it, or None when the user is not a member (or no such room)."""
    row = (
        await db.execute(
            select(Room, RoomMember.role)
            .join(RoomMember, RoomMember.room_id == Room.id)
            .where(Room.name == room_name, RoomMember.user_id == user_id)
        )
    ).first()
    if row is None:
        return None
    room, role = row
    return room, GRANTS_BY_ROOM_ROLE[role]
