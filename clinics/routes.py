"""Clinic routes. For now: the consultation rooms of a facility, for its staff."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from server.auth.models import Role
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit
from server.requestctx import USER, audit_context
from server.rooms.models import Room, RoomKind

routes = web.RouteTableDef()
STAFF = (Role.FACILITY_ADMIN, Role.DOCTOR, Role.NURSE)


@routes.get("/api/clinics/{tenant_id}/consultations")
async def consultations(request: web.Request) -> web.Response:
    """The facility's consultation rooms; staff of that facility only (anyone else: 404, audited)."""
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    tenant_id = request.match_info["tenant_id"]
    if not any(user.has_role(role, tenant_id) for role in STAFF):
        await audit(request.app[SESSIONS], audit_context(request), "clinic.consultations.list", Outcome.DENIED,
                    target_type="tenant", target_id=tenant_id[:64])
        raise ApiError(404, "not_found", "no such facility")
    async with request.app[SESSIONS]() as db:
        rooms = (await db.execute(select(Room).where(Room.tenant_id == tenant_id, Room.kind == RoomKind.CONSULTATION)
                                  .order_by(Room.title))).scalars().all()
    await audit(request.app[SESSIONS], audit_context(request), "clinic.consultations.list", Outcome.SUCCESS,
                target_type="tenant", target_id=tenant_id, tenant_id=tenant_id)
    return web.json_response({"consultations": [{"room": r.name, "title": r.title} for r in rooms]})


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
