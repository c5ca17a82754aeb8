"""Keyframes: recognising them in RTP payloads, and asking the publisher for one.

A forwarding relay cannot make a keyframe: only the publisher's encoder can. Every subscriber that
needs one (it just joined, it lost packets, its video was dropped while its link was slow) asks the
relay, and the relay turns those asks into at most one PLI per interval towards the publisher.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

KEYFRAME_INTERVAL = 0.5
"""Fewest seconds between two PLIs to one publisher. Coalesces a burst of joins into one keyframe
(a keyframe costs 5-10 times a delta frame) while keeping a late joiner's first frame within 1 s."""


def vp8_keyframe_start(payload: bytes) -> bool:
    """The packet starts a VP8 keyframe (RFC 7741 payload descriptor, then the VP8 frame tag)."""
    if not payload:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x0F:  # S bit unset, or not partition 0: not a frame start
        return False
    i = 1
    if first & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return False
        ext = payload[1]
        i = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= i:
                return False
            i += 2 if payload[i] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            i += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            i += 1
    if len(payload) <= i:
        return False
    return not payload[i] & 0x01  # the frame tag's P bit is 0 for a keyframe


_H264_IDR, _H264_SPS, _H264_STAP_A, _H264_FU_A = 5, 7, 24, 28


def h264_keyframe_start(payload: bytes) -> bool:
    """The packet starts an H.264 IDR picture or carries its SPS (RFC 6184 packetisation)."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (_H264_IDR, _H264_SPS):
        return True
    if nal == _H264_STAP_A:
        i = 1
        while i + 2 < len(payload):
            size = int.from_bytes(payload[i:i + 2], "big")
            if payload[i + 2] & 0x1F in (_H264_IDR, _H264_SPS):
                return True
            i += 2 + size
        return False
    if nal == _H264_FU_A and len(payload) > 1:
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in (_H264_IDR, _H264_SPS)
    return False


def keyframe_detector(mime_type: str) -> Callable[[bytes], bool] | None:
    """The detector for a codec, or None for audio codecs, whose every packet can be decoded."""
    name = mime_type.lower()
    if name == "video/vp8":
        return vp8_keyframe_start
    if name == "video/h264":
        return h264_keyframe_start
    return None


class KeyframeRequester:
    """Coalesces keyframe requests for one published track into rate-limited PLIs.

    A request inside the quiet interval is not lost: one PLI goes out when the interval ends, unless
    a keyframe arrived in the meantime and satisfied it.
    """

    def __init__(self, send_pli: Callable[[], None], interval: float = KEYFRAME_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send_pli = send_pli
        self._interval = interval
        self._clock = clock
        self._last_sent = -interval
        self._pending: asyncio.TimerHandle | None = None
        self.sent = 0
        self.requested = 0

    def request(self) -> None:
        self.requested += 1
        if self._pending is not None:
            return  # already scheduled: this request is folded into it
        wait = self._last_sent + self._interval - self._clock()
        if wait <= 0:
            self._fire()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._fire)

    def keyframe_received(self) -> None:
        """A keyframe went out to everyone: a request waiting for the interval is answered."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _fire(self) -> None:
        self._pending = None
        self._last_sent = self._clock()
        self.sent += 1
        self._send_pli()

    def close(self) -> None:
        self.keyframe_received()
