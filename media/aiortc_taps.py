"""Every use of aiortc internals by the forwarding relay, in one place.

aiortc 1.16 has no packet-level API: an RTCRtpReceiver reassembles frames and decodes them, an
RTCRtpSender encodes (or packetises) what a track yields. The relay keeps aiortc for what it does well
(ICE, DTLS, SRTP keys, SDP, RTCP routing) and takes over the RTP path at four points:

- :class:`ReceiverTap` replaces a publisher-side receiver's packet handler: RTP goes to the relay
  without reaching the jitter buffer or the decoder thread (which therefore never decodes), while
  the receiver's own RTCP loop keeps reporting to the publisher (from the statistics kept here).
- :class:`SenderTap` makes a subscriber-side sender a shell: aiortc still writes its SSRCs into SDP
  and routes the subscriber's RTCP to it, but its RTP loop waits forever on a silent track (so no
  encoder is ever built) and its sender reports describe what the relay sent.
- :class:`DatagramPath` protects a packet with the subscriber's SRTP session and hands it to the
  socket synchronously, skipping three coroutine hops per packet and exposing the socket's
  backlog, which is how the relay notices a subscriber it cannot reach fast enough.
- :func:`codec_capabilities` aligns a subscriber's codec with its publisher's.

Private names are read through :func:`_private` so that an aiortc upgrade that renames one fails at
once, in ``tests/media/test_aiortc_taps.py``, rather than quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpCodecCapability, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.clock import current_ntp_time
from aiortc.codecs import is_rtx
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

log = logging.getLogger(__name__)


def _private(obj: object, owner: str, name: str) -> Any:
    """An aiortc attribute that is private to class ``owner`` (Python mangles ``__name``)."""
    return getattr(obj, f"_{owner}__{name}")


class ReceiverTap:
    """Takes the RTP of one publisher-side receiver, keeping its RTCP duties to the publisher.

    With simulcast ``rids`` (lowest layer first), packets are sorted into layers by the rid header
    extension: each layer is an SSRC the browser did not announce, which aiortc's router hands to this
    receiver by payload type. The callback gets the layer index (always 0 without simulcast).
    """

    def __init__(self, receiver: RTCRtpReceiver, kind: str, on_packet: Callable[[RtpPacket, int], None],
                 rids: tuple[str, ...] = ()) -> None:
        self._receiver = receiver
        self._on_packet = on_packet
        self.rids = rids
        self._layer_of_ssrc: dict[int, int] = {}
        self._layer_of_rtx: dict[int, int] = {}
        self.layer_ssrcs: dict[int, int] = {}
        # Filled by RTCRtpReceiver.receive(), which runs later: keep the dicts, not copies.
        self._codecs: dict[int, RTCRtpCodecParameters] = _private(receiver, "RTCRtpReceiver", "codecs")
        self._rtx_ssrc: dict[int, int] = _private(receiver, "RTCRtpReceiver", "rtx_ssrc")
        # The receiver's RTCP loop turns these into receiver reports for the publisher.
        self._streams: dict[int, StreamStatistics] = _private(receiver, "RTCRtpReceiver", "remote_streams")
        self._nack = NackGenerator() if kind == "video" else None
        self._remb = RemoteBitrateEstimator() if kind == "video" else None
        self.media_ssrc: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        receiver._handle_rtp_packet = self._handle_rtp  # type: ignore[method-assign]

    async def _handle_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        stats = self._streams.get(packet.ssrc)
        if stats is None:
            stats = self._streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        remb = None
        if self._remb is not None and packet.extensions.abs_send_time is not None:
            remb = self._remb.add(abs_send_time=packet.extensions.abs_send_time, arrival_time_ms=arrival_time_ms,
                                  payload_size=len(packet.payload) + packet.padding_size, ssrc=packet.ssrc)
        layer = 0
        if is_rtx(codec):
            apt = codec.parameters.get("apt")
            if self.rids:
                layer = self._layer(packet.ssrc, packet.extensions.repaired_rtp_stream_id, self._layer_of_rtx)
                original = self.layer_ssrcs.get(layer) if layer >= 0 else None
            else:
                original = self._rtx_ssrc.get(packet.ssrc, self.media_ssrc)
            if original is None or not isinstance(apt, int) or apt not in self._codecs or len(packet.payload) < 2:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original)
        elif self.rids:
            layer = self._layer(packet.ssrc, packet.extensions.rtp_stream_id, self._layer_of_ssrc)
            if layer < 0:
                return  # a layer not named yet: its first packets carry the rid
            self.layer_ssrcs[layer] = packet.ssrc
        else:
            self.media_ssrc = packet.ssrc
        # Forward first: the RTCP below awaits a send, which must not delay the media. An error must
        # not escape into aiortc's receive loop: its task would end and the connection with it.
        try:
            self._on_packet(packet, layer)
        except Exception:
            log.exception("forwarding a packet failed")
        if self._nack is not None and self._nack.add(packet):
            await self._receiver._send_rtcp_nack(packet.ssrc, sorted(self._nack.missing))
        rtcp_ssrc = _private(self._receiver, "RTCRtpReceiver", "rtcp_ssrc")
        if remb is not None and rtcp_ssrc is not None:
            await self._receiver._send_rtcp(
                RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)))

    def _layer(self, ssrc: int, rid: str | None, known: dict[int, int]) -> int:
        if rid is not None and rid in self.rids:
            known[ssrc] = self.rids.index(rid)
        return known.get(ssrc, -1)

    def set_sink(self, on_packet: Callable[[RtpPacket, int], None]) -> None:
        """Send packets elsewhere from now on (a track unpublished and published again on the same
        media section gets a new forwarder; the tap and its RTCP duties stay)."""
        self._on_packet = on_packet

    def send_pli(self, layer: int = 0) -> None:
        """Ask the publisher for a keyframe of a layer (RFC 4585 picture loss indication)."""
        ssrc = self.layer_ssrcs.get(layer) if self.rids else self.media_ssrc
        if ssrc is None:
            return
        task = asyncio.get_running_loop().create_task(self._receiver._send_rtcp_pli(ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class SilentTrack(MediaStreamTrack):
    """A track that never yields: the sender's RTP loop parks on it, so it never builds an encoder."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        await asyncio.get_running_loop().create_future()


SenderReport = Callable[[], "tuple[int, int, int] | None"]
"""What a sender report says: (RTP timestamp now, packets sent, octets sent), or None before any."""


class SenderTap:
    """Makes one subscriber-side RTCRtpSender a shell around the relay's own RTP path."""

    def __init__(self, sender: RTCRtpSender, on_rtcp: Callable[[AnyRtcpPacket], None], report: SenderReport) -> None:
        self._sender = sender
        self._on_rtcp = on_rtcp
        self._report = report
        # Both are looked up on the instance when aiortc calls them, so these replace the methods.
        sender._handle_rtcp_packet = self._handle_rtcp  # type: ignore[method-assign]
        sender._run_rtcp = self._run_rtcp  # type: ignore[method-assign]

    @property
    def ssrc(self) -> int:
        return self._sender._ssrc

    @property
    def rtx_ssrc(self) -> int:
        return self._sender._rtx_ssrc

    async def _handle_rtcp(self, packet: AnyRtcpPacket) -> None:
        self._on_rtcp(packet)

    async def _run_rtcp(self) -> None:
        # RTCRtpSender.stop() waits for these two events.
        _private(self._sender, "RTCRtpSender", "rtcp_started").set()
        try:
            while True:
                await asyncio.sleep(0.5 + random.random())  # RFC 3550 randomised interval, as aiortc
                report = self._report()
                if report is None:
                    continue
                rtp_timestamp, packets, octets = report
                sr = RtcpSrPacket(ssrc=self.ssrc, sender_info=RtcpSenderInfo(
                    ntp_timestamp=current_ntp_time(), rtp_timestamp=rtp_timestamp,
                    packet_count=packets & 0xFFFFFFFF, octet_count=octets & 0xFFFFFFFF))
                rtcp: list[AnyRtcpPacket] = [sr]
                cname = _private(self._sender, "RTCRtpSender", "cname")
                if cname is not None:
                    rtcp.append(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=self.ssrc, items=[(1, cname.encode())])]))
                await self._sender._send_rtcp(rtcp)
        except asyncio.CancelledError:
            pass
        with contextlib.suppress(ConnectionError):
            await self._sender._send_rtcp([RtcpByePacket(sources=[self.ssrc])])
        _private(self._sender, "RTCRtpSender", "rtcp_exited").set()

    async def send_rtp(self, packet: bytes) -> None:
        """The slow path (retransmissions): through aiortc's transport."""
        with contextlib.suppress(ConnectionError):
            await self._sender.transport._send_rtp(packet)


