"""The first-version SFU: one aiortc peer per browser direction, tracks shared with MediaRelay.

Topology (as LiveKit does it): each participant holds two peer connections with the server.
- The *publisher* connection: the browser offers its camera and microphone; the server only receives.
- The *subscriber* connection: the server offers the other participants' tracks; the browser only
  receives. The server re-offers whenever tracks come or go.
Each side always offers on its own connection, so renegotiation never collides (no glare).

Media is forwarded as RTP packets, never decoded or re-encoded: each published track is a
:class:`media.forwarder.Forwarder` and each subscriber's copy of it a :class:`media.downtrack.DownTrack`
(docs/architecture.md, "Media", says why packets rather than encoded frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from media import sdp as sdp_check
from media import simulcast
from media.aiortc_taps import (
    ReceiverTap,
    SilentTrack,
    codec_capabilities,
    label_stream,
    parse_rid_extensions,
    publisher_codec,
)
from media.downtrack import DownTrack
from media.exceptions import InvalidCandidate, InvalidSdp, NegotiationError, NotAllowed, NotPublished
from media.forwarder import Forwarder
from media.ice import IceConfig, announce_address
from media.viewer import Viewer

log = logging.getLogger(__name__)

ANSWER_TIMEOUT = 15.0


@dataclass(frozen=True)
class TrackInfo:
    """Which participant a media section of the subscriber offer carries (by mid)."""

    mid: str
    participant_id: str
    kind: str


class SignalSink(Protocol):
    """How the SFU talks back to one participant's signalling connection."""

    async def send_subscriber_offer(self, sdp: str, tracks: list[TrackInfo]) -> None: ...


@dataclass
class _Forward:
    publisher_id: str
    kind: str
    transceiver: RTCRtpTransceiver
    downtrack: DownTrack


