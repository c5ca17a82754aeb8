"""Loopback test peers for media/: a browser-like publisher and subscriber built on aiortc."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from media.sfu import TrackInfo


class ColourTrack(MediaStreamTrack):
    """A synthetic 320x240 video at 15 fps whose colour changes over time."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._start = time.monotonic()

    async def recv(self) -> VideoFrame:
        self._count += 1
        await asyncio.sleep(max(0.0, self._start + self._count / 15 - time.monotonic()))
        frame = VideoFrame(width=320, height=240, format="yuv420p")
        shade = (self._count * 5) % 255
        for plane in frame.planes:
            plane.update(bytes([shade]) * plane.buffer_size)
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
        self._task = asyncio.create_task(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.frames += 1
                self.width = getattr(frame, "width", 0)

    def stop(self) -> None:
        self._task.cancel()


class SubscriberSink:
    """Plays the browser's part of the subscriber connection: answers every server offer."""

    def __init__(self) -> None:
        self.pc = new_pc()
        self.offers: list[list[TrackInfo]] = []
        self.counters: dict[tuple[str, str], Counter] = {}
        self._owners: dict[str, tuple[str, str]] = {}
        self.participant = None  # set by the test once the SFU has made it
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.receiver.track is track and transceiver.mid in self._owners:
                self.counters[self._owners[transceiver.mid]] = Counter(track)

    async def send_subscriber_offer(self, sdp: str, tracks: list[TrackInfo]) -> None:
        self.offers.append(tracks)
        for info in tracks:
            self._owners[info.mid] = (info.participant_id, info.kind)
        asyncio.get_running_loop().create_task(self._answer(sdp))

    async def _answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        assert self.participant is not None
        await self.participant.handle_subscriber_answer(self.pc.localDescription.sdp)


async def publish(participant: object) -> RTCPeerConnection:
    """Offer a video and an audio track to the SFU on the publisher connection."""
    pc = new_pc()
    pc.addTransceiver(ColourTrack(), direction="sendonly")
    pc.addTransceiver(ToneTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await participant.handle_publisher_offer(pc.localDescription.sdp)  # type: ignore[attr-defined]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc
