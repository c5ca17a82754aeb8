"""The server's own JSON routes: health, the current user, rooms and room tokens."""

from __future__ import annotations

import time

from aiohttp import web
from sqlalchemy import text

from server.auth.tokens import mint_room_token
from server.errors import ApiError
from server.keys import BUS, SECRET, SESSIONS, SETTINGS, SFU
from server.records.audit import Outcome, audit
from server.requestctx import USER, audit_context
from server.rooms.access import room_access, rooms_of
from server.rooms.policy import refusal

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is alive (no dependency checked: a restart would not fix a database outage)."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """The node can serve: the database answers."""
    try:
        async with request.app[SESSIONS]() as db:
            await db.execute(text("SELECT 1"))
    except Exception as exc:
        return web.json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
    return web.json_response({"status": "ready", "database": "ok", "bus": await request.app[BUS].ping()})


def require_user(request: web.Request) -> None:
    if request.get(USER) is None:
        raise ApiError(401, "not_logged_in", "log in first")


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    require_user(request)
    user = request[USER]
    return web.json_response({
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "roles": [{"tenant_id": r.tenant_id, "tenant": r.tenant_name, "role": r.role.value} for r in user.roles],
    })


@routes.get("/api/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    require_user(request)
    async with request.app[SESSIONS]() as db:
        rooms = await rooms_of(db, request[USER].id)
    return web.json_response({"rooms": [
        {"name": room.name, "title": room.title, "kind": room.kind.value, "role": role.value} for room, role in rooms
    ]})


@routes.post("/api/rooms/{room}/token")
async def room_token(request: web.Request) -> web.Response:
    """Mint a room token for the logged-in user, only for a room they belong to (else 404, audited)."""
    require_user(request)
    user = request[USER]
    room_name = request.match_info["room"]
    app = request.app
    async with app[SESSIONS]() as db:
        access = await room_access(db, user.id, room_name)
        refused = await refusal(app, db, access[0], user.id) if access else None
    context = audit_context(request)
    if access is None:
        await audit(app[SESSIONS], context, "room.token", Outcome.DENIED, target_type="room", target_id=room_name[:64])
        raise ApiError(404, "room_not_found", "no such room")
    room, grants = access
    if refused is not None:
        await audit(app[SESSIONS], context, "room.token", Outcome.DENIED, target_type="room", target_id=room.name,
                    tenant_id=room.tenant_id)
        raise ApiError(403, refused, "this room cannot be opened: " + refused.replace("_", " "))
    ttl = app[SETTINGS].room_token_ttl_seconds
    token = mint_room_token(app[SECRET], room=room.name, identity=user.id, grants=grants, ttl_seconds=ttl,
                            name=user.display_name)
    await audit(app[SESSIONS], context, "room.token", Outcome.SUCCESS, target_type="room", target_id=room.name,
                tenant_id=room.tenant_id)
    return web.json_response({
        "token": token,
        "expires_at": int(time.time()) + ttl,
        "room": room.name,
        "identity": user.id,
        "grants": grants.model_dump(),
        "ice_servers": app[SFU].config.browser_ice_servers(),
    }, headers={"Cache-Control": "no-store"})
