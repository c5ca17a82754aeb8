"""WHIP (RFC 9725) and WHEP: publish into a room, or play a stream, with plain HTTP and SDP.

OBS Studio, a lecture encoder or a dermatoscope camera publishes with ``POST /whip/{room}``; a
viewer plays the room's presenter with ``POST /whep/{room}`` or one participant with
``POST /whep/{room}/{identity}``. Credentials: ``Authorization: Bearer <room token>`` (from
``caunoi token``), with can_publish for WHIP and can_subscribe for WHEP. The Location of the 201
ends the session with DELETE. Errors follow the RFC: 400 bad SDP, 401 no or bad token, 403 a token
without the grant or for another room, 404 no such room or nothing published, 415 not
application/sdp, 422 no codec in common.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import select

from media.exceptions import InvalidSdp, MediaError, NotPublished
from media.sfu import NoSignals
from server.auth.tokens import InvalidToken, RoomClaims, verify_room_token
from server.errors import json_error
from server.keys import BUS, LIVE_ROOMS, SECRET, SESSIONS, SFU
from server.middlewares import csrf_exempt
from server.records.audit import Outcome, audit
from server.requestctx import audit_context
from server.rooms.models import Room
from server.rooms.policy import refusal
from server.signalling import protocol as p
from server.signalling.rooms import room_channel

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
MAX_SDP_BYTES = 32 * 1024


@dataclass
class HttpSessions:
    """WHIP publishers and WHEP viewers on this node: session id → (room, owner identity)."""

    sessions: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id → (kind, room, identity)
    presenters: dict[str, str] = field(default_factory=dict)  # room → newest WHIP session id


HTTP_SESSIONS = web.AppKey("http_media_sessions", HttpSessions)


def _claims(request: web.Request, room: str, grant: str) -> RoomClaims | web.Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return json_error(401, "missing_token", "send Authorization: Bearer <room token>",
                          headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = verify_room_token(request.app[SECRET], token.strip())
    except InvalidToken as exc:
        return json_error(401, "invalid_token", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if claims.room != room:
        return json_error(403, "wrong_room", "the room token is for another room")
    if not getattr(claims.grants, grant):
        return json_error(403, "not_allowed", f"the room token lacks {grant}")
    return claims


async def _sdp(request: web.Request) -> str | web.Response:
    if request.content_type != "application/sdp":
        return json_error(415, "unsupported_media_type", "send the offer as application/sdp")
    body = await request.content.read(MAX_SDP_BYTES + 1)
    if len(body) > MAX_SDP_BYTES:
        return json_error(400, "invalid_sdp", f"the offer is larger than {MAX_SDP_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return json_error(400, "invalid_sdp", "the offer is not UTF-8 text")


async def _admission(request: web.Request, name: str, identity: str) -> web.Response | None:
    """404 for a room that does not exist; 403 when a plugin's admission check refuses it."""
    async with request.app[SESSIONS]() as db:
        room = await db.scalar(select(Room).where(Room.name == name))
        reason = await refusal(request.app, db, room, identity) if room is not None else None
    if room is None:
        return json_error(404, "room_not_found", "no such room")
    if reason is not None:
        return json_error(403, reason, "this room cannot be opened: " + reason.replace("_", " "))
    return None


async def _announce(request: web.Request, room: str, event: p.ParticipantJoined | p.ParticipantLeft) -> None:
    await request.app[BUS].publish(room_channel(room), {"from": "whip", "event": event.model_dump(mode="json")})


