"""DownTrack's drop policy and numbering, driven packet by packet through a Forwarder.

The subscriber's network is an in-memory path with a programmable socket backlog (the aiortc style:
no sockets where the network is not what is tested); the transceivers are real aiortc ones,
negotiated up to a local offer.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket, RtpPacket

from media.aiortc_taps import SilentTrack
from media.downtrack import AUDIO_MAX_BACKLOG, DownTrack
from media.forwarder import Forwarder

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
KEY, DELTA = bytes([0x10, 0x50]) + b"k" * 900, bytes([0x10, 0x51]) + b"d" * 900


@dataclass
class MemoryPath:
    backlog_bytes: int = 0
    sent: list[RtpPacket] = field(default_factory=list)

    def backlog(self) -> int | None:
        return self.backlog_bytes

    def send(self, packet: bytes) -> None:
        self.sent.append(RtpPacket.parse(packet))


@dataclass
class Setup:
    path: MemoryPath
    video: Forwarder
    audio: Forwarder
    video_down: DownTrack
    audio_down: DownTrack
    plis: list[int]
    seq: dict[str, int] = field(default_factory=lambda: {"video": 1000, "audio": 50})
    ts: dict[str, int] = field(default_factory=lambda: {"video": 90000, "audio": 0})
    ssrc: dict[str, int] = field(default_factory=lambda: {"video": 1111, "audio": 2222})

    def frame(self, payload: bytes, packets: int = 1) -> None:
        for i in range(packets):
            self.video.push(RtpPacket(payload_type=96, marker=int(i == packets - 1), sequence_number=self.seq["video"],
                                      timestamp=self.ts["video"], ssrc=self.ssrc["video"],
                                      payload=payload if i == 0 else bytes([0x00]) + payload[1:]))
            self.seq["video"] = (self.seq["video"] + 1) & 0xFFFF
        self.ts["video"] += 3000

    def audio_packet(self) -> None:
        self.audio.push(RtpPacket(payload_type=111, marker=1, sequence_number=self.seq["audio"],
                                  timestamp=self.ts["audio"], ssrc=self.ssrc["audio"], payload=b"opus" * 20))
        self.seq["audio"] += 1
        self.ts["audio"] += 960

    def sent(self, kind: str) -> list[RtpPacket]:
        ssrc = (self.video_down if kind == "video" else self.audio_down)._tap.ssrc
        return [p for p in self.path.sent if p.ssrc == ssrc]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video_t = pc.addTransceiver(SilentTrack("video"), direction="sendonly")
    audio_t = pc.addTransceiver(SilentTrack("audio"), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())  # settles mids, codecs, header extensions
    plis: list[int] = []
    path = MemoryPath()
    video = Forwarder("teacher", "video", VP8, lambda layer: plis.append(1))
    audio = Forwarder("teacher", "audio", OPUS, lambda layer: None)
    video_down, audio_down = DownTrack(video, "s", video_t, path), DownTrack(audio, "s", audio_t, path)
    video.add(video_down)
    audio.add(audio_down)
    yield Setup(path, video, audio, video_down, audio_down, plis)
    await pc.close()


def continuous(packets: list[RtpPacket]) -> bool:
    return all((b.sequence_number - a.sequence_number) & 0xFFFF == 1 for a, b in itertools.pairwise(packets))


async def test_a_new_subscriber_starts_at_a_keyframe_it_asked_for(setup: Setup) -> None:
    setup.frame(DELTA, 3)
    setup.frame(DELTA, 3)
    assert setup.sent("video") == [] and setup.plis == [1], "one keyframe request, no undecodable frame"
    setup.frame(KEY, 5)
    setup.frame(DELTA, 3)
    video = setup.sent("video")
    assert len(video) == 8 and video[0].payload == KEY and continuous(video)
    assert [p.payload_type for p in video] == [setup.video_down._pt] * 8  # the subscriber's payload type


async def test_video_goes_first_audio_last_and_video_resumes_at_a_keyframe(setup: Setup) -> None:
    setup.frame(KEY, 4)
    setup.audio_packet()
    setup.path.backlog_bytes = 1200  # the socket refused something: the link is full
    for _ in range(10):
        setup.frame(DELTA, 3)
        setup.audio_packet()
    assert len(setup.sent("video")) == 4, "video went on although the socket had a backlog"
    assert len(setup.sent("audio")) == 11, "audio was dropped while only video had to be"

    setup.path.backlog_bytes = AUDIO_MAX_BACKLOG + 1
    setup.audio_packet()
    assert len(setup.sent("audio")) == 11, "audio is dropped past its own, higher limit"

    setup.path.backlog_bytes = 0
    requested = setup.video.keyframes[0].requested
    setup.frame(DELTA, 3)
    setup.audio_packet()
    assert len(setup.sent("video")) == 4, "video resumed on a delta frame it cannot decode"
    assert setup.video.keyframes[0].requested == requested + 1
    setup.frame(KEY, 4)
    video, audio = setup.sent("video"), setup.sent("audio")
    assert len(video) == 8 and continuous(video), "the dropped frames left a hole in the sequence numbers"
    assert video[4].timestamp - video[0].timestamp == 12 * 3000, "timestamps must keep real time"
    assert len(audio) == 12 and continuous(audio)


async def test_a_change_of_source_continues_the_numbering(setup: Setup) -> None:
    setup.frame(KEY, 2)
    setup.frame(DELTA, 2)
    last = setup.sent("video")[-1]
    setup.ssrc["video"], setup.seq["video"], setup.ts["video"] = 9999, 40000, 123  # the publisher reconnected
    setup.frame(KEY, 2)
    after = setup.sent("video")
    assert after[4].sequence_number == (last.sequence_number + 1) & 0xFFFF
    assert 0 < (after[4].timestamp - last.timestamp) % (1 << 32) < 90000, "the timestamp jumped"


async def test_a_stuck_subscriber_holds_no_more_memory(setup: Setup) -> None:
    setup.frame(KEY, 3)
    setup.path.backlog_bytes = 10 * AUDIO_MAX_BACKLOG  # its socket never drains
    size = footprint(setup.video_down)
    for _ in range(2000):
        setup.frame(DELTA, 3)
        setup.audio_packet()
    assert footprint(setup.video_down) <= size, "a down track grew while everything it got was dropped"
    assert setup.video_down.dropped == 6000 and setup.audio_down.dropped == 2000


def footprint(downtrack: DownTrack) -> int:
    total = 0
    for value in vars(downtrack).values():
        total += sys.getsizeof(value)
        if isinstance(value, list | dict | set | tuple):
            total += sum(sys.getsizeof(v) for v in value)
    rewriter = downtrack._rewriter
    return total + sum(sys.getsizeof(getattr(rewriter, s)) for s in type(rewriter).__slots__)


@pytest.fixture
async def layered() -> AsyncIterator[tuple[Forwarder, DownTrack, MemoryPath, list[int]]]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(SilentTrack("video"), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    plis: list[int] = []
    path = MemoryPath()
    forwarder = Forwarder("teacher", "video", VP8, plis.append, layers=3)
    downtrack = DownTrack(forwarder, "s", transceiver, path)
    forwarder.add(downtrack)
    yield forwarder, downtrack, path, plis
    await pc.close()


async def test_simulcast_layers_switch_at_keyframes_with_continuous_numbering(
        layered: tuple[Forwarder, DownTrack, MemoryPath, list[int]]) -> None:
    forwarder, downtrack, path, plis = layered
    seqs = {0: 100, 1: 20000, 2: 50000}  # three SSRCs with unrelated numbering, as a browser sends them
    timestamps = {0: 1000, 1: 77777, 2: 5}

    def frame(payload: bytes) -> None:  # one frame of every layer, two packets each
        for layer in range(3):
            for i in range(2):
                forwarder.push(RtpPacket(payload_type=96, marker=i, sequence_number=seqs[layer],
                                         timestamp=timestamps[layer], ssrc=7000 + layer,
                                         payload=payload if i == 0 else bytes([0x00]) + payload[1:]), layer)
                seqs[layer] += 1
            timestamps[layer] += 3000

    frame(DELTA)
    assert path.sent == [] and plis[-1] == 2, "a new subscriber asks for the top layer's keyframe"
    plis.clear()
    frame(KEY)
    assert downtrack.layer == 2 and len(path.sent) == 2
    downtrack.set_max_layer(0)  # the tile became a thumbnail
    asked = forwarder.keyframes[0].requested
    frame(DELTA)
    assert downtrack.layer == 2, "it keeps the top layer until the low one's keyframe"
    assert forwarder.keyframes[0].requested == asked + 1, "the low layer's keyframe was not asked for"
    frame(KEY)
    assert downtrack.layer == 0 and downtrack.switches == 1
    frame(DELTA)
    sent = path.sent
    assert continuous(sent), [p.sequence_number for p in sent]
    assert len({p.ssrc for p in sent}) == 1
    assert all((b.timestamp - a.timestamp) % (1 << 32) < 90000 for a, b in itertools.pairwise(sent))
    assert [p.payload[:2] for p in sent[4:6]] == [KEY[:2], bytes([0x00]) + KEY[1:2]], "the switch began at a keyframe"
    # NACKs: a packet of the current layer is resent; one sent from the old layer is not (the cache
    # of the layer now sent holds other packets under those numbers).
    before = len(path.sent)
    downtrack._on_rtcp(RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=downtrack._ssrc,
                                       lost=[sent[4].sequence_number, sent[0].sequence_number]))
    resent = path.sent[before:]
    assert len(resent) == 1 and resent[0].payload[2:] == sent[4].payload  # RTX: original seq, payload
    assert int.from_bytes(resent[0].payload[:2], "big") == sent[4].sequence_number
    downtrack.set_max_layer(None)
    frame(KEY)
    assert downtrack.layer == 2


class BrokenPath(MemoryPath):
    def send(self, packet: bytes) -> None:
        raise RuntimeError("this subscriber's transport broke")


async def test_a_failing_subscriber_costs_the_others_nothing(setup: Setup) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver(SilentTrack("video"), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        broken = DownTrack(setup.video, "broken", transceiver, BrokenPath())
        setup.video.downtracks.insert(0, broken)  # served first, before the healthy one
        setup.frame(KEY, 3)
        setup.frame(DELTA, 3)
        assert len(setup.sent("video")) == 6, "the healthy subscriber lost packets to the broken one"
        assert broken.closed and broken not in setup.video.downtracks
    finally:
        await pc.close()


async def test_a_keyframe_is_asked_for_again_while_none_comes(setup: Setup) -> None:
    """The first PLI may be lost on the way; the waiting subscriber gets nothing, so it cannot ask."""
    setup.frame(DELTA, 2)
    asked = setup.video.keyframes[0].requested
    setup.frame(DELTA, 2)
    assert setup.video.keyframes[0].requested == asked, "asked again at once"
    await asyncio.sleep(1.1)
    setup.frame(DELTA, 2)
    assert setup.video.keyframes[0].requested == asked + 1, "never asked again"