class Participant:
    def __init__(
        self, room: SfuRoom, participant_id: str, sink: SignalSink, *, can_publish: bool, can_subscribe: bool
    ) -> None:
        self.room = room
        self.id = participant_id
        self.can_publish = can_publish
        self.can_subscribe = can_subscribe
        self._sink = sink
        self._config = room.config
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        self.published: dict[str, Forwarder] = {}
        self._taps: list[ReceiverTap] = []
        self._forwards: list[_Forward] = []
        self._video_off: dict[str, bool] = {}
        self._video_layer: dict[str, int | None] = {}
        self._simulcast: dict[str, simulcast.SimulcastOffer] = {}
        self._dirty = asyncio.Event()
        self._answer: asyncio.Future[None] | None = None
        self._negotiator: asyncio.Task[None] | None = None
        self._closed = False

    # --- publisher connection: the browser offers, we answer -------------------------------------

    async def handle_publisher_offer(self, sdp: str) -> str:
        if not self.can_publish:
            raise NotAllowed("this token does not allow publishing")
        sdp_check.parse_offer(sdp)
        offered = simulcast.parse_offer(sdp)
        self._simulcast.update({offer.mid: offer for offer in offered})
        if self.publisher is None:
            self.publisher = self._new_pc()
            self.publisher.on("track", self._on_remote_track)
        pc = self.publisher
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except InvalidSdp:
            raise
        except Exception as exc:  # aiortc rejects what it cannot negotiate with assorted errors
            log.warning("publisher offer rejected for %s: %s: %s", self.id, type(exc).__name__, exc)
            raise InvalidSdp(f"the offer could not be negotiated ({type(exc).__name__})") from None
        answer = simulcast.complete_answer(pc.localDescription.sdp, offered) if offered else pc.localDescription.sdp
        return announce_address(answer, self._config.announced_address)

    def _on_remote_track(self, track: MediaStreamTrack) -> None:
        if track.kind not in ("audio", "video") or track.kind in self.published or self.publisher is None:
            return
        transceiver = next((t for t in self.publisher.getTransceivers() if t.receiver.track is track), None)
        codec = publisher_codec(transceiver) if transceiver is not None else None
        if transceiver is None or codec is None:
            return
        kind = track.kind
        # The tap is made first so that the forwarder can ask it for keyframes; RTP flows once the
        # connection is up, long after both exist.
        holder: list[ReceiverTap] = []
        simulcast = self._simulcast.get(transceiver.mid or "") if kind == "video" else None
        rids = simulcast.rids if simulcast else ()

        def send_pli(layer: int) -> None:
            holder[0].send_pli(layer)

        forwarder = Forwarder(self.id, kind, codec, send_pli, layers=max(1, len(rids)))
        tap = ReceiverTap(transceiver.receiver, kind, forwarder.push, rids)
        if simulcast is not None:
            parse_rid_extensions(transceiver.receiver, simulcast.extensions)
        holder.append(tap)
        self._taps.append(tap)
        self.published[kind] = forwarder
        self.room.track_published(self, forwarder)

    # --- subscriber connection: we offer, the browser answers ------------------------------------

    def subscribe(self, publisher_id: str, forwarder: Forwarder) -> None:
        if not self.can_subscribe or self._closed:
            return
        if self.subscriber is not None and self.subscriber.signalingState == "closed":
            # aiortc closes a connection by itself once its DTLS transport is closed (the browser
            # went away); the participant leaves when its signalling notices. Until then there is
            # nothing to add to, and raising here would break the publisher's negotiation.
            return
        if self.subscriber is None:
            self.subscriber = self._new_pc()
        # A new transceiver per track; its sender only lends its SSRC and RTCP to the down track.
        transceiver = self.subscriber.addTransceiver(SilentTrack(forwarder.kind), direction="sendonly")
        label_stream(transceiver.sender, publisher_id)
        preferences = codec_capabilities(forwarder.codec, forwarder.kind)
        if preferences:  # the subscriber must take the publisher's codec: nothing is transcoded
            transceiver.setCodecPreferences(preferences)
        downtrack = DownTrack(forwarder, self.id, transceiver)
        downtrack.set_muted(forwarder.kind == "video" and self._video_off.get(publisher_id, False))
        if forwarder.kind == "video":
            downtrack.set_max_layer(self._video_layer.get(publisher_id))
        forwarder.add(downtrack)
        self._forwards.append(_Forward(publisher_id, forwarder.kind, transceiver, downtrack))
        self._request_negotiation()

    def set_receive_video(self, publisher_id: str, enabled: bool) -> None:
        """Receive a publisher's video or not ("audio only", a hidden tile); audio is unaffected.

        Turning video back on waits for the next keyframe, which the down track requests.
        """
        self._video_off[publisher_id] = not enabled
        for forward in self._forwards:
            if forward.publisher_id == publisher_id and forward.kind == "video":
                forward.downtrack.set_muted(not enabled)

    def set_video_layer(self, publisher_id: str, layer: int | None) -> None:
        """The highest simulcast layer wanted of a publisher: 0 for a thumbnail, None for the best.

        The switch happens at the layer's next keyframe, which is requested; numbering continues.
        """
        self._video_layer[publisher_id] = layer
        for forward in self._forwards:
            if forward.publisher_id == publisher_id and forward.kind == "video":
                forward.downtrack.set_max_layer(layer)

    def downtracks(self) -> list[DownTrack]:
        return [f.downtrack for f in self._forwards]

    def unsubscribe(self, publisher_id: str) -> None:
        changed = False
        for forward in [f for f in self._forwards if f.publisher_id == publisher_id]:
            forward.downtrack.close()
            forward.transceiver.sender.replaceTrack(None)
            forward.transceiver.direction = "inactive"
            self._forwards.remove(forward)
            changed = True
        if changed:
            self._request_negotiation()

    async def handle_subscriber_answer(self, sdp: str) -> None:
        if self.subscriber is None or self._answer is None or self._answer.done():
            raise NegotiationError("no subscriber offer is waiting for an answer")
        sdp_check.parse_answer(sdp)
        try:
            await self.subscriber.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            log.warning("subscriber answer rejected for %s: %s: %s", self.id, type(exc).__name__, exc)
            raise InvalidSdp(f"the answer could not be applied ({type(exc).__name__})") from None
        self._answer.set_result(None)

    def _request_negotiation(self) -> None:
        self._dirty.set()
        if self._negotiator is None:
            self._negotiator = asyncio.create_task(self._negotiate_forever(), name=f"negotiate-{self.id}")

    async def _negotiate_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            await self._dirty.wait()
            self._dirty.clear()
            pc = self.subscriber
            if pc is None or self._closed or pc.signalingState == "closed":
                continue
            try:
                await pc.setLocalDescription(await pc.createOffer())
                tracks = [
                    TrackInfo(f.transceiver.mid, f.publisher_id, f.kind)
                    for f in self._forwards
                    if f.transceiver.mid is not None
                ]
                self._answer = loop.create_future()
                offer = announce_address(pc.localDescription.sdp, self._config.announced_address)
                await self._sink.send_subscriber_offer(offer, tracks)
                await asyncio.wait_for(self._answer, ANSWER_TIMEOUT)
            except TimeoutError:
                log.warning("participant %s did not answer the subscriber offer in time", self.id)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closed:
                    return
                log.exception("subscriber negotiation failed for %s", self.id)

    # --- both -----------------------------------------------------------------------------------

    async def add_ice_candidate(self, target: str, candidate: str | None, sdp_mid: str | None,
                                sdp_mline_index: int | None) -> None:
        pc = self.publisher if target == "publisher" else self.subscriber
        if pc is None:
            raise NegotiationError(f"there is no {target} connection yet")
        if candidate is None or candidate == "":
            await pc.addIceCandidate(None)
            return
        text = candidate[len("candidate:"):] if candidate.startswith("candidate:") else candidate
        try:
            parsed = candidate_from_sdp(text)
        except Exception:
            raise InvalidCandidate("the ICE candidate could not be parsed") from None
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        if sdp_mid is None and sdp_mline_index is None:
            parsed.sdpMLineIndex = 0
        try:
            await pc.addIceCandidate(parsed)
        except Exception as exc:
            raise InvalidCandidate(f"the ICE candidate was refused ({type(exc).__name__})") from None

    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(self._config.rtc_configuration())

    async def close(self) -> None:
        self._closed = True
        for forwarder in self.published.values():
            forwarder.close()
        for forward in self._forwards:
            forward.downtrack.close()
        self._dirty.set()
        if self._negotiator is not None:
            self._negotiator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._negotiator
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                await pc.close()


