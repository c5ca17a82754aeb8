"""Classroom routes. For now: the class rooms of a school, for its teachers and admins."""

from __future__ import annotations

from aiohttp import web

from server.auth.models import Role
from server.rooms.listing import tenant_rooms
from server.rooms.models import RoomKind

routes = web.RouteTableDef()
STAFF = (Role.SCHOOL_ADMIN, Role.TEACHER)


@routes.get("/api/schools/{tenant_id}/classes")
async def classes(request: web.Request) -> web.Response:
    """The school's class rooms; its teachers and admins only (anyone else: 404, audited)."""
    rooms = await tenant_rooms(request, RoomKind.CLASS, STAFF, "school.classes.list")
    return web.json_response({"classes": [{"room": r.name, "title": r.title} for r in rooms]})


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
