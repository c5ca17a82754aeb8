"""One signalling connection: its outbound queue, its participant state, its dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ValidationError

from media.exceptions import MediaError
from media.sfu import Participant, Sfu, TrackInfo
from server.auth.tokens import RoomClaims
from server.bus.base import Bus, Subscription
from server.signalling import protocol as p
from server.signalling.rooms import LiveRooms, room_channel

log = logging.getLogger(__name__)

OUTBOX_SIZE = 256
MAX_ERRORS = 20


@dataclass(frozen=True, slots=True)
class _Close:
    """Queued behind the messages already in the outbox, so that an error arrives before the close."""

    code: int
    reason: str


class Connection:
    """Reads happen only in the handler task; every write goes through the outbox (one writer)."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        claims: RoomClaims,
        *,
        sfu: Sfu,
        bus: Bus,
        live: LiveRooms,
        ice_servers: list[dict[str, object]],
    ) -> None:
        self.ws = ws
        self.claims = claims
        self.participant_id = claims.identity
        self.info = p.ParticipantInfo(id=claims.identity, identity=claims.identity, name=claims.name or claims.identity)
        self._sfu = sfu
        self._bus = bus
        self._live = live
        self._ice_servers = ice_servers
        self._outbox: asyncio.Queue[str | _Close | None] = asyncio.Queue(OUTBOX_SIZE + 1)
        self._writer = asyncio.create_task(self._write(), name=f"ws-writer-{claims.identity}")
        self._events: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self.media: Participant | None = None
        self.joined = False
        self.errors = 0
        self._left = False
        self._closing: asyncio.Task[bool] | None = None

    # --- writing --------------------------------------------------------------------------------

    def send(self, message: BaseModel) -> None:
        self._enqueue(message.model_dump_json())

    def _enqueue(self, text: str) -> None:
        if self._outbox.qsize() >= OUTBOX_SIZE:
            # A client that does not read its messages is gone for practical purposes.
            log.warning("signalling outbox full for %s; closing", self.participant_id)
            self._closing = asyncio.create_task(self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow"))
            return
        self._outbox.put_nowait(text)

    def send_error(self, code: str, message: str) -> None:
        self.send(p.Error(code=code, message=message))

    def close_soon(self, code: int, reason: str) -> None:
        """Close once the messages already queued have been sent."""
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(_Close(code, reason))

    async def _write(self) -> None:
        while (item := await self._outbox.get()) is not None:
            if self.ws.closed:
                return
            try:
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.reason.encode())
                    return
                await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return

    async def send_subscriber_offer(self, sdp: str, tracks: list[TrackInfo]) -> None:
        refs = [p.TrackRef(mid=t.mid, participant_id=t.participant_id, kind=t.kind, source=t.source) for t in tracks]
        self.send(p.ServerOffer(sdp=sdp, tracks=refs))
        self.send(p.ServerCandidate(target="subscriber", candidate=None))  # aiortc gathered all already

    # --- reading --------------------------------------------------------------------------------

    async def receive_text(self, text: str) -> None:
        """Validate one client message and act on it; bad input gets an error message, never a crash."""
        try:
            data: Any = json.loads(text)
        except ValueError:
            return self._reject(p.INVALID_JSON, "the message is not valid JSON")
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            return self._reject(p.INVALID_MESSAGE, "a message is a JSON object with a string 'type'")
        if data["type"] not in p.CLIENT_TYPES:
            return self._reject(p.UNKNOWN_TYPE, f"unknown message type {data['type'][:40]!r}")
        try:
            message = p.client_message.validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"][1:]) or "message"
            return self._reject(p.INVALID_MESSAGE, f"{where}: {first['msg']}")
        await self._dispatch(message)

    def _reject(self, code: str, message: str) -> None:
        self.errors += 1
        self.send_error(code, message)
        if self.errors >= MAX_ERRORS:
            self.send_error(p.TOO_MANY_ERRORS, "too many invalid messages")
            self.close_soon(WSCloseCode.POLICY_VIOLATION, "too many invalid messages")

    async def _dispatch(self, message: p.ClientMessage) -> None:
        if isinstance(message, p.Ping):
            self.send(p.Pong(ts=message.ts))
            return
        if isinstance(message, p.Join):
            await self._join(message)
            return
        if not self.joined or self.media is None:
            return self._reject(p.NOT_JOINED, f"send 'join' before '{message.type}'")
        try:
            if isinstance(message, p.Offer):
                sources = {t.mid: t.source for t in message.tracks} if message.tracks is not None else None
                answer = await self.media.handle_publisher_offer(message.sdp, sources)
                self.send(p.ServerAnswer(sdp=answer))
                self.send(p.ServerCandidate(target="publisher", candidate=None))
            elif isinstance(message, p.Answer):
                await self.media.handle_subscriber_answer(message.sdp)
            elif isinstance(message, p.Candidate):
                c = message.candidate
                await self.media.add_ice_candidate(
                    message.target,
                    c.candidate if c else None,
                    c.sdpMid if c else None,
                    c.sdpMLineIndex if c else None,
                )
            elif isinstance(message, p.Mute):
                self.info = self.info.model_copy(update={f"{message.kind}_muted": message.muted})
                await self._publish(p.MuteChanged(participant_id=self.participant_id, kind=message.kind,
                                                  muted=message.muted))
            elif isinstance(message, p.VideoPreference):
                self.media.set_receive_video(message.participant_id, message.quality != "off")
                self.media.set_video_layer(message.participant_id, 0 if message.quality == "low" else None)
            elif isinstance(message, p.Leave):
                self.close_soon(WSCloseCode.OK, "left")
        except MediaError as exc:
            self._reject(exc.code, str(exc))

    async def _join(self, join: p.Join) -> None:
        if self.joined:
            return self._reject(p.ALREADY_JOINED, "this connection has already joined")
        if join.room != self.claims.room:
            self.send_error(p.WRONG_ROOM, "the room token is for another room")
            self.close_soon(WSCloseCode.POLICY_VIOLATION, "wrong room")
            return
        room = self.claims.room
        previous = self._live.get(room, self.participant_id)
        if previous is not None:
            # The same person joined again (a reloaded page, a second tab): the newest wins.
            previous.send_error(p.REPLACED, "you joined this room from another page")
            previous.close_soon(WSCloseCode.GOING_AWAY, "replaced")
            await previous.leave()
        self._subscription = await self._bus.subscribe(room_channel(room))
        self._events = asyncio.create_task(self._forward_events(self._subscription))
        self.media = self._sfu.room(room).add(
            self.participant_id,
            self,
            can_publish=self.claims.grants.can_publish,
            can_subscribe=self.claims.grants.can_subscribe,
        )
        others = [c.info for c in self._live.members(room)]
        self._live.add(room, self)
        self.joined = True
        self.send(p.Joined(room=room, participant=self.info, participants=others, ice_servers=self._ice_servers))
        await self._publish(p.ParticipantJoined(participant=self.info))

    async def _publish(self, event: BaseModel) -> None:
        await self._bus.publish(room_channel(self.claims.room),
                                {"from": self.participant_id, "event": event.model_dump(mode="json")})

    async def _forward_events(self, subscription: Subscription) -> None:
        async for envelope in subscription:
            if envelope.get("from") != self.participant_id and isinstance(envelope.get("event"), dict):
                self._outbox_raw(envelope["event"])

    def _outbox_raw(self, event: dict[str, Any]) -> None:
        self._enqueue(json.dumps(event, separators=(",", ":")))

    # --- ending ---------------------------------------------------------------------------------

    async def leave(self) -> None:
        """Leave the room (idempotent): media first, then presence."""
        if self._left:
            return
        self._left = True
        if self.joined:
            self._live.remove(self.claims.room, self)
            await self._sfu.leave(self.claims.room, self.participant_id)
            if self._subscription is not None:
                await self._bus.unsubscribe(self._subscription)
            await self._publish(p.ParticipantLeft(participant_id=self.participant_id))

    async def finish(self) -> None:
        await self.leave()
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self._writer, 1.0)
