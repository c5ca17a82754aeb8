"""SDP from clients is checked before aiortc sees it: a real offer passes, hostile SDP is InvalidSdp."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.sdp import SessionDescription

from media.exceptions import InvalidSdp, MediaError
from media.sdp import MAX_MEDIA_SECTIONS, MAX_SDP_BYTES, parse_answer, parse_offer

Parser = Callable[[str], SessionDescription]
PARSERS: list[Parser] = [parse_offer, parse_answer]


async def _make_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        pc.addTransceiver("video")
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        return pc.localDescription.sdp
    finally:
        await pc.close()


@pytest.fixture(scope="module")
def real_offer() -> str:
    """An offer made by aiortc itself (ICE gathers on 127.0.0.1 only, see tests/conftest.py)."""
    return asyncio.run(_make_offer())


def lines_of(sdp: str) -> list[str]:
    return sdp.split("\r\n")


def first_payload_type(sdp: str, kind: str) -> str:
    """The first format of the m=<kind> line: m=<kind> <port> <proto> <first pt> ..."""
    m_line = next(line for line in lines_of(sdp) if line.startswith(f"m={kind} "))
    return m_line.split()[3]


def video_section_without(sdp: str, prefixes: tuple[str, ...]) -> str:
    """The SDP with the given attribute lines removed from the m=video section only."""
    lines = lines_of(sdp)
    start = next(i for i, line in enumerate(lines) if line.startswith("m=video"))
    kept = lines[:start] + [line for line in lines[start:] if not line.startswith(prefixes)]
    assert len(kept) < len(lines), f"no {prefixes} line in the video section"
    return "\r\n".join(kept)


def assert_invalid(text: str, parser: Parser = parse_offer) -> InvalidSdp:
    """The parser raises InvalidSdp (and not some other exception) for ``text``."""
    try:
        parser(text)
    except InvalidSdp as exc:
        assert exc.code == "invalid_sdp"
        return exc
    except Exception as exc:  # the point is that nothing else escapes
        pytest.fail(f"{parser.__name__} raised {type(exc).__name__}: {exc!r} instead of InvalidSdp")
    pytest.fail(f"{parser.__name__} accepted an SDP it should refuse: {text[:200]!r}")


def test_real_offer_parses(real_offer: str) -> None:
    description = parse_offer(real_offer)
    assert [media.kind for media in description.media] == ["audio", "video"]
    for media in description.media:
        assert media.ice.usernameFragment
        assert media.dtls is not None
        assert media.dtls.fingerprints
        assert media.rtp.codecs
        assert all(0 <= codec.payloadType <= 127 for codec in media.rtp.codecs)


def test_real_offer_also_parses_as_an_answer(real_offer: str) -> None:
    """The structure checks are the same both ways; only the wording of errors differs."""
    assert len(parse_answer(real_offer).media) == 2


def test_real_offer_with_bare_newlines_parses(real_offer: str) -> None:
    """Some clients send LF instead of CRLF; that is not a reason to refuse them."""
    assert len(parse_offer(real_offer.replace("\r\n", "\n")).media) == 2


@pytest.mark.parametrize("parser", PARSERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("text", ["", "garbage", " v=0", "\x00" * 10, "v=", "v=zero\r\n"],
                         ids=["empty", "garbage", "leading-space", "nul", "v-empty", "v-nan"])
def test_junk_is_invalid(parser: Parser, text: str) -> None:
    assert_invalid(text, parser)


def test_error_message_names_offer_or_answer() -> None:
    assert "offer" in str(assert_invalid("garbage", parse_offer))
    assert "answer" in str(assert_invalid("garbage", parse_answer))


def test_invalid_sdp_is_a_media_error() -> None:
    """The signalling layer catches MediaError and turns it into an error message for the client."""
    assert issubclass(InvalidSdp, MediaError)


def test_truncated_offer_is_invalid(real_offer: str) -> None:
    assert_invalid(real_offer[: len(real_offer) // 2])


@pytest.mark.parametrize("twentieths", range(1, 20))
def test_offer_truncated_anywhere_is_invalid(real_offer: str, twentieths: int) -> None:
    assert_invalid(real_offer[: len(real_offer) * twentieths // 20])


def test_payload_type_300_is_invalid(real_offer: str) -> None:
    first_pt = first_payload_type(real_offer, "audio")
    assert f"a=rtpmap:{first_pt} " in real_offer
    mutated = real_offer.replace(f"SAVPF {first_pt} ", "SAVPF 300 ", 1).replace(
        f"a=rtpmap:{first_pt} ", "a=rtpmap:300 ", 1)
    assert mutated != real_offer
    assert_invalid(mutated)


def test_payload_type_300_in_rtpmap_only_is_invalid(real_offer: str) -> None:
    """aiortc's own parser does not range-check rtpmap payload types; parse_offer does."""
    first_pt = first_payload_type(real_offer, "audio")
    exc = assert_invalid(real_offer.replace(f"a=rtpmap:{first_pt} ", "a=rtpmap:300 ", 1))
    assert "300" in str(exc)


