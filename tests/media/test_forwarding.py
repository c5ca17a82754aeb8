"""The forwarding relay with real aiortc peers: bytes unchanged, keyframes, late joiners, bad links."""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection

from media.downtrack import AUDIO_MAX_BACKLOG, DownTrack
from media.ice import IceConfig
from media.rtp_rewrite import Rewriter
from media.sfu import Participant, Sfu
from tests.media.link import LinkProxy
from tests.media.peers import SubscriberSink, count_keyframe_requests, publish, record_payloads
from tests.media.test_sfu import frames, until

HOST = "10.77.0.1"  # the namespace's veth address (scripts/netns-run.sh)


class Room:
    """One SFU room with helpers to add peers, and everything closed at the end."""

    def __init__(self) -> None:
        self.sfu = Sfu(IceConfig())
        self.room = self.sfu.room("r")
        self.pcs: list[RTCPeerConnection] = []
        self.links: list[LinkProxy] = []

    async def publisher(self, name: str, noise: bool = False) -> tuple[Participant, RTCPeerConnection]:
        participant = self.room.add(name, SubscriberSink(), can_publish=True, can_subscribe=False)
        pc = await publish(participant, noise)
        self.pcs.append(pc)
        return participant, pc

    async def subscriber(self, name: str, link: LinkProxy | None = None) -> tuple[Participant, SubscriberSink]:
        if link is not None:
            await link.start()
            self.links.append(link)
        sink = SubscriberSink(link)
        participant = self.room.add(name, sink, can_publish=False, can_subscribe=True)
        sink.participant = participant
        self.pcs.append(sink.pc)
        return participant, sink

    async def close(self) -> None:
        await self.sfu.close()
        for pc in self.pcs:
            await pc.close()
        for link in self.links:
            link.close()


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    r = Room()
    yield r
    await r.close()


def video_downtrack(subscriber: Participant) -> DownTrack:
    return next(d for d in subscriber.downtracks() if d.kind == "video")


async def test_subscribers_receive_the_publishers_bytes_unchanged(room: Room) -> None:
    """No decode and no encode: every payload a subscriber receives is one the publisher sent.

    A relay that decodes and re-encodes (aiortc's MediaRelay) produces other bytes and fails here.
    """
    _, pc = await room.publisher("teacher")
    sent_video, sent_audio = record_payloads(pc, "video", "sent"), record_payloads(pc, "audio", "sent")
    _, sink = await room.subscriber("student")
    await until(lambda: None if sink.pc.getTransceivers() else "the student has no transceivers yet")
    received_video = record_payloads(sink.pc, "video", "received")
    received_audio = record_payloads(sink.pc, "audio", "received")
    await until(lambda: None if frames(sink, "teacher", "video") > 20 and frames(sink, "teacher", "audio") > 20
                else f"student decoded {frames(sink, 'teacher', 'video')} video, "
                     f"{frames(sink, 'teacher', 'audio')} audio frames")
    assert len(received_video) > 20 and len(received_audio) > 20
    published_video, published_audio = set(sent_video), set(sent_audio)
    assert all(p in published_video for p in received_video), "a video payload was not the publisher's"
    assert all(p in published_audio for p in received_audio), "an audio payload was not the publisher's"


async def test_a_late_joiner_decodes_its_first_frame_within_one_second(room: Room) -> None:
    """aiortc's publisher makes a keyframe only at the start and when asked: without the relay's
    request the late joiner would wait 100 s (its keyframe interval)."""
    _, pc = await room.publisher("teacher")
    requests = count_keyframe_requests(pc)
    _, early = await room.subscriber("early")
    await until(lambda: None if frames(early, "teacher", "video") > 5 else "early student has no video")
    await asyncio.sleep(2.0)  # well past the publisher's first keyframe
    before = len(requests)
    late, sink = await room.subscriber("late")
    await until(lambda: None if frames(sink, "teacher", "video") > 0 else "late student decoded nothing")
    downtrack = video_downtrack(late)
    counter = sink.counters[("teacher", "video")]
    assert downtrack.ready_at is not None and counter.first_frame_at is not None
    delay = counter.first_frame_at - downtrack.ready_at
    assert delay < 1.0, f"first decoded frame {delay:.2f} s after the connection was ready"
    assert len(requests) > before, "the publisher was not asked for a keyframe"


async def test_keyframe_requests_reach_the_publisher_coalesced(room: Room) -> None:
    teacher, pc = await room.publisher("teacher")
    requests = count_keyframe_requests(pc)
    sinks = [(await room.subscriber(f"s{i}"))[1] for i in range(3)]
    await until(lambda: None if all(frames(s, "teacher", "video") > 5 for s in sinks) else "students lack video")
    await asyncio.sleep(1.0)
    before = len(requests)
    start = time.monotonic()
    for sink in sinks:  # a burst of 30 PLIs, as 30 students losing a packet at once would send
        receiver = next(t.receiver for t in sink.pc.getTransceivers() if t.kind == "video")
        ssrc = receiver.getSynchronizationSources()[0].source
        for _ in range(10):
            await receiver._send_rtcp_pli(ssrc)
    await until(lambda: None if len(requests) > before else "no keyframe request reached the publisher", 1.0)
    assert requests[before] - start < 0.5, "the first request was held back"
    await asyncio.sleep(1.0)
    arrived = len(requests) - before
    assert 1 <= arrived <= 3, f"{arrived} PLIs reached the publisher for 30 requests in ~1 s"
    assert teacher.published[("video", "camera")].keyframes[0].requested >= 30