@routes.post("/whip/{room}")
@csrf_exempt
async def whip_publish(request: web.Request) -> web.StreamResponse:
    room = request.match_info["room"]
    claims = _claims(request, room, "can_publish")
    if isinstance(claims, web.Response):
        return claims
    offer = await _sdp(request)
    if isinstance(offer, web.Response):
        return offer
    refused = await _admission(request, room, claims.identity)
    if refused is not None:
        return refused
    session_id = "whip-" + secrets.token_urlsafe(9)
    participant = request.app[SFU].room(room).add(session_id, NoSignals(), can_publish=True, can_subscribe=False)
    try:
        answer = await participant.handle_publisher_offer(offer)
    except MediaError as exc:
        await request.app[SFU].leave(room, session_id)
        return json_error(400 if isinstance(exc, InvalidSdp) else 422, exc.code, str(exc))
    sessions = request.app[HTTP_SESSIONS]
    sessions.sessions[session_id] = ("whip", room, claims.identity)
    sessions.presenters[room] = session_id
    app = request.app
    pc = participant.publisher
    if pc is not None:
        @pc.on("connectionstatechange")
        async def _vanished() -> None:
            # An encoder that disappears without DELETE (power cut, lost 3G) must not stay "live".
            if pc.connectionState in ("failed", "closed") and session_id in sessions.sessions:
                await _close_session(app, session_id)
    await _announce(request, room, p.ParticipantJoined(participant=p.ParticipantInfo(
        id=session_id, identity=claims.identity, name=claims.name or claims.identity)))
    await audit(request.app[SESSIONS], audit_context(request).with_actor(claims.identity, "whip"), "room.whip.publish",
                Outcome.SUCCESS, target_type="room", target_id=room)
    return web.Response(status=201, body=answer, content_type="application/sdp",
                        headers={"Location": f"/whip/{room}/{session_id}"})


@routes.post("/whep/{room}")
@routes.post("/whep/{room}/{identity}")
@csrf_exempt
async def whep_play(request: web.Request) -> web.StreamResponse:
    room = request.match_info["room"]
    claims = _claims(request, room, "can_subscribe")
    if isinstance(claims, web.Response):
        return claims
    offer = await _sdp(request)
    if isinstance(offer, web.Response):
        return offer
    sfu = request.app[SFU]
    if room not in sfu.rooms:  # sfu.room() would create it
        return json_error(404, "room_not_live", "nobody is publishing in this room")
    publisher = request.match_info.get("identity") or presenter(request.app, room)
    if publisher is None:
        return json_error(404, "not_published", "this room has no presenter publishing")
    session_id = "whep-" + secrets.token_urlsafe(9)
    try:
        answer = await sfu.room(room).play(session_id, publisher, offer)
    except NotPublished as exc:
        return json_error(404, exc.code, str(exc))
    except MediaError as exc:
        return json_error(400 if isinstance(exc, InvalidSdp) else 422, exc.code, str(exc))
    request.app[HTTP_SESSIONS].sessions[session_id] = ("whep", room, claims.identity)
    await audit(request.app[SESSIONS], audit_context(request).with_actor(claims.identity, "whep"), "room.whep.play",
                Outcome.SUCCESS, target_type="room", target_id=room)
    return web.Response(status=201, body=answer, content_type="application/sdp",
                        headers={"Location": f"/whep/{room}/session/{session_id}"})


def presenter(app: web.Application, room: str) -> str | None:
    """The newest WHIP publisher, else a publishing participant holding room_admin (the teacher)."""
    whip = app[HTTP_SESSIONS].presenters.get(room)
    if whip is not None and whip in app[SFU].rooms[room].participants:
        return whip
    for connection in app[LIVE_ROOMS].members(room):
        media = connection.media
        if connection.claims.grants.room_admin and media is not None and media.published:
            return connection.participant_id
    return None


async def _end(request: web.Request, kind: str) -> web.StreamResponse:
    room, session_id = request.match_info["room"], request.match_info["session"]
    claims = _claims(request, room, "can_publish" if kind == "whip" else "can_subscribe")
    if isinstance(claims, web.Response):
        return claims
    sessions = request.app[HTTP_SESSIONS]
    known = sessions.sessions.get(session_id)
    if known is None or known != (kind, room, claims.identity):
        return json_error(404, "session_not_found", "no such session")
    await _close_session(request.app, session_id)
    return web.Response(status=200)


async def _close_session(app: web.Application, session_id: str) -> None:
    sessions = app[HTTP_SESSIONS]
    entry = sessions.sessions.pop(session_id, None)
    if entry is None:
        return
    kind, room, _identity = entry
    if sessions.presenters.get(room) == session_id:
        del sessions.presenters[room]
    await app[SFU].leave(room, session_id)
    if kind == "whip":
        await app[BUS].publish(room_channel(room), {"from": "whip", "event": p.ParticipantLeft(
            participant_id=session_id).model_dump(mode="json")})


@routes.delete("/whip/{room}/{session}")
@csrf_exempt
async def whip_end(request: web.Request) -> web.StreamResponse:
    return await _end(request, "whip")


@routes.delete("/whep/{room}/session/{session}")
@csrf_exempt
async def whep_end(request: web.Request) -> web.StreamResponse:
    return await _end(request, "whep")
