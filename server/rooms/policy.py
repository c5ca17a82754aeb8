"""Admission checks that plugins add to rooms: e.g. the clinics plugin refuses remote consultations
in a facility that has not announced its telemedicine eligibility. server/ stays ignorant of why."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server.rooms.models import Room

RoomCheck = Callable[[AsyncSession, Room, str], Awaitable[str | None]]
"""Called with (db, room, user id); returns None to admit, or an error code to refuse
(e.g. "telemedicine_not_enabled", "not_admitted")."""

ROOM_CHECKS = web.AppKey("room_checks", list[RoomCheck])


async def refusal(app: web.Application, db: AsyncSession, room: Room, user_id: str) -> str | None:
    checks: list[RoomCheck] = app[ROOM_CHECKS]
    for check in checks:
        reason = await check(db, room, user_id)
        if reason is not None:
            return reason
    return None
