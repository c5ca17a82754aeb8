"""One subscriber's copy of one published track.

A down track holds no queue: a packet is rewritten, protected and handed to the socket in the call
that received it from the publisher, or dropped. Its memory is a fixed set of counters and a
fixed-size map of sequence numbers (for NACK), whatever the subscriber's link does.

Dropping, in order of preference:
- video is dropped as soon as the subscriber's socket has a backlog (the kernel would not take
  more), or while the subscriber reports heavy loss, or while it asked for no video; it resumes
  only at a keyframe, which it requests, so the picture never shows a broken frame;
- audio is dropped only when the backlog passes :data:`AUDIO_MAX_BACKLOG`, so audio always outlives
  video on a bad link.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import TYPE_CHECKING, Protocol

from aiortc import RTCRtpTransceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

from media.aiortc_taps import DatagramPath, SenderTap, header_extensions, negotiated
from media.rtp_rewrite import Rewriter, rewrite, seq_newer

if TYPE_CHECKING:
    from media.forwarder import Forwarder, TemplateKey

log = logging.getLogger(__name__)

VIDEO_MAX_BACKLOG = 0
"""Bytes the socket may hold back before video is dropped: any backlog means the link is full."""
AUDIO_MAX_BACKLOG = 64 * 1024
"""Audio keeps going until this much is held back (~5 s of Opus): far beyond where video stopped."""
LOSS_PAUSE = 0.20
"""Fraction of packets a subscriber reports lost, in two reports running, that pauses its video."""
PAUSE_FIRST, PAUSE_MAX = 4.0, 16.0
"""Seconds of audio only after heavy loss, doubling while the loss persists after each retry."""
LAYER_UP_AFTER = 10.0
"""Seconds without heavy loss before a subscriber moved down a simulcast layer tries the next one up."""
KEYFRAME_RETRY = 1.0
"""Seconds a down track waits for the keyframe it asked for before asking again."""
MAX_NACKS = 64
"""Sequence numbers served from one NACK: a subscriber cannot make the relay burst without bound."""


class PacketPath(Protocol):
    """Where a down track's packets go: :class:`media.aiortc_taps.DatagramPath` on a real connection."""

    def backlog(self) -> int | None: ...

    def send(self, packet: bytes) -> None: ...