class DatagramPath:
    """SRTP-protect and send synchronously on a subscriber connection's nominated ICE pair.

    What a send needs (socket, address, SRTP session) is looked up once and re-checked cheaply on each
    packet: aiortc swaps ``sender.transport`` for the bundled transport once the answer arrives, and a
    connection that closes leaves the CONNECTED state.
    """

    __slots__ = ("_addr", "_buffered", "_dtls", "_nominated", "_pair", "_protect", "_sender", "_sendto")

    def __init__(self, sender: RTCRtpSender) -> None:
        self._sender = sender
        self._dtls: Any = None
        self._nominated: dict[int, Any] = {}
        self._pair: Any = None
        self._sendto: Callable[[bytes, Any], None] = lambda data, addr: None
        self._buffered: Callable[[], int] = lambda: 0
        self._protect: Callable[[bytes], bytes] = bytes
        self._addr: Any = None

    def _resolve(self) -> bool:
        self._dtls = None
        dtls = self._sender.transport
        if dtls._state is not State.CONNECTED:
            return False
        nominated = dtls.transport._connection._nominated
        pair = nominated.get(1)
        if pair is None or pair.protocol.transport is None:
            return False
        transport = pair.protocol.transport
        self._nominated, self._pair, self._addr = nominated, pair, pair.remote_addr
        self._sendto = transport.sendto
        # asyncio's datagram transports keep what the socket refused in a buffer of their own.
        self._buffered = transport.get_write_buffer_size  # type: ignore[attr-defined]
        self._protect = dtls._tx_srtp.protect
        self._dtls = dtls
        return True

    def backlog(self) -> int | None:
        """Bytes waiting in the socket's user-space buffer, or None when the path cannot send."""
        dtls = self._dtls
        if (dtls is None or dtls is not self._sender.transport or dtls._state is not State.CONNECTED
                or self._nominated.get(1) is not self._pair) and not self._resolve():
            return None
        return int(self._buffered())

    def send(self, packet: bytes) -> None:
        """Send on the path the last :meth:`backlog` found (callers ask it first)."""
        if self._dtls is not None:
            self._sendto(self._protect(packet), self._addr)


def parse_rid_extensions(receiver: RTCRtpReceiver, extensions: tuple[tuple[int, str], ...]) -> None:
    """Make the transport parse the rid header extensions, which aiortc does not negotiate."""
    receiver.transport._rtp_header_extensions_map.configure(RTCRtpReceiveParameters(
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=ident, uri=uri) for ident, uri in extensions]))


def label_stream(sender: RTCRtpSender, stream_id: str) -> None:
    """Put a sender in the media stream ``stream_id`` (the SDP msid).

    aiortc gives every sender of a connection the same stream id; browsers lip-sync the audio and
    video of one stream, so one stream per publisher keeps each person's lips in sync with their own
    voice rather than with someone else's.
    """
    sender._stream_id = stream_id


def publisher_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The codec a publisher sends with on a receiving transceiver: the first negotiated (aiortc
    orders its answer as the offer did, and browsers send with the first codec of the answer)."""
    codecs = negotiated(transceiver)
    return codecs[0] if codecs else None


def negotiated(transceiver: RTCRtpTransceiver) -> tuple[RTCRtpCodecParameters, int | None] | None:
    """The codec a transceiver sends with and its RTX payload type, once negotiated."""
    codecs = transceiver._codecs
    if not codecs:
        return None
    codec = codecs[0]
    rtx = next((c.payloadType for c in codecs if is_rtx(c) and c.parameters.get("apt") == codec.payloadType), None)
    return codec, rtx


def header_extensions(transceiver: RTCRtpTransceiver) -> tuple[HeaderExtensionsMap, tuple[tuple[int, str], ...]]:
    """The negotiated header extensions as aiortc's map, and a hashable key identifying them."""
    extensions: list[RTCRtpHeaderExtensionParameters] = list(transceiver._headerExtensions)
    mapping = HeaderExtensionsMap()
    mapping.configure(RTCRtpSendParameters(headerExtensions=extensions))
    return mapping, tuple(sorted((e.id, e.uri) for e in extensions))


def codec_capabilities(codec: RTCRtpCodecParameters, kind: str) -> list[RTCRtpCodecCapability]:
    """Codec preferences that make a subscriber's transceiver use exactly the publisher's codec."""
    wanted = RTCRtpCodecCapability(mimeType=codec.mimeType, clockRate=codec.clockRate, channels=codec.channels,
                                   parameters=dict(codec.parameters))
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    chosen = next((c for c in capabilities if c == wanted), None)
    if chosen is None:  # same codec, parameters written differently: match on name and H.264 profile
        profile = codec.parameters.get("profile-level-id")
        chosen = next((c for c in capabilities if c.mimeType.lower() == codec.mimeType.lower()
                       and c.parameters.get("profile-level-id") == profile), None)
    if chosen is None:
        return []
    preferences = [chosen]
    if kind == "video":
        preferences += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return preferences