class NoSignals:
    """The sink of a participant that only publishes (a WHIP encoder): it is never sent an offer."""

    async def send_subscriber_offer(self, sdp: str, tracks: list[TrackInfo]) -> None:
        raise NegotiationError("this session only publishes")


@dataclass
class SfuRoom:
    name: str
    config: IceConfig
    participants: dict[str, Participant] = field(default_factory=dict)
    viewers: dict[str, Viewer] = field(default_factory=dict)

    def add(self, participant_id: str, sink: SignalSink, *, can_publish: bool, can_subscribe: bool) -> Participant:
        if participant_id in self.participants:
            raise ValueError(f"participant {participant_id} is already in room {self.name}")
        participant = Participant(self, participant_id, sink, can_publish=can_publish, can_subscribe=can_subscribe)
        self.participants[participant_id] = participant
        for other in self.participants.values():
            if other is not participant:
                for forwarder in other.published.values():
                    participant.subscribe(other.id, forwarder)
        return participant

    def track_published(self, publisher: Participant, forwarder: Forwarder) -> None:
        for other in self.participants.values():
            if other is not publisher:
                other.subscribe(publisher.id, forwarder)

    async def play(self, viewer_id: str, publisher_id: str, sdp: str) -> str:
        """A WHEP viewer of one participant: answer its offer (see media/viewer.py).

        The viewer is removed like a participant, with :meth:`Sfu.leave`, and ends when its publisher
        leaves.
        """
        if viewer_id in self.participants or viewer_id in self.viewers:
            raise ValueError(f"{viewer_id} is already in room {self.name}")
        publisher = self.participants.get(publisher_id)
        if publisher is None or not publisher.published:
            raise NotPublished(f"{publisher_id} publishes nothing in this room")
        viewer = Viewer(viewer_id, publisher_id, self.config)
        answer = await viewer.answer(sdp, publisher.published)
        self.viewers[viewer_id] = viewer
        return answer

    async def remove(self, participant_id: str) -> None:
        viewer = self.viewers.pop(participant_id, None)
        if viewer is not None:
            await viewer.close()
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            return
        for other in self.participants.values():
            other.unsubscribe(participant_id)
        for watcher in [v for v in self.viewers.values() if v.publisher_id == participant_id]:
            del self.viewers[watcher.id]
            await watcher.close()
        await participant.close()


class Sfu:
    """All rooms with live media on this node."""

    def __init__(self, config: IceConfig) -> None:
        self.config = config
        self.rooms: dict[str, SfuRoom] = {}

    def room(self, name: str) -> SfuRoom:
        if name not in self.rooms:
            self.rooms[name] = SfuRoom(name, self.config)
        return self.rooms[name]

    async def leave(self, room_name: str, participant_id: str) -> None:
        room = self.rooms.get(room_name)
        if room is None:
            return
        await room.remove(participant_id)
        if not room.participants and not room.viewers and self.rooms.get(room_name) is room:
            del self.rooms[room_name]

    async def close(self) -> None:
        for name in list(self.rooms):
            for participant_id in [*self.rooms[name].viewers, *self.rooms[name].participants]:
                await self.leave(name, participant_id)
