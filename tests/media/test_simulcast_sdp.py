"""media.simulcast: reading a browser's simulcast offer and completing aiortc's answer (pure)."""

from __future__ import annotations

from media.simulcast import REPAIRED_RID_URI, RID_URI, complete_answer, parse_offer

# The video section of Chromium 156's offer for sendEncodings l, m, h (trimmed to what matters).
OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=sendonly",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "a=mid:1",
    "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
    f"a=extmap:10 {RID_URI}", f"a=extmap:11 {REPAIRED_RID_URI}",
    "a=sendonly", "a=rid:l send", "a=rid:m send", "a=rid:h send pt=96;max-width=1280",
    "a=simulcast:send l;~m;h,x",
]) + "\r\n"

ANSWER = "\r\n".join([
    "v=0", "o=- 3 4 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=recvonly",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "a=mid:1", "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=recvonly",
]) + "\r\n"


def test_a_simulcast_offer_is_read_lowest_layer_first() -> None:
    [offer] = parse_offer(OFFER)
    assert offer.mid == "1"
    assert offer.rids == ("l", "m", "h")  # "~" (paused) kept as a layer, alternatives after "," ignored
    assert set(offer.extensions) == {(10, RID_URI), (11, REPAIRED_RID_URI)}


def test_an_ordinary_offer_has_no_simulcast() -> None:
    assert parse_offer(OFFER.replace("a=simulcast:send l;~m;h,x\r\n", "")) == []
    assert parse_offer(OFFER.replace(f"a=extmap:10 {RID_URI}\r\n", "")) == []  # rid cannot be read
    assert parse_offer(OFFER.replace("a=simulcast:send l;~m;h,x", "a=simulcast:send l")) == []  # one layer
    hostile = OFFER.replace("a=simulcast:send l;~m;h,x", "a=simulcast:send " + ";".join(["l"] * 5000))
    assert parse_offer(hostile) == []  # repeated names are one layer


def test_the_answer_accepts_simulcast_in_the_video_section_only() -> None:
    answer = complete_answer(ANSWER, parse_offer(OFFER))
    audio, video = answer.split("m=video")
    assert "rid" not in audio and "simulcast" not in audio
    for line in (f"a=extmap:10 {RID_URI}", f"a=extmap:11 {REPAIRED_RID_URI}", "a=rid:l recv", "a=rid:m recv",
                 "a=rid:h recv", "a=simulcast:recv l;m;h"):
        assert line + "\r\n" in video
    rejected = ANSWER.replace("m=video 9 ", "m=video 0 ")
    assert "simulcast" not in complete_answer(rejected, parse_offer(OFFER))
