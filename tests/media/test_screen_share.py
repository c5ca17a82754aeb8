"""Screen sharing through media.sfu with real aiortc peers: a second video track, keyed by source.

The publisher offers a camera (320x240), a screen (640x360) and a microphone, naming each media
section's source as the browser does in its ``offer`` message; the subscriber decodes both videos and
tells them apart by the source the SFU announces with each track.
"""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription

from media.exceptions import InvalidTrackSource
from media.ice import IceConfig
from media.sfu import Participant, Sfu
from tests.media.peers import ColourTrack, SubscriberSink, ToneTrack, new_pc, publish
from tests.media.test_sfu import until


def decoded(sink: SubscriberSink, publisher: str, source: str) -> int:
    counter = sink.by_source.get((publisher, source))
    return counter.frames if counter else 0


async def renegotiate(pc: RTCPeerConnection, participant: Participant, sources: dict[str, str] | None = None) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    answer = await participant.handle_publisher_offer(pc.localDescription.sdp, sources)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def publish_with_screen(participant: Participant) -> tuple[RTCPeerConnection, RTCRtpTransceiver]:
    pc = new_pc()
    camera = pc.addTransceiver(ColourTrack(), direction="sendonly")
    screen = pc.addTransceiver(ColourTrack(width=640, height=360), direction="sendonly")
    microphone = pc.addTransceiver(ToneTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sources = {camera.mid: "camera", screen.mid: "screen", microphone.mid: "microphone"}
    answer = await participant.handle_publisher_offer(pc.localDescription.sdp, sources)  # type: ignore[arg-type]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, screen


async def test_a_screen_is_a_second_video_track_that_comes_and_goes_without_the_camera() -> None:
    sfu = Sfu(IceConfig())
    room = sfu.room("share")
    sink_a, sink_b = SubscriberSink(), SubscriberSink()
    alice = room.add("alice", sink_a, can_publish=True, can_subscribe=True)
    bob = room.add("bob", sink_b, can_publish=False, can_subscribe=True)
    sink_a.participant, sink_b.participant = alice, bob
    pc, screen = await publish_with_screen(alice)
    try:
        assert set(alice.published) == {("video", "camera"), ("video", "screen"), ("audio", "microphone")}
        await until(lambda: None if decoded(sink_b, "alice", "screen") > 10 and decoded(sink_b, "alice", "camera") > 10
                    else f"bob decoded {decoded(sink_b, 'alice', 'screen')} screen and "
                         f"{decoded(sink_b, 'alice', 'camera')} camera frames of alice")
        # Two separate pictures: the screen's own resolution, not the camera's.
        assert sink_b.by_source[("alice", "screen")].width == 640
        assert sink_b.by_source[("alice", "camera")].width == 320
        announced = {(t.kind, t.source) for t in sink_b.offers[-1]}
        assert announced == {("video", "camera"), ("video", "screen"), ("audio", "microphone")}
        # A thumbnail request concerns the camera: the screen stays at its best layer.
        bob.set_video_layer("alice", 0)
        screen_down = next(d for d in alice.published[("video", "screen")].downtracks)
        assert screen_down.max_layer == screen_down.forwarder.layers - 1

        # Stop sharing: the section goes inactive. aiortc's sender even keeps sending RTP on it,
        # which the relay must drop.
        offers_before = len(sink_b.offers)
        screen.direction = "inactive"
        await renegotiate(pc, alice)
        assert set(alice.published) == {("video", "camera"), ("audio", "microphone")}
        await until(lambda: None if len(sink_b.offers) > offers_before else "bob was not re-offered")
        assert {t.source for t in sink_b.offers[-1]} == {"camera", "microphone"}
        stopped_at = decoded(sink_b, "alice", "screen")
        camera_at = decoded(sink_b, "alice", "camera")
        await until(lambda: None if decoded(sink_b, "alice", "camera") > camera_at + 15
                    else "the camera stopped with the screen")
        assert decoded(sink_b, "alice", "screen") <= stopped_at + 2, "the stopped screen still reaches bob"

        # Share again on the same section: published again, and bob decodes it on a new track.
        old_counter = sink_b.by_source[("alice", "screen")]
        screen.direction = "sendonly"
        await renegotiate(pc, alice)
        assert ("video", "screen") in alice.published
        await until(lambda: None if sink_b.by_source[("alice", "screen")] is not old_counter
                    and decoded(sink_b, "alice", "screen") > 5 else "bob does not decode the screen shared again")
        assert sink_b.by_source[("alice", "screen")].width == 640
    finally:
        await sfu.close()
        for peer in (pc, sink_a.pc, sink_b.pc):
            await peer.close()


async def test_bad_sources_are_refused_and_nobody_else_notices() -> None:
    sfu = Sfu(IceConfig())
    room = sfu.room("bad-sources")
    sink_a, sink_b = SubscriberSink(), SubscriberSink()
    alice = room.add("alice", sink_a, can_publish=True, can_subscribe=True)
    bob = room.add("bob", sink_b, can_publish=True, can_subscribe=True)
    sink_a.participant, sink_b.participant = alice, bob
    pc_a = await publish(alice)
    peers = [pc_a]
    try:
        await until(lambda: None if decoded(sink_b, "alice", "camera") > 5 else "bob has no video of alice")

        async def refused(sections: list[str], sources: dict[str, str] | None, match: str) -> None:
            pc = new_pc()
            peers.append(pc)
            for kind in sections:
                pc.addTransceiver(ColourTrack() if kind == "video" else ToneTrack(), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            with pytest.raises(InvalidTrackSource, match=match):
                await bob.handle_publisher_offer(pc.localDescription.sdp, sources)

        await refused(["video", "audio"], {"0": "microphone"}, "cannot be the 'microphone'")
        await refused(["video", "audio"], {"1": "screen"}, "cannot be the 'screen'")
        await refused(["video"], {"7": "screen"}, "names no media section")
        await refused(["video"], {"0": "whiteboard"}, "cannot be the 'whiteboard'")
        await refused(["video", "video"], None, "both the 'camera'")
        await refused(["video", "video"], {"0": "screen", "1": "screen"}, "both the 'screen'")
        assert bob.published == {}, "a refused offer published something"

        # A track keeps its source: alice's camera section cannot turn into a screen.
        await pc_a.setLocalDescription(await pc_a.createOffer())
        camera_mid = next(t.mid for t in pc_a.getTransceivers() if t.kind == "video")
        with pytest.raises(InvalidTrackSource, match="keeps its source"):
            await alice.handle_publisher_offer(pc_a.localDescription.sdp, {camera_mid: "screen"})  # type: ignore[dict-item]
        assert set(alice.published) == {("video", "camera"), ("audio", "microphone")}

        # Alice's media still reaches bob, and bob can still publish properly afterwards.
        before = decoded(sink_b, "alice", "camera")
        await until(lambda: None if decoded(sink_b, "alice", "camera") > before + 10 else "alice's video stopped")
        pc_b, _ = await publish_with_screen(bob)
        peers.append(pc_b)
        await until(lambda: None if decoded(sink_a, "bob", "screen") > 5 else "alice does not decode bob's screen")
    finally:
        await sfu.close()
        for peer in (*peers, sink_a.pc, sink_b.pc):
            await peer.close()
