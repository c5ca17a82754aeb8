"""The SFU: rooms, participants, and each participant's two peer connections with the server.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription, candidate_from_sdp

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
from media.exceptions import (
    InvalidCandidate,
    InvalidSdp,
    InvalidTrackSource,
    NegotiationError,
    NotAllowed,
    NotPublished,
)
from media.forwarder import SOURCE_KINDS, Forwarder, default_source
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
    source: str = ""
    """"camera", "screen" or "microphone": the page labels a screen share's tile by it."""


class SignalSink(Protocol):
    """How the SFU talks back to one participant's signalling connection."""

    async def send_subscriber_offer(self, sdp: str, tracks: list[TrackInfo]) -> None: ...


TrackKey = tuple[str, str]
"""(kind, source) of a published track, e.g. ("video", "screen")."""


@dataclass
class _Forward:
    publisher_id: str
    forwarder: Forwarder
    transceiver: RTCRtpTransceiver
    downtrack: DownTrack

    @property
    def kind(self) -> str:
        return self.forwarder.kind


@dataclass(eq=False)
class _Section:
    """One media section of a publisher connection: tapped once, published while it sends."""

    mid: str
    kind: str
    transceiver: RTCRtpTransceiver
    tap: ReceiverTap | None = None
    forwarder: Forwarder | None = None
    source: str = ""

    def push(self, packet: RtpPacket, layer: int) -> None:
        if self.forwarder is not None:
            self.forwarder.push(packet, layer)


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
        self.published: dict[TrackKey, Forwarder] = {}
        """What this participant publishes now, by (kind, source)."""
        self._sections: dict[str, _Section] = {}
        self._sources: dict[str, str] = {}
        """The source of each publisher media section (by mid): fixed once given."""
        self._forwards: list[_Forward] = []
        self._video_off: dict[str, bool] = {}
        self._video_layer: dict[str, int | None] = {}
        self._simulcast: dict[str, simulcast.SimulcastOffer] = {}
        self._dirty = asyncio.Event()
        self._answer: asyncio.Future[None] | None = None
        self._negotiator: asyncio.Task[None] | None = None
        self._closed = False

    # --- publisher connection: the browser offers, we answer -------------------------------------

    async def handle_publisher_offer(self, sdp: str, sources: Mapping[str, str] | None = None) -> str:
        """Answer the client's offer on its publisher connection.

        ``sources`` maps a media section (mid) to what it carries: "camera", "screen" (video) or
        "microphone" (audio); unnamed sections keep the source they had, or take their kind's default.
        A track whose section stops sending (the screen share ended) is unpublished; one that sends
        again is published again. Nothing changes if the offer or its sources are refused.
        """
        if not self.can_publish:
            raise NotAllowed("this token does not allow publishing")
        description = sdp_check.parse_offer(sdp)
        planned = self._plan_sources(description, sources or {})
        offered = simulcast.parse_offer(sdp)
        if self.publisher is None:
            self.publisher = self._new_pc()
            self.publisher.on("track", self._on_remote_track)
        pc = self.publisher
        self._simulcast.update({offer.mid: offer for offer in offered})
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except InvalidSdp:
            raise
        except Exception as exc:  # aiortc rejects what it cannot negotiate with assorted errors
            log.warning("publisher offer rejected for %s: %s: %s", self.id, type(exc).__name__, exc)
            raise InvalidSdp(f"the offer could not be negotiated ({type(exc).__name__})") from None
        self._sources = planned
        self._reconcile_published()
        answer = simulcast.complete_answer(pc.localDescription.sdp, offered) if offered else pc.localDescription.sdp
        return announce_address(answer, self._config.announced_address)

    def _plan_sources(self, description: SessionDescription, announced: Mapping[str, str]) -> dict[str, str]:
        """The source of every media section after this offer, or InvalidTrackSource (nothing applied)."""
        sections = {media.rtp.muxId: media for media in description.media if media.kind in ("audio", "video")}
        planned = dict(self._sources)
        for mid, source in announced.items():
            media = sections.get(mid)
            if media is None:
                raise InvalidTrackSource(f"track {mid!r} names no media section of the offer")
            if SOURCE_KINDS.get(source) != media.kind:
                raise InvalidTrackSource(f"track {mid!r} is {media.kind}: it cannot be the {source!r} source")
            if planned.get(mid, source) != source:
                raise InvalidTrackSource(f"track {mid!r} is the {planned[mid]!r}; a track keeps its source "
                                         "(publish a new track for another source)")
            planned[mid] = source
        owners: dict[str, str] = {}
        for mid, media in sections.items():
            if media.direction not in ("sendonly", "sendrecv") or not media.port:
                continue
            source = planned.setdefault(mid, default_source(media.kind))
            if source in owners:
                raise InvalidTrackSource(f"tracks {owners[source]!r} and {mid!r} are both the {source!r}: "
                                         "publish one track per source")
            owners[source] = mid
        return planned

    def _on_remote_track(self, track: MediaStreamTrack) -> None:
        """A new media section of the publisher connection: tap it at once (before any RTP flows);
        whether it is published is decided once the answer is made (:meth:`_reconcile_published`)."""
        if track.kind not in ("audio", "video") or self.publisher is None:
            return
        transceiver = next((t for t in self.publisher.getTransceivers() if t.receiver.track is track), None)
        if transceiver is None or transceiver.mid is None or transceiver.mid in self._sections:
            return
        kind = track.kind
        offer = self._simulcast.get(transceiver.mid) if kind == "video" else None
        section = _Section(transceiver.mid, kind, transceiver)
        section.tap = ReceiverTap(transceiver.receiver, kind, section.push, offer.rids if offer else ())
        if offer is not None:
            parse_rid_extensions(transceiver.receiver, offer.extensions)
        self._sections[transceiver.mid] = section

    def _reconcile_published(self) -> None:
        """Publish the sections that send now, unpublish those that stopped (removals first, so that
        a new screen track can replace an ended one in the same offer)."""
        sending = {mid: section for mid, section in self._sections.items()
                   if section.transceiver.currentDirection in ("recvonly", "sendrecv")}
        for mid, section in self._sections.items():
            if section.forwarder is not None and (mid not in sending or self._sources.get(mid) != section.source):
                self._unpublish(section)
        for mid, section in sending.items():
            if section.forwarder is None:
                self._publish(section, self._sources.get(mid) or default_source(section.kind))

    def _publish(self, section: _Section, source: str) -> None:
        codec = publisher_codec(section.transceiver)
        if codec is None or section.tap is None:
            return
        tap = section.tap
        offer = self._simulcast.get(section.mid) if section.kind == "video" else None
        layers = max(1, len(offer.rids)) if offer else 1
        forwarder = Forwarder(self.id, section.kind, codec, tap.send_pli, layers=layers, source=source)
        section.forwarder = forwarder
        section.source = source
        self.published[(section.kind, source)] = forwarder
        self.room.track_published(self, forwarder)

    def _unpublish(self, section: _Section) -> None:
        forwarder = section.forwarder
        if forwarder is None:
            return
        section.forwarder = None
        if self.published.get((forwarder.kind, forwarder.source)) is forwarder:
            del self.published[(forwarder.kind, forwarder.source)]
        self.room.track_unpublished(self, forwarder)
        forwarder.close()

    def main_tracks(self) -> dict[str, Forwarder]:
        """One track per kind for a single-stream player (WHEP): the camera and microphone, else
        whatever this participant publishes of that kind (a screen-only encoder)."""
        tracks: dict[str, Forwarder] = {}
        for (kind, source), forwarder in self.published.items():
            if kind not in tracks or source == default_source(kind):
                tracks[kind] = forwarder
        return tracks

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
            self.subscriber = self._new_pc(max_bundle=True)
        # A new transceiver per track; its sender only lends its SSRC and RTCP to the down track.
        transceiver = self.subscriber.addTransceiver(SilentTrack(forwarder.kind), direction="sendonly")
        label_stream(transceiver.sender, publisher_id)
        preferences = codec_capabilities(forwarder.codec, forwarder.kind)
        if preferences:  # the subscriber must take the publisher's codec: nothing is transcoded
            transceiver.setCodecPreferences(preferences)
        downtrack = DownTrack(forwarder, self.id, transceiver)
        downtrack.set_muted(forwarder.kind == "video" and self._video_off.get(publisher_id, False))
        if forwarder.kind == "video" and forwarder.source == "camera":
            # A thumbnail is a camera's; a shared screen is always shown large, at its best layer.
            downtrack.set_max_layer(self._video_layer.get(publisher_id))
        forwarder.add(downtrack)
        self._forwards.append(_Forward(publisher_id, forwarder, transceiver, downtrack))
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
            if forward.publisher_id == publisher_id and forward.forwarder.source == "camera":
                forward.downtrack.set_max_layer(layer)

    def downtracks(self) -> list[DownTrack]:
        return [f.downtrack for f in self._forwards]

    def unsubscribe(self, publisher_id: str, forwarder: Forwarder | None = None) -> None:
        """Stop receiving a publisher's tracks (all, or the one ``forwarder``) and re-offer."""
        changed = False
        for forward in [f for f in self._forwards if f.publisher_id == publisher_id
                        and (forwarder is None or f.forwarder is forwarder)]:
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
                    TrackInfo(f.transceiver.mid, f.publisher_id, f.kind, f.forwarder.source)
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

    def _new_pc(self, *, max_bundle: bool = False) -> RTCPeerConnection:
        configuration = self._config.rtc_configuration()
        if max_bundle:
            # The relay offers the subscriber connection, one m-line per forwarded track, and
            # renegotiates as people join. With aiortc's default (balanced) a second video m-line
            # added later stays on a transport of its own that a bundling browser never opens: the
            # third to join saw no video from the second. Every browser bundles; one transport for
            # all m-lines is also fewer ports and ICE checks per subscriber.
            configuration.bundlePolicy = RTCBundlePolicy.MAX_BUNDLE
        return RTCPeerConnection(configuration)

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

    def track_unpublished(self, publisher: Participant, forwarder: Forwarder) -> None:
        for other in self.participants.values():
            if other is not publisher:
                other.unsubscribe(publisher.id, forwarder)

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
        answer = await viewer.answer(sdp, publisher.main_tracks())
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
