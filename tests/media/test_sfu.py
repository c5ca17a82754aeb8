"""media.sfu with real aiortc peers on this namespace's addresses, no server/ involved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from media.exceptions import InvalidSdp, NegotiationError, NotAllowed
from media.ice import IceConfig
from media.sfu import Sfu
from tests.media.peers import SubscriberSink, publish


async def until(check: Callable[[], str | None], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    reason = check()
    while reason is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout} s: {reason}")
        await asyncio.sleep(0.2)
        reason = check()


def frames(sink: SubscriberSink, publisher: str, kind: str) -> int:
    counter = sink.counters.get((publisher, kind))
    return counter.frames if counter else 0


async def test_each_participant_receives_the_others_audio_and_video() -> None:
    sfu = Sfu(IceConfig())
    room = sfu.room("r1")
    sink_a, sink_b = SubscriberSink(), SubscriberSink()
    a = room.add("alice", sink_a, can_publish=True, can_subscribe=True)
    b = room.add("bob", sink_b, can_publish=True, can_subscribe=True)
    sink_a.participant, sink_b.participant = a, b
    pc_a, pc_b = await publish(a), await publish(b)
    try:
        await until(lambda: None if frames(sink_b, "alice", "video") > 10 and frames(sink_b, "alice", "audio") > 10
                    else f"bob got {frames(sink_b, 'alice', 'video')} video / "
                         f"{frames(sink_b, 'alice', 'audio')} audio frames of alice")
        await until(lambda: None if frames(sink_a, "bob", "video") > 10 and frames(sink_a, "bob", "audio") > 10
                    else f"alice got {frames(sink_a, 'bob', 'video')} video frames of bob")
        assert sink_a.counters[("bob", "video")].width == 320
        # Each publisher's audio and video form one media stream (browsers lip-sync within a stream).
        msids = [line for line in sink_b.pc.remoteDescription.sdp.splitlines() if line.startswith("a=msid:")]
        assert len(msids) == 2 and all(line.startswith("a=msid:alice ") for line in msids), msids
        # Nobody receives their own tracks back.
        assert not any(owner == "alice" for owner, _ in sink_a.counters)
    finally:
        await sfu.close()
        for pc in (pc_a, pc_b, sink_a.pc, sink_b.pc):
            await pc.close()


async def test_a_late_joiner_gets_existing_tracks_and_a_leaver_is_renegotiated_away() -> None:
    sfu = Sfu(IceConfig())
    room = sfu.room("r2")
    sink_a, sink_c = SubscriberSink(), SubscriberSink()
    a = room.add("alice", sink_a, can_publish=True, can_subscribe=True)
    sink_a.participant = a
    pc_a = await publish(a)
    c = room.add("carol", sink_c, can_publish=False, can_subscribe=True)
    sink_c.participant = c
    try:
        await until(lambda: None if frames(sink_c, "alice", "video") > 5 else "carol has no video of alice yet")
        offers_before = len(sink_c.offers)
        await sfu.leave("r2", "alice")
        await until(lambda: None if len(sink_c.offers) > offers_before else "carol was not re-offered")
        assert sink_c.offers[-1] == [], "the renegotiated offer still maps alice's tracks"
        assert "r2" in sfu.rooms and list(sfu.rooms["r2"].participants) == ["carol"]
        await sfu.leave("r2", "carol")
        assert "r2" not in sfu.rooms
    finally:
        await sfu.close()
        for pc in (pc_a, sink_a.pc, sink_c.pc):
            await pc.close()


async def test_bad_input_is_refused_with_media_errors() -> None:
    sfu = Sfu(IceConfig())
    room = sfu.room("r3")
    sink = SubscriberSink()
    viewer = room.add("viewer", sink, can_publish=False, can_subscribe=True)
    publisher = room.add("pub", SubscriberSink(), can_publish=True, can_subscribe=True)
    try:
        with pytest.raises(NotAllowed):
            await viewer.handle_publisher_offer("v=0\r\n")
        for garbage in ("", "garbage", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 300\r\n"):
            with pytest.raises(InvalidSdp):
                await publisher.handle_publisher_offer(garbage)
        with pytest.raises(NegotiationError):
            await publisher.handle_subscriber_answer("v=0\r\n")
        with pytest.raises(NegotiationError):
            await publisher.add_ice_candidate("publisher", "candidate:1 1 udp 1 10.77.0.1 9 typ host", "0", 0)
        with pytest.raises(ValueError, match="already"):
            room.add("pub", SubscriberSink(), can_publish=True, can_subscribe=True)
    finally:
        await sfu.close()
