"""Loopback test peers for media/: a browser-like publisher and subscriber built on aiortc."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import os
import time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket, is_rtcp
from av import AudioFrame, VideoFrame

from media.sfu import TrackInfo
from tests.media.link import LinkProxy


class ColourTrack(MediaStreamTrack):
    """A synthetic 320x240 video at 15 fps whose colour changes over time.

    With ``noise``, every frame is random: the encoder then needs its full bitrate (~500 kbps), which
    a flat colour never does.
    """

    kind = "video"

    def __init__(self, noise: bool = False, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._width, self._height = width, height
        self._count = 0
        self._start = time.monotonic()
        self._noise = noise

    async def recv(self) -> VideoFrame:
        self._count += 1
        await asyncio.sleep(max(0.0, self._start + self._count / 15 - time.monotonic()))
        frame = VideoFrame(width=self._width, height=self._height, format="yuv420p")
        shade = (self._count * 5) % 255
        for plane in frame.planes:
            plane.update(os.urandom(plane.buffer_size) if self._noise else bytes([shade]) * plane.buffer_size)
        frame.pts = self._count * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class ToneTrack(MediaStreamTrack):
    """20 ms of 48 kHz mono audio at a time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start = time.monotonic()

    async def recv(self) -> AudioFrame:
        samples = int(AUDIO_PTIME * 48000)
        await asyncio.sleep(max(0.0, self._start + self._pts / 48000 - time.monotonic()))
        frame = AudioFrame(format="s16", layout="mono", samples=samples)
        tone = b"".join(int(3000 * math.sin((self._pts + i) / 20)).to_bytes(2, "little", signed=True)
                        for i in range(samples))
        frame.planes[0].update(tone)
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += samples
        return frame


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class Counter:
    """Reads a received track and counts its frames."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.frames = 0
        self.width = 0
        self.first_frame_at: float | None = None
        self._task = asyncio.create_task(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
                self.frames += 1
                self.width = getattr(frame, "width", 0)

    def stop(self) -> None:
        self._task.cancel()


class SubscriberSink:
    """Plays the browser's part of the subscriber connection: answers every server offer.

    With a ``link``, the SDP candidates are rewritten so that all of this connection's traffic
    crosses that impaired link.
    """

    def __init__(self, link: LinkProxy | None = None) -> None:
        self.link = link
        self.pc = new_pc()
        self.offers: list[list[TrackInfo]] = []
        self.counters: dict[tuple[str, str], Counter] = {}
        self.by_source: dict[tuple[str, str], Counter] = {}
        """The same counters by (participant, source): a camera and a screen are both video."""
        self._owners: dict[str, tuple[str, str]] = {}
        self._sources: dict[str, tuple[str, str]] = {}
        self.participant = None  # set by the test once the SFU has made it
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.receiver.track is track and transceiver.mid in self._owners:
                counter = Counter(track)
                self.counters[self._owners[transceiver.mid]] = counter
                self.by_source[self._sources[transceiver.mid]] = counter

    async def send_subscriber_offer(self, sdp: str, tracks: list[TrackInfo]) -> None:
        self.offers.append(tracks)
        for info in tracks:
            self._owners[info.mid] = (info.participant_id, info.kind)
            self._sources[info.mid] = (info.participant_id, info.source)
        asyncio.get_running_loop().create_task(self._answer(sdp))

    async def _answer(self, sdp: str) -> None:
        if self.link is not None:
            sdp = self.link.server_offer(sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer = self.pc.localDescription.sdp
        if self.link is not None:
            answer = self.link.client_answer(answer)
        assert self.participant is not None
        await self.participant.handle_subscriber_answer(answer)


def record_payloads(pc: RTCPeerConnection, kind: str, direction: str) -> list[bytes]:
    """The RTP payloads a peer sends or receives for ``kind``, recorded on the way, unchanged.

    Wraps the transport's send (or the receiver's handler) and calls through: the media path is the
    real one.
    """
    payloads: list[bytes] = []
    for transceiver in pc.getTransceivers():
        if transceiver.kind != kind:
            continue
        if direction == "received":
            receiver = transceiver.receiver
            original = receiver._handle_rtp_packet

            async def handle(packet: RtpPacket, arrival_time_ms: int, original=original) -> None:  # type: ignore[no-untyped-def]
                payloads.append(packet.payload)
                await original(packet, arrival_time_ms)

            receiver._handle_rtp_packet = handle  # type: ignore[method-assign]
        else:
            sender = transceiver.sender
            original_send = sender.transport._send_rtp
            ssrc = sender._ssrc

            async def send(data: bytes, original_send=original_send, ssrc=ssrc) -> None:  # type: ignore[no-untyped-def]
                if not is_rtcp(data):
                    packet = RtpPacket.parse(data)
                    if packet.ssrc == ssrc:
                        payloads.append(packet.payload)
                await original_send(data)

            sender.transport._send_rtp = send  # type: ignore[method-assign]
    return payloads


def count_keyframe_requests(pc: RTCPeerConnection) -> list[float]:
    """When the publisher's video sender was asked for a keyframe (PLI or FIR), recorded on the way."""
    times: list[float] = []
    sender = next(t.sender for t in pc.getTransceivers() if t.kind == "video")
    original = sender._handle_rtcp_packet

    async def handle(packet: object) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            times.append(time.monotonic())
        await original(packet)  # type: ignore[arg-type]

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]
    return times


async def publish(participant: object, noise: bool = False, video_codec: str | None = None) -> RTCPeerConnection:
    """Offer a video and an audio track to the SFU on the publisher connection (``video_codec``,
    e.g. "video/H264", to offer only that codec, as an encoder box would)."""
    pc = new_pc()
    video = pc.addTransceiver(ColourTrack(noise), direction="sendonly")
    if video_codec is not None:
        video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                   if c.mimeType in (video_codec, "video/rtx")])
    pc.addTransceiver(ToneTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await participant.handle_publisher_offer(pc.localDescription.sdp)  # type: ignore[attr-defined]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc
