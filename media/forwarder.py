"""One published track fanned out to its subscribers as RTP packets: no decode, no encode.

The publisher's packets arrive through a :class:`media.aiortc_taps.ReceiverTap`; each is handed,
in the same call and without any queue, to every :class:`media.downtrack.DownTrack`, which rewrites
the header for its subscriber, SRTP-protects it and sends it. The header is serialised once per
distinct subscriber layout (payload type, mid, header extension ids), not once per subscriber.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiortc.clock import current_ntp_time
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media.keyframes import KeyframeRequester, keyframe_detector
from media.rtp_rewrite import split_template

if TYPE_CHECKING:
    from media.downtrack import DownTrack

log = logging.getLogger(__name__)

CACHE_SIZE = 512
"""Source packets kept per video track to answer subscribers' NACKs: ~7 s at 600 kbps, ~600 KiB.
Shared by all subscribers of the track, so a subscriber costs no packet memory of its own."""

LAYER_IDLE = 0.5
"""Seconds without a packet after which a simulcast layer counts as off."""

SOURCE_KINDS = {"camera": "video", "screen": "video", "microphone": "audio"}
"""Every track source a publisher may announce, and the kind of track it must be (as LiveKit's
TrackSource): a participant publishes at most one track per source."""


def default_source(kind: str) -> str:
    """The source of a track whose publisher announced none (clients before sources existed)."""
    return "microphone" if kind == "audio" else "camera"


TemplateKey = tuple[int, str, tuple[tuple[int, str], ...]]


class Forwarder:
    """Fans out one published track to its down tracks: one stream, or one per simulcast layer
    (index 0 the lowest), each down track following one layer at a time."""

    def __init__(self, publisher_id: str, kind: str, codec: RTCRtpCodecParameters,
                 send_pli: Callable[[int], None], layers: int = 1, source: str = "") -> None:
        self.publisher_id = publisher_id
        self.kind = kind
        self.source = source or default_source(kind)
        """What the track shows: "camera" or "screen" (video), "microphone" (audio)."""
        self.codec = codec
        self.clock_rate = codec.clockRate
        self.layers = layers
        self.keyframes = [KeyframeRequester(functools.partial(send_pli, layer)) for layer in range(layers)]
        """One requester per layer: a PLI names one SSRC."""
        self.downtracks: list[DownTrack] = []
        self._is_keyframe = keyframe_detector(codec.mimeType)
        self._cache: list[list[RtpPacket | None]] = [
            [None] * CACHE_SIZE if kind == "video" else [] for _ in range(layers)]
        self._ssrcs: list[int | None] = [None] * layers
        self.sources: list[object] = [object() for _ in range(layers)]
        """Identity of each layer's current stream: a new one when its SSRC changes."""
        self.bitrates = [0.0] * layers
        """Bits per second of each layer over the last full second."""
        self._bytes = [0] * layers
        self._window_start = 0.0
        self.last_packet_at = [0.0] * layers
        self.packets = 0
        self.keyframes_seen = 0
        self._wrong_codec_logged = False
        self.closed = False

    def best_active(self, wanted: int, now: float) -> int:
        """The highest layer up to ``wanted`` that the publisher is sending now (a browser turns its
        upper layers on only as its bandwidth estimate grows, and off when it falls)."""
        for layer in range(wanted, 0, -1):
            if now - self.last_packet_at[layer] < LAYER_IDLE:
                return layer
        return 0

    def request_keyframe(self, layer: int) -> None:
        self.keyframes[layer].request()

    def push(self, packet: RtpPacket, layer: int = 0) -> None:
        """One packet from the publisher: forward it to every subscriber now."""
        if packet.payload_type != self.codec.payloadType:
            if not self._wrong_codec_logged:
                log.warning("%s %s: payload type %d is not the negotiated %s; dropped", self.publisher_id,
                            self.kind, packet.payload_type, self.codec.mimeType)
                self._wrong_codec_logged = True
            return
        if not 0 <= layer < self.layers:
            return
        if packet.ssrc != self._ssrcs[layer]:
            self._ssrcs[layer] = packet.ssrc
            self.sources[layer] = object()
        self.packets += 1
        now = time.monotonic()
        self.last_packet_at[layer] = now
        self._measure(layer, len(packet.payload), now)
        keyframe = self._is_keyframe is not None and self._is_keyframe(packet.payload)
        if keyframe:
            self.keyframes_seen += 1
            self.keyframes[layer].keyframe_received()
        cache = self._cache[layer]
        if cache and packet.payload:
            cache[packet.sequence_number % CACHE_SIZE] = packet
        templates: dict[TemplateKey, tuple[bytes, bytes]] = {}
        for downtrack in self.downtracks:
            try:
                downtrack.forward(packet, layer, keyframe, templates, now)
            except Exception:
                # One subscriber's failure must not cost the others this packet, nor reach aiortc's
                # receive loop, whose task would end and take the publisher's media with it.
                log.exception("forwarding %s's %s to %s failed; that subscriber stops receiving it",
                              self.publisher_id, self.kind, downtrack.subscriber_id)
                downtrack.closed = True
        if any(d.closed for d in self.downtracks):
            self.downtracks = [d for d in self.downtracks if not d.closed]

    def _measure(self, layer: int, size: int, now: float) -> None:
        self._bytes[layer] += size
        elapsed = now - self._window_start
        if elapsed >= 1.0:
            self.bitrates = [8 * b / elapsed for b in self._bytes]
            self._bytes = [0] * self.layers
            self._window_start = now

    def template(self, packet: RtpPacket, key: TemplateKey, mid: str, extensions: HeaderExtensionsMap,
                 templates: dict[TemplateKey, tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
        """The packet serialised for one subscriber layout, computed once per source packet."""
        found = templates.get(key)
        if found is not None:
            return found
        out = RtpPacket(payload_type=key[0], marker=packet.marker, payload=packet.payload)
        out.extensions.mid = mid
        # Stamped here, at the relay: the subscriber's bandwidth estimate (REMB) is about this leg.
        out.extensions.abs_send_time = (current_ntp_time() >> 14) & 0x00FFFFFF
        out.extensions.audio_level = packet.extensions.audio_level
        found = templates[key] = split_template(out.serialize(extensions))
        return found

    def cached(self, layer: int, sequence_number: int) -> RtpPacket | None:
        cache = self._cache[layer]
        if not cache:
            return None
        packet = cache[sequence_number % CACHE_SIZE]
        if packet is None or packet.sequence_number != sequence_number:
            return None
        return packet

    def add(self, downtrack: DownTrack) -> None:
        self.downtracks.append(downtrack)

    def remove(self, downtrack: DownTrack) -> None:
        if downtrack in self.downtracks:
            self.downtracks.remove(downtrack)

    def close(self) -> None:
        self.closed = True
        for requester in self.keyframes:
            requester.close()
        for downtrack in list(self.downtracks):
            downtrack.close()
        self.downtracks.clear()
