"""WHIP/WHEP on the media side: a publish-only session and a client-offered viewer, real aiortc peers."""

from __future__ import annotations

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from media.exceptions import InvalidSdp, NotPublished
from media.ice import IceConfig
from media.sfu import NoSignals, Sfu
from tests.media.peers import Counter, new_pc, publish, record_payloads
from tests.media.test_sfu import until


class WhepClient:
    """What a WHEP player does: offer recvonly audio and video, apply the answer, play."""

    def __init__(self, video_codec: str | None = None) -> None:
        self.pc = new_pc()
        self.counters: dict[str, Counter] = {}
        video = self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        if video_codec is not None:
            video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                       if c.mimeType == video_codec])
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.counters[track.kind] = Counter(track)

    def frames(self, kind: str) -> int:
        counter = self.counters.get(kind)
        return counter.frames if counter else 0

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def test_a_whep_viewer_plays_a_whip_publisher_unchanged() -> None:
    sfu = Sfu(IceConfig())
    room = sfu.room("lecture")
    encoder = room.add("encoder", NoSignals(), can_publish=True, can_subscribe=False)  # e.g. OBS over WHIP
    pcs: list[RTCPeerConnection] = [await publish(encoder)]
    sent = record_payloads(pcs[0], "video", "sent")
    client = WhepClient()
    pcs.append(client.pc)
    try:
        both = {("audio", "microphone"), ("video", "camera")}
        await until(lambda: None if set(encoder.published) == both else "the encoder has not published")
        await client.accept(await room.play("viewer-1", "encoder", await client.offer()))
        received = record_payloads(client.pc, "video", "received")
        await until(lambda: None if client.frames("video") > 10 and client.frames("audio") > 10
                    else f"viewer decoded {client.frames('video')} video, {client.frames('audio')} audio frames")
        assert received and all(p in set(sent) for p in received), "the viewer got other bytes than published"
        await sfu.leave("lecture", "viewer-1")  # WHEP DELETE
        assert "viewer-1" not in room.viewers and client.pc.connectionState in ("closed", "failed", "connected")
        assert not any(d.subscriber_id == "viewer-1" for d in encoder.published[("video", "camera")].downtracks)
    finally:
        await sfu.close()
        for pc in pcs:
            await pc.close()
    assert sfu.rooms == {}


async def test_viewer_errors_and_a_publisher_leaving_ends_its_viewers() -> None:
    sfu = Sfu(IceConfig())
    room = sfu.room("r")
    idle = room.add("idle", NoSignals(), can_publish=True, can_subscribe=False)
    encoder = room.add("encoder", NoSignals(), can_publish=True, can_subscribe=False)
    pcs = [await publish(encoder)]
    try:
        client = WhepClient()
        pcs.append(client.pc)
        offer = await client.offer()
        with pytest.raises(NotPublished):
            await room.play("v", "idle", offer)
        with pytest.raises(NotPublished):
            await room.play("v", "nobody", offer)
        await until(lambda: None if ("video", "camera") in encoder.published else "the encoder has not published")
        h264_only = WhepClient(video_codec="video/H264")
        pcs.append(h264_only.pc)
        with pytest.raises(InvalidSdp, match="video/VP8"):  # nothing is transcoded for it
            await room.play("v", "encoder", await h264_only.offer())
        await client.accept(await room.play("v", "encoder", offer))
        with pytest.raises(ValueError, match="already"):
            await room.play("v", "encoder", offer)
        await sfu.leave("r", "encoder")
        assert room.viewers == {}, "the viewer of a publisher that left is still there"
        assert idle.id in room.participants
    finally:
        await sfu.close()
        for pc in pcs:
            await pc.close()
