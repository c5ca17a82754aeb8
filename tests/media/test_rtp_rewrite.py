"""media.rtp_rewrite and media.keyframes: pure code, byte fixtures, no network."""

from __future__ import annotations

import asyncio

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media.keyframes import KeyframeRequester, h264_keyframe_start, keyframe_detector, vp8_keyframe_start
from media.rtp_rewrite import Rewriter, rewrite, split_template


def test_output_is_continuous_across_drops_and_wraps() -> None:
    r = Rewriter(first_seq=100, first_ts=5000)
    source = object()
    r.switch_source(source, in_seq=65534, in_ts=2**32 - 3000, ts_gap=0)
    assert r.forward(65534, 2**32 - 3000) == (100, 5000)
    r.drop(65535)  # a frame dropped for a slow link
    assert r.forward(0, 0) == (101, 8000)  # the hole is closed; the timestamp keeps real time
    assert r.forward(2, 3000) == (103, 11000)  # a hole in the *source* stays, so NACKs can find it
    assert r.source_seq(103) == 2 and r.source_seq(101) == 0 and r.source_seq(102) is None


def test_a_new_source_continues_the_numbering() -> None:
    r = Rewriter(first_seq=10, first_ts=0)
    a, b = object(), object()
    r.switch_source(a, 500, 90000, 0)
    r.forward(500, 90000)
    r.forward(501, 93000)
    assert r.needs_switch(b)
    r.switch_source(b, 40000, 7, ts_gap=3000)  # another SSRC with unrelated numbers, 33 ms later
    assert r.forward(40000, 7) == (12, 6000)
    assert r.forward(40001, 3007) == (13, 9000)


def test_late_packets_do_not_move_the_output() -> None:
    r = Rewriter(first_seq=0, first_ts=0)
    r.switch_source(object(), 10, 0, 0)
    r.forward(10, 0)
    r.forward(12, 0)
    r.drop(11)  # late and dropped: it left no hole to close
    assert r.forward(13, 0) == (3, 0)


def test_rewrite_replaces_only_sequence_timestamp_and_ssrc() -> None:
    original = RtpPacket(payload_type=96, marker=1, sequence_number=1, timestamp=2, ssrc=3, payload=b"payload")
    original.extensions.mid = "7"
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpSendParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid")]))
    data = rewrite(split_template(original.serialize(extensions)), 65535, 2**32 - 1, 0xDEADBEEF)
    parsed = RtpPacket.parse(data, extensions)
    assert (parsed.sequence_number, parsed.timestamp, parsed.ssrc) == (65535, 2**32 - 1, 0xDEADBEEF)
    assert (parsed.payload_type, parsed.marker, parsed.payload, parsed.extensions.mid) == (96, 1, b"payload", "7")


# VP8 payloads as Chrome and libvpx send them: descriptor, then the first byte of the frame tag.
VP8_KEY_SHORT = bytes([0x10, 0x50])  # S=1 PartID=0, frame tag P=0
VP8_DELTA_SHORT = bytes([0x10, 0x51])  # P=1
VP8_KEY_PICTURE_ID = bytes([0x90, 0x80, 0x81, 0x23, 0x50])  # X, I, 15-bit picture id
VP8_KEY_ALL_EXTENSIONS = bytes([0x90, 0xE0, 0x12, 0x00, 0x40, 0x50])  # X, I (7 bit), L, T
VP8_CONTINUATION = bytes([0x00, 0x50])  # S=0: middle of a frame


def test_vp8_keyframes_are_recognised() -> None:
    assert vp8_keyframe_start(VP8_KEY_SHORT)
    assert vp8_keyframe_start(VP8_KEY_PICTURE_ID)
    assert vp8_keyframe_start(VP8_KEY_ALL_EXTENSIONS)
    assert not vp8_keyframe_start(VP8_DELTA_SHORT)
    assert not vp8_keyframe_start(VP8_CONTINUATION)
    assert not vp8_keyframe_start(b"")
    assert not vp8_keyframe_start(bytes([0x90]))  # truncated: no crash


def test_h264_keyframes_are_recognised() -> None:
    assert h264_keyframe_start(bytes([0x65, 0x88]))  # IDR slice
    assert h264_keyframe_start(bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]))  # STAP-A: SPS, PPS
    assert h264_keyframe_start(bytes([0x7C, 0x85, 0x88]))  # FU-A start of an IDR
    assert not h264_keyframe_start(bytes([0x7C, 0x05, 0x88]))  # FU-A continuation
    assert not h264_keyframe_start(bytes([0x41, 0x9A]))  # non-IDR slice
    assert keyframe_detector("audio/opus") is None and keyframe_detector("video/VP8") is vp8_keyframe_start


async def test_keyframe_requests_are_coalesced_and_none_is_lost() -> None:
    now = [100.0]
    sent: list[float] = []
    requester = KeyframeRequester(lambda: sent.append(now[0]), interval=0.05, clock=lambda: now[0])
    requester.request()
    assert sent == [100.0]  # the first goes out at once
    for _ in range(20):
        requester.request()
    assert len(sent) == 1  # the rest wait for the interval, folded into one
    now[0] += 0.05
    await asyncio.sleep(0.08)
    assert len(sent) == 2
    requester.request()  # inside the new interval...
    requester.keyframe_received()  # ...but a keyframe came anyway: nothing more to send
    await asyncio.sleep(0.08)
    assert len(sent) == 2 and requester.requested == 22