class DownTrack:
    def __init__(self, forwarder: Forwarder, subscriber_id: str, transceiver: RTCRtpTransceiver,
                 path: PacketPath | None = None) -> None:
        self.forwarder = forwarder
        self.subscriber_id = subscriber_id
        self.kind = forwarder.kind
        self.video = forwarder.kind == "video"
        self._transceiver = transceiver
        self._path: PacketPath = path or DatagramPath(transceiver.sender)
        self._tap = SenderTap(transceiver.sender, self._on_rtcp, self._sender_report)
        self._rewriter = Rewriter()
        self._ready = False
        self._ssrc = 0
        self._pt = 0
        self._rtx_pt: int | None = None
        self._rtx_seq = 0
        self._mid = ""
        self._extensions = HeaderExtensionsMap()
        self._key: TemplateKey = (0, "", ())
        self.layer: int | None = None
        """The layer being sent; None while waiting for a keyframe (at the start, after a drop)."""
        top = forwarder.layers - 1
        self.target_layer = top
        self.max_layer = top
        """The highest layer the subscriber asked for (a thumbnail asks for 0)."""
        self._loss_cap = top
        self._loss_cap_at = 0.0
        self.switches = 0
        self._epoch_start = 0
        self._asked_keyframe: int | None = None
        self._asked_at = 0.0
        self.muted = False
        """Set by the subscriber ("audio only", a hidden tile): video is not sent."""
        self._paused_until = 0.0
        self._pause = PAUSE_FIRST
        self._lossy_reports = 0
        self.closed = False
        # counters (also for sender reports and tests)
        self.packets = 0
        self.octets = 0
        self.dropped = 0
        self.pauses = 0
        self.retransmitted = 0
        self.keyframes_sent = 0
        self.first_keyframe_at: float | None = None
        self.ready_at: float | None = None
        self.remb: int | None = None
        self.loss = 0.0
        self._last_sent_at = 0.0

    # --- the hot path ---------------------------------------------------------------------------

    def forward(self, packet: RtpPacket, layer: int, keyframe: bool,
                templates: dict[TemplateKey, tuple[bytes, bytes]], now: float) -> None:
        if self.closed or (not self._ready and not self._become_ready(now)):
            return
        backlog = self._path.backlog()
        if backlog is None:  # the connection is not (or no longer) up
            return
        rewriter = self._rewriter
        if self.video:
            if layer != self.layer or rewriter.needs_switch(self.forwarder.sources[layer]):
                # Not the stream being sent (another layer, or none yet): only a keyframe of the
                # wanted layer matters, to start, restart or switch there.
                wanted = self.target_layer if self.forwarder.layers == 1 else \
                    self.forwarder.best_active(self.target_layer, now)
                if layer != wanted:
                    return
                if not packet.payload or self._blocked(backlog, now):
                    self.dropped += bool(packet.payload)
                    return
                if not keyframe:
                    # Once per layer waited for, and again each KEYFRAME_RETRY: a PLI can be lost,
                    # and a subscriber that is sent nothing has no reason to ask by itself.
                    if self._asked_keyframe != layer or now - self._asked_at > KEYFRAME_RETRY:
                        self._asked_keyframe = layer
                        self._asked_at = now
                        self.forwarder.request_keyframe(layer)
                    self.dropped += 1
                    return
                self._start(layer, packet, now)
            elif not packet.payload:  # padding: not forwarded, no hole left
                rewriter.drop(packet.sequence_number)
                return
            elif self._blocked(backlog, now):
                self._drop_video()
                return
        else:
            if not packet.payload or backlog > AUDIO_MAX_BACKLOG:
                self.dropped += bool(packet.payload)
                rewriter.drop(packet.sequence_number)
                return
            source = self.forwarder.sources[0]
            if rewriter.needs_switch(source):
                gap = int((now - self._last_sent_at) * self.forwarder.clock_rate) if rewriter.started else 0
                rewriter.switch_source(source, packet.sequence_number, packet.timestamp, gap)
        out_seq, out_ts = rewriter.forward(packet.sequence_number, packet.timestamp)
        template = self.forwarder.template(packet, self._key, self._mid, self._extensions, templates)
        self._path.send(rewrite(template, out_seq, out_ts, self._ssrc))
        self.packets += 1
        self.octets += len(packet.payload)
        self._last_sent_at = now

    def _blocked(self, backlog: int, now: float) -> bool:
        return backlog > VIDEO_MAX_BACKLOG or self.muted or now < self._paused_until

    def _start(self, layer: int, packet: RtpPacket, now: float) -> None:
        """Send from this keyframe of ``layer`` on, continuing this subscriber's numbering."""
        rewriter = self._rewriter
        source = self.forwarder.sources[layer]
        if not rewriter.started:
            gap = 0
        elif not rewriter.needs_switch(source):  # the same stream after a pause: its own clock
            gap = (packet.timestamp - rewriter.last_in_ts) % (1 << 32)
        else:  # another layer or a new SSRC: timestamps are unrelated, so use the wall clock
            gap = int((now - self._last_sent_at) * self.forwarder.clock_rate)
        rewriter.switch_source(source, packet.sequence_number, packet.timestamp, gap)
        # Output numbers before this one came from another stream (or another offset): a NACK for
        # them cannot be answered from this stream's cache.
        self._epoch_start = (rewriter.last_out_seq + 1) & 0xFFFF
        if self.layer is not None and self.layer != layer:
            self.switches += 1
        self.layer = layer
        self._asked_keyframe = None
        self.keyframes_sent += 1
        if self.first_keyframe_at is None:
            self.first_keyframe_at = now

    @property
    def waiting_keyframe(self) -> bool:
        return self.video and self.layer is None

    def _drop_video(self) -> None:
        """Stop video here; it restarts at a keyframe, with numbering that continues from here."""
        self.dropped += 1
        self.layer = None
        self._asked_keyframe = None

    def _become_ready(self, now: float) -> bool:
        """Learn what negotiation settled (once): SSRC, payload types, mid, header extensions."""
        transceiver = self._transceiver
        codecs = negotiated(transceiver)
        if transceiver.mid is None or codecs is None or self._path.backlog() is None:
            return False
        codec, self._rtx_pt = codecs
        if codec.payloadType is None:
            return False
        self._pt = codec.payloadType
        self._mid = transceiver.mid
        self._ssrc = self._tap.ssrc
        self._extensions, extension_key = header_extensions(transceiver)
        self._key = (self._pt, self._mid, extension_key)
        self._ready = True
        self.ready_at = now
        return True

    # --- feedback from the subscriber -----------------------------------------------------------

    def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self._retransmit(packet.lost[:MAX_NACKS])
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            if self.video:
                self.forwarder.request_keyframe(self.layer if self.layer is not None else self.target_layer)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if self._ssrc in ssrcs:
                self.remb = bitrate
        elif isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc == self._ssrc:
                    self._on_loss(report.fraction_lost / 256)

    def _on_loss(self, loss: float) -> None:
        """Heavy loss twice running: the link cannot carry this video. With simulcast, take the next
        layer down (and try one up again after a quiet while); at the lowest, audio only for a while."""
        self.loss = loss
        if not self.video:
            return
        now = time.monotonic()
        if loss < LOSS_PAUSE:
            self._lossy_reports = 0
            if now > self._paused_until + 2 * self._pause:
                self._pause = PAUSE_FIRST  # stable again for a while: forgive
            if self._loss_cap < self.forwarder.layers - 1 and now - self._loss_cap_at > LAYER_UP_AFTER:
                self._loss_cap += 1
                self._loss_cap_at = now
                self._retarget()
            return
        self._lossy_reports += 1
        if self._lossy_reports >= 2 and self.target_layer > 0:
            self._lossy_reports = 0
            self._loss_cap = self.target_layer - 1
            self._loss_cap_at = now
            self._retarget()
            return
        if self._lossy_reports >= 2 and now >= self._paused_until:
            log.info("subscriber %s loses %.0f%% of %s's video: audio only for %.0f s", self.subscriber_id,
                     100 * loss, self.forwarder.publisher_id, self._pause)
            self._paused_until = time.monotonic() + self._pause
            self.pauses += 1
            self._pause = min(PAUSE_MAX, 2 * self._pause)
            self._lossy_reports = 0

    def _retransmit(self, lost: list[int]) -> None:
        """Answer a NACK from the shared packet cache, over RTX when negotiated (RFC 4588)."""
        layer = self.layer if self.video else 0
        if not self._ready or layer is None:
            return
        for out_seq in lost:
            if self.video and seq_newer(self._epoch_start, out_seq):
                continue  # sent before the current stream started
            in_seq = self._rewriter.source_seq(out_seq)
            packet = self.forwarder.cached(layer, in_seq) if in_seq is not None else None
            if packet is None:
                continue
            out_ts = (packet.timestamp - self._rewriter.ts_offset) % (1 << 32)
            if self._rtx_pt is not None:
                resend = RtpPacket(payload_type=self._rtx_pt, marker=packet.marker, sequence_number=self._rtx_seq,
                                   timestamp=out_ts, ssrc=self._tap.rtx_ssrc,
                                   payload=struct.pack("!H", out_seq) + packet.payload)
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            else:
                resend = RtpPacket(payload_type=self._pt, marker=packet.marker, sequence_number=out_seq,
                                   timestamp=out_ts, ssrc=self._ssrc, payload=packet.payload)
            resend.extensions.mid = self._mid
            self._send_if_clear(resend.serialize(self._extensions))

    def _send_if_clear(self, data: bytes) -> None:
        if self._path.backlog() == 0:  # a retransmission must not add to a full link
            self._path.send(data)
            self.retransmitted += 1

    def _sender_report(self) -> tuple[int, int, int] | None:
        if not self.packets:
            return None
        elapsed = time.monotonic() - self._last_sent_at
        timestamp = (self._rewriter.last_out_ts + int(elapsed * self.forwarder.clock_rate)) % (1 << 32)
        return timestamp, self.packets, self.octets

    # --- control --------------------------------------------------------------------------------

    def set_muted(self, muted: bool) -> None:
        self.muted = muted

    def set_max_layer(self, layer: int | None) -> None:
        """The highest simulcast layer this subscriber wants (0 for a thumbnail; None: the best)."""
        top = self.forwarder.layers - 1
        self.max_layer = top if layer is None else max(0, min(layer, top))
        self._retarget()

    def _retarget(self) -> None:
        target = min(self.max_layer, self._loss_cap)
        if target != self.target_layer:
            self.target_layer = target
            self._asked_keyframe = None  # the new layer's keyframe is asked for by its next packet

    def close(self) -> None:
        self.closed = True
        self.forwarder.remove(self)
