"""Per-subscriber RTP numbering: sequence numbers and timestamps that stay continuous.

Pure code, no I/O. A subscriber's stream is a sequence of source packets with holes cut into it
(frames dropped for a slow link, padding not forwarded) and, later, with a change of source (a
publisher that reconnects, a simulcast layer switch). The subscriber must see one stream: sequence
numbers that only jump where the *source* lost packets, so that its NACKs stay meaningful, and
timestamps that advance with real time across a change of source.
"""

from __future__ import annotations

import struct
from array import array

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
HISTORY = 1024
"""How many output sequence numbers can still be mapped back to the source (for NACK)."""

_HEADER = struct.Struct("!HLL")


def seq_newer(a: int, b: int) -> bool:
    """a comes after b in 16-bit sequence arithmetic (RFC 3550)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class Rewriter:
    """Maps (source sequence number, source timestamp) to this subscriber's numbering.

    ``out_seq = in_seq - seq_offset`` and ``out_ts = in_ts - ts_offset`` (both modular). Dropping a
    packet raises ``seq_offset`` by one, so later packets close the hole; a new source recomputes both
    offsets so that the output continues from the last packet sent.
    """

    __slots__ = (
        "_hist_in",
        "_hist_out",
        "_last_in_seq",
        "_source",
        "last_in_ts",
        "last_out_seq",
        "last_out_ts",
        "seq_offset",
        "started",
        "ts_offset",
    )

    def __init__(self, first_seq: int = 0, first_ts: int = 0) -> None:
        self.seq_offset = 0
        self.ts_offset = 0
        self.started = False
        self.last_out_seq = (first_seq - 1) % SEQ_MOD
        self.last_out_ts = first_ts % TS_MOD
        self._source: object = None
        self._last_in_seq = 0
        self.last_in_ts = 0
        # out_seq % HISTORY -> in_seq, so a NACK for an output number finds the source packet.
        self._hist_out = array("l", [-1]) * HISTORY
        self._hist_in = array("l", [-1]) * HISTORY

    def switch_source(self, source: object, in_seq: int, in_ts: int, ts_gap: int) -> None:
        """Continue the output from the last packet with a packet ``ts_gap`` clock ticks later."""
        self._source = source
        self.seq_offset = (in_seq - (self.last_out_seq + 1)) % SEQ_MOD
        if self.started:
            self.ts_offset = (in_ts - (self.last_out_ts + max(1, ts_gap))) % TS_MOD
        else:
            self.ts_offset = (in_ts - self.last_out_ts) % TS_MOD
        self._last_in_seq = (in_seq - 1) % SEQ_MOD

    def needs_switch(self, source: object) -> bool:
        return source is not self._source

    def forward(self, in_seq: int, in_ts: int) -> tuple[int, int]:
        """The output numbers for a packet that will be sent."""
        out_seq = (in_seq - self.seq_offset) % SEQ_MOD
        out_ts = (in_ts - self.ts_offset) % TS_MOD
        if seq_newer(in_seq, self._last_in_seq) or not self.started:
            self._last_in_seq = in_seq
            self.last_in_ts = in_ts
            self.last_out_seq = out_seq
            self.last_out_ts = out_ts
        self.started = True
        slot = out_seq % HISTORY
        self._hist_out[slot] = out_seq
        self._hist_in[slot] = in_seq
        return out_seq, out_ts

    def drop(self, in_seq: int) -> None:
        """A packet of the source that this subscriber will not get: close the hole it leaves.

        Only a packet newer than the last one handled moves the offset; an old packet that is
        dropped (late, reordered) left no hole in the output.
        """
        if seq_newer(in_seq, self._last_in_seq):
            self.seq_offset = (self.seq_offset + 1) % SEQ_MOD
            self._last_in_seq = in_seq

    def source_seq(self, out_seq: int) -> int | None:
        """The source sequence number that was sent as ``out_seq``, if it is still remembered."""
        slot = out_seq % HISTORY
        if self._hist_out[slot] != out_seq:
            return None
        return self._hist_in[slot]


def split_template(packet: bytes) -> tuple[bytes, bytes]:
    """A serialised RTP packet cut around its sequence number, timestamp and SSRC (bytes 2-12)."""
    return packet[:2], packet[12:]


def rewrite(template: tuple[bytes, bytes], seq: int, ts: int, ssrc: int) -> bytes:
    """The packet of ``template`` with sequence number, timestamp and SSRC replaced.

    Bytes, not a bytearray: libsrtp's binding accepts only bytes, and two slices joined around a
    10-byte header cost less than copying into a mutable buffer and back.
    """
    return template[0] + _HEADER.pack(seq, ts, ssrc) + template[1]
