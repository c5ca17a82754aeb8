"""GET /ws: check Origin and room token *before* the upgrade, then run the connection."""

from __future__ import annotations

import logging
import weakref
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from server.auth.tokens import InvalidToken, RoomClaims, verify_room_token
from server.errors import json_error
from server.keys import BUS, CONNECTIONS, LIVE_ROOMS, SECRET, SESSIONS, SETTINGS, SFU
from server.records.audit import Outcome, audit
from server.requestctx import audit_context
from server.signalling import protocol as p
from server.signalling.connection import Connection

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def origin_allowed(request: web.Request) -> bool:
    """A browser's Origin must be this site (cross-site WebSocket hijacking); tools send none."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.netloc and parts.netloc == request.host:
        return True
    public = urlsplit(request.app[SETTINGS].effective_public_url)
    return (parts.scheme, parts.netloc) == (public.scheme, public.netloc)


def presented_token(request: web.Request) -> str | None:
    """From ``Sec-WebSocket-Protocol: caunoi.v1, caunoi.token.<jwt>`` (browsers) or a Bearer header.

    Never from the URL: query strings end up in access logs and browser history.
    """
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(p.TOKEN_SUBPROTOCOL_PREFIX):
            return proto[len(p.TOKEN_SUBPROTOCOL_PREFIX):]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


@routes.get("/ws", name="ws")
async def websocket(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    context = audit_context(request)
    if not origin_allowed(request):
        await audit(app[SESSIONS], context, "room.connect", Outcome.DENIED, target_type="origin")
        return json_error(403, "forbidden_origin", "this page may not open a signalling connection here")
    token = presented_token(request)
    if token is None:
        return json_error(401, "missing_token", "a room token is required")
    try:
        claims: RoomClaims = verify_room_token(app[SECRET], token)
    except InvalidToken as exc:
        await audit(app[SESSIONS], context, "room.connect", Outcome.DENIED, target_type="room_token")
        return json_error(401, "invalid_token", str(exc))

    ws = web.WebSocketResponse(
        protocols=(p.SUBPROTOCOL,),
        max_msg_size=settings.ws_max_message_bytes,
        heartbeat=settings.ws_heartbeat_seconds,
    )
    await ws.prepare(request)
    connection = Connection(
        ws,
        claims,
        sfu=app[SFU],
        bus=app[BUS],
        live=app[LIVE_ROOMS],
        ice_servers=app[SFU].config.browser_ice_servers(),
    )
    app[CONNECTIONS].add(connection)
    actor = context.with_actor(claims.identity, "room_admin" if claims.grants.room_admin else "participant")
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                was_joined = connection.joined
                await connection.receive_text(message.data)
                if connection.joined and not was_joined:
                    await audit(app[SESSIONS], actor, "room.join", Outcome.SUCCESS,
                                target_type="room", target_id=claims.room)
            elif message.type == WSMsgType.BINARY:
                connection.send_error(p.INVALID_MESSAGE, "binary frames are not part of the protocol")
            elif message.type == WSMsgType.ERROR:
                # aiohttp has already closed with 1009 (too big) or 1002 (protocol error).
                log.info("websocket closed on error: %s", ws.exception())
                break
    except Exception:
        log.exception("signalling connection failed")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
    finally:
        joined = connection.joined
        await connection.finish()
        if joined:
            await audit(app[SESSIONS], actor, "room.leave", Outcome.SUCCESS, target_type="room", target_id=claims.room)
    return ws


async def close_all(app: web.Application) -> None:
    """On shutdown: tell every client we are going away (1001), so that it reconnects elsewhere."""
    live: weakref.WeakSet[Connection] = app[CONNECTIONS]
    for connection in list(live):
        connection.close_soon(WSCloseCode.GOING_AWAY, "server shutting down")
