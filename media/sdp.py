"""Validation of SDP from clients, before aiortc sees it.

aiortc's parser validates with assert/int()/next(): a hostile SDP raises AssertionError, KeyError,
StopIteration… Every failure here becomes one :class:`InvalidSdp` with a message fit for the client.
"""

from __future__ import annotations

from aiortc import sdp as aiortc_sdp

from media.exceptions import InvalidSdp

MAX_SDP_BYTES = 32 * 1024  # a browser offer with three simulcast layers is ~6 KiB
MAX_MEDIA_SECTIONS = 16


def parse_offer(text: str) -> aiortc_sdp.SessionDescription:
    return _parse(text, "offer")


def parse_answer(text: str) -> aiortc_sdp.SessionDescription:
    return _parse(text, "answer")


def _parse(text: str, kind: str) -> aiortc_sdp.SessionDescription:
    if len(text.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise InvalidSdp(f"the {kind} is larger than {MAX_SDP_BYTES} bytes")
    if not text.startswith("v=0"):
        raise InvalidSdp(f"the {kind} does not start with v=0")
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc raises anything from AssertionError to StopIteration
        raise InvalidSdp(f"the {kind} could not be parsed ({type(exc).__name__})") from None
    if not description.media:
        raise InvalidSdp(f"the {kind} has no media section")
    if len(description.media) > MAX_MEDIA_SECTIONS:
        raise InvalidSdp(f"the {kind} has more than {MAX_MEDIA_SECTIONS} media sections")
    for media in description.media:
        if media.kind not in ("audio", "video", "application"):
            raise InvalidSdp(f"unsupported media kind {media.kind!r}")
        for codec in media.rtp.codecs:
            if codec.payloadType is None or not 0 <= codec.payloadType <= 127:
                raise InvalidSdp(f"payload type {codec.payloadType} is outside 0-127")
        for fmt in media.fmt:
            if isinstance(fmt, int) and not 0 <= fmt <= 127:
                raise InvalidSdp(f"payload type {fmt} is outside 0-127")
        # aiortc builds media.dtls from a=setup alone: require the fingerprint explicitly.
        if media.kind != "application" and (
            media.ice is None or not media.ice.usernameFragment or media.dtls is None or not media.dtls.fingerprints
        ):
            raise InvalidSdp("a media section lacks ICE credentials or a DTLS fingerprint")
    return description
