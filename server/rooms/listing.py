"""A tenant's rooms of one kind, for that tenant's staff: shared by the clinics and classrooms routes."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from sqlalchemy import select

from server.auth.models import Role
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit
from server.requestctx import USER, audit_context
from server.rooms.models import Room, RoomKind


async def tenant_rooms(request: web.Request, kind: RoomKind, staff: Iterable[Role], action: str) -> list[Room]:
    """The rooms of kind ``kind`` of the tenant in the URL; 401 anonymous, 404 (audited) non-staff."""
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    tenant_id = request.match_info["tenant_id"]
    if not any(user.has_role(role, tenant_id) for role in staff):
        await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED,
                    target_type="tenant", target_id=tenant_id[:64])
        raise ApiError(404, "not_found", "no such tenant")
    async with request.app[SESSIONS]() as db:
        rooms = (await db.execute(select(Room).where(Room.tenant_id == tenant_id, Room.kind == kind)
                                  .order_by(Room.title))).scalars().all()
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.SUCCESS,
                target_type="tenant", target_id=tenant_id, tenant_id=tenant_id)
    return list(rooms)
