"""Simulcast in SDP (RFC 8853, RFC 8851): what aiortc 1.16 does not negotiate, done here.

A browser that publishes simulcast offers ``a=rid:<id> send`` per layer, ``a=simulcast:send a;b;c``
and the header extensions that name each packet's layer (rtp-stream-id, repaired-rtp-stream-id).
aiortc ignores all of it, so its answer declines simulcast and the browser sends one layer. These
pure functions read the offer and complete aiortc's answer; media/aiortc_taps.py then teaches the
transport to parse the two extensions, and the receiver tap sorts packets into layers.

Layers are in the order the offer lists them; the web client lists them lowest first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 4
_RID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


@dataclass(frozen=True)
class SimulcastOffer:
    """One offered simulcast media section."""

    mid: str
    rids: tuple[str, ...]
    """Layer names, lowest first."""
    extensions: tuple[tuple[int, str], ...]
    """The offer's (id, uri) for the rid extensions, repeated in the answer."""


def _sections(sdp: str) -> list[list[str]]:
    sections: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return sections


def parse_offer(sdp: str) -> list[SimulcastOffer]:
    """The video sections of an offer that send simulcast (none for an ordinary offer)."""
    found: list[SimulcastOffer] = []
    for section in _sections(sdp)[1:]:
        if not section[0].startswith("m=video"):
            continue
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), None)
        simulcast = next((line for line in section if line.startswith("a=simulcast:send ")), None)
        if mid is None or simulcast is None:
            continue
        declared = {line[6:].split()[0] for line in section if line.startswith("a=rid:") and " send" in line}
        rids: list[str] = []
        for group in simulcast.split(" ", 1)[1].strip().split(";"):
            rid = group.split(",")[0].lstrip("~")  # first alternative; "~" marks a paused layer
            if _RID.match(rid) and rid in declared and rid not in rids:
                rids.append(rid)
        extensions = []
        for line in section:
            if line.startswith("a=extmap:"):
                ident, uri = line[9:].split()[:2]
                if uri in (RID_URI, REPAIRED_RID_URI) and ident.split("/")[0].isdigit():
                    extensions.append((int(ident.split("/")[0]), uri))
        if len(rids) >= 2 and any(uri == RID_URI for _, uri in extensions):
            found.append(SimulcastOffer(mid, tuple(rids[:MAX_LAYERS]), tuple(extensions)))
    return found


def complete_answer(sdp: str, offers: list[SimulcastOffer]) -> str:
    """aiortc's answer with simulcast accepted for each offered section it kept."""
    by_mid = {offer.mid: offer for offer in offers}
    out: list[str] = []
    for section in _sections(sdp):
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), None)
        offer = by_mid.get(mid or "")
        if offer is None or not section[0].startswith("m=video") or section[0].split()[1] == "0":
            out += section
            continue
        out += section
        out += [f"a=extmap:{ident} {uri}" for ident, uri in offer.extensions]
        out += [f"a=rid:{rid} recv" for rid in offer.rids]
        out.append("a=simulcast:recv " + ";".join(offer.rids))
    return "\r\n".join(out) + "\r\n"