def retained_bytes(downtrack: DownTrack) -> int:
    """Memory a down track holds of its own (not the forwarder, transceiver or transport it points to)."""
    total = sys.getsizeof(downtrack.__dict__)
    for value in vars(downtrack).values():
        if isinstance(value, Rewriter):
            total += sum(sys.getsizeof(getattr(value, slot)) for slot in Rewriter.__slots__)
        elif isinstance(value, int | float | str | bytes | bool | tuple | array | list | dict | type(None)):
            total += sys.getsizeof(value)
    return total


async def test_slow_and_stalled_subscribers_do_not_hold_back_the_others(room: Room) -> None:
    await room.publisher("teacher", noise=True)  # ~500 kbps of video
    fast = [(await room.subscriber(f"fast{i}"))[1] for i in range(2)]
    slow_link, stalled_link = LinkProxy(HOST), LinkProxy(HOST)
    slow, slow_sink = await room.subscriber("slow", slow_link)
    stalled, stalled_sink = await room.subscriber("stalled", stalled_link)
    everyone = [*fast, slow_sink, stalled_sink]
    await until(lambda: None if all(frames(s, "teacher", "video") > 5 for s in everyone)
                else f"video frames so far: {[frames(s, 'teacher', 'video') for s in everyone]}")

    slow_link.rate_bps = 150_000  # a third of the video's bitrate: most of it cannot pass
    stalled_link.stalled = True
    stalled_video = video_downtrack(stalled)
    memory_before = retained_bytes(stalled_video)
    fast_before = [frames(s, "teacher", "video") for s in fast]
    slow_audio_before = frames(slow_sink, "teacher", "audio")
    window = 8.0
    start = time.monotonic()
    while time.monotonic() - start < window:
        await asyncio.sleep(0.25)
        for downtrack in (*slow.downtracks(), *stalled.downtracks()):
            backlog = downtrack._path.backlog()
            assert backlog is None or backlog <= AUDIO_MAX_BACKLOG
    elapsed = time.monotonic() - start

    for sink, before in zip(fast, fast_before, strict=True):
        fps = (frames(sink, "teacher", "video") - before) / elapsed
        assert fps >= 0.85 * 15, f"a subscriber on a good link got {fps:.1f} fps of 15"
    slow_video = video_downtrack(slow)
    assert slow_video.pauses >= 1 and slow_video.dropped > 0, (
        f"the slow subscriber's video was never paused (loss reported {slow_video.loss:.2f})")
    audio_fps = (frames(slow_sink, "teacher", "audio") - slow_audio_before) / elapsed
    assert audio_fps >= 0.6 * 50, f"the slow subscriber's audio fell to {audio_fps:.0f} of 50 frames/s"
    memory_after = retained_bytes(stalled_video)
    assert memory_after <= memory_before + 256, (
        f"a stalled subscriber's down track grew from {memory_before} to {memory_after} bytes")
    assert stalled_link.dropped > 100, "the stalled link was not stalled"


async def test_packets_lost_on_a_subscribers_link_are_retransmitted(room: Room) -> None:
    """5 % loss between relay and subscriber: its NACKs are answered from the relay's cache over RTX,
    so it keeps decoding at nearly the full frame rate."""
    await room.publisher("teacher", noise=True)
    link = LinkProxy(HOST)
    lossy, sink = await room.subscriber("lossy", link)
    await until(lambda: None if frames(sink, "teacher", "video") > 5 else "the lossy subscriber has no video")
    link.loss = 0.05
    before, start = frames(sink, "teacher", "video"), time.monotonic()
    await asyncio.sleep(5.0)
    fps = (frames(sink, "teacher", "video") - before) / (time.monotonic() - start)
    downtrack = video_downtrack(lossy)
    assert downtrack.retransmitted > 10, f"only {downtrack.retransmitted} packets were retransmitted"
    assert fps >= 0.8 * 15, f"the subscriber decoded {fps:.1f} fps of 15 through 5 % loss"


async def test_a_subscriber_whose_browser_went_away_does_not_break_a_new_publisher(room: Room) -> None:
    await room.publisher("first")
    gone, gone_sink = await room.subscriber("gone")
    await until(lambda: None if frames(gone_sink, "first", "video") > 3 else "'gone' has no video yet")
    await gone_sink.pc.close()  # the tab closed; its signalling has not noticed yet
    await until(lambda: None if gone.subscriber is not None and gone.subscriber.signalingState == "closed"
                else "the relay's connection to 'gone' is still open")
    await room.publisher("second")  # subscribes 'gone' too, whose connection aiortc has closed
    _, sink = await room.subscriber("present")
    await until(lambda: None if frames(sink, "second", "video") > 3 else "'present' has no video of 'second'")


async def test_h264_is_forwarded_to_subscribers_in_h264(room: Room) -> None:
    """A publisher that sends H.264 (an encoder box, an iPhone): subscribers are offered H.264 only,
    and receive the publisher's bytes."""
    teacher = room.room.add("encoder", SubscriberSink(), can_publish=True, can_subscribe=False)
    pc = await publish(teacher, video_codec="video/H264")
    room.pcs.append(pc)
    sent = record_payloads(pc, "video", "sent")
    _, sink = await room.subscriber("student")
    await until(lambda: None if sink.pc.getTransceivers() else "the student has no transceivers yet")
    received = record_payloads(sink.pc, "video", "received")
    await until(lambda: None if frames(sink, "encoder", "video") > 10 else "the student decoded no H.264")
    offered = [line for line in sink.pc.remoteDescription.sdp.splitlines() if line.startswith("a=rtpmap:")]
    assert any("H264/90000" in line for line in offered) and not any("VP8" in line for line in offered)
    assert received and all(p in set(sent) for p in received)
    assert teacher.published[("video", "camera")].keyframes_seen > 0, "H.264 keyframes were not recognised"