def test_payload_type_128_in_video_is_invalid(real_offer: str) -> None:
    """128-255 passes aiortc's m= line check but is outside RTP's 7-bit payload type."""
    video = next(line for line in lines_of(real_offer) if line.startswith("m=video"))
    first_pt = video.split()[3]
    mutated = real_offer.replace(video, video.replace(f" {first_pt} ", " 128 ", 1)).replace(
        f"a=rtpmap:{first_pt} ", "a=rtpmap:128 ", 1)
    assert_invalid(mutated)


@pytest.mark.parametrize("parser", PARSERS, ids=lambda f: f.__name__)
def test_one_mebibyte_is_invalid(parser: Parser) -> None:
    exc = assert_invalid("v=0\r\n" + "a=x\r\n" * (1024 * 1024 // 5), parser)
    assert str(MAX_SDP_BYTES) in str(exc)


def test_size_limit_counts_bytes_not_characters(real_offer: str) -> None:
    """Multi-byte characters count by their UTF-8 size: 11 000 'ệ' are 33 000 bytes."""
    padded = real_offer + "a=x-pad:" + "ệ" * 11_000 + "\r\n"
    assert len(padded) < MAX_SDP_BYTES < len(padded.encode())
    assert_invalid(padded)


def test_sdp_without_media_sections_is_invalid(real_offer: str) -> None:
    session_only = real_offer[: real_offer.index("m=audio")]
    exc = assert_invalid(session_only)
    assert "no media" in str(exc)


def test_too_many_media_sections_is_invalid(real_offer: str) -> None:
    start = real_offer.index("m=video")
    video = real_offer[start:]
    assert_invalid(real_offer[:start] + video * MAX_MEDIA_SECTIONS)


def test_unsupported_media_kind_is_invalid(real_offer: str) -> None:
    assert_invalid(real_offer.replace("m=video", "m=text", 1))


def test_video_without_ice_ufrag_is_invalid(real_offer: str) -> None:
    assert_invalid(video_section_without(real_offer, ("a=ice-ufrag", "a=ice-pwd")))


def test_video_without_ice_ufrag_and_fingerprint_is_invalid(real_offer: str) -> None:
    assert_invalid(video_section_without(real_offer, ("a=ice-ufrag", "a=ice-pwd", "a=fingerprint")))


def test_video_without_dtls_fingerprint_is_invalid(real_offer: str) -> None:
    """A media section with a=setup but no a=fingerprint has no DTLS fingerprint to check.

    parse_offer's own message says it refuses "a media section [that] lacks ... a DTLS fingerprint".
    """
    assert_invalid(video_section_without(real_offer, ("a=fingerprint",)))


def test_offer_without_any_dtls_fingerprint_is_invalid(real_offer: str) -> None:
    """With no fingerprint anywhere, aiortc would answer and then fail the DTLS start in a background task."""
    stripped = "\r\n".join(line for line in lines_of(real_offer) if not line.startswith("a=fingerprint"))
    assert "fingerprint" not in stripped
    assert_invalid(stripped)


def test_video_without_dtls_setup_is_invalid(real_offer: str) -> None:
    assert_invalid(video_section_without(real_offer, ("a=setup",)))


def _mutate(data: bytearray, rng: random.Random) -> bytearray:
    """Apply 1-8 random byte-level edits: flip, insert, delete a run, set a separator, duplicate a run."""
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(data)) if data else 0
        op = rng.choice("fidsx")
        if op == "f" and data:
            data[pos] = rng.randrange(256)
        elif op == "i":
            data[pos:pos] = bytes([rng.randrange(256)])
        elif op == "d":
            del data[pos : pos + rng.randint(1, 64)]
        elif op == "s" and data:
            data[pos] = rng.choice(b" :/\r\n0123456789=-")
        elif op == "x" and data:
            start = rng.randrange(len(data))
            data[pos:pos] = data[start : start + rng.randint(1, 200)]
    return data


@pytest.mark.parametrize("parser", PARSERS, ids=lambda f: f.__name__)
def test_random_mutations_parse_or_raise_invalid_sdp(real_offer: str, parser: Parser) -> None:
    """200 seeded byte-level mutations: each one parses or raises InvalidSdp, never anything else."""
    rng = random.Random(20261126)
    original = real_offer.encode()
    outcomes = {"parsed": 0, "invalid": 0}
    for index in range(200):
        text = _mutate(bytearray(original), rng).decode("utf-8", errors="replace")
        try:
            parser(text)
        except InvalidSdp:
            outcomes["invalid"] += 1
        except Exception as exc:  # any other type is the failure under test
            pytest.fail(f"mutation {index} raised {type(exc).__name__}: {exc!r}\n{text!r}")
        else:
            outcomes["parsed"] += 1
    # The mutations are neither all harmless nor all fatal, or the loop would test nothing.
    assert outcomes["parsed"] > 0
    assert outcomes["invalid"] > 0
