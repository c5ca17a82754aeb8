"""The aiortc internals media.aiortc_taps relies on still exist: an upgrade that renames one fails here."""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media.aiortc_taps import SilentTrack, _private, codec_capabilities


async def test_the_private_names_the_taps_use_exist() -> None:
    dtls = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
    receiver = RTCRtpReceiver("video", dtls)
    for name in ("codecs", "rtx_ssrc", "remote_streams", "rtcp_ssrc"):
        _private(receiver, "RTCRtpReceiver", name)
    for method in ("_handle_rtp_packet", "_send_rtcp", "_send_rtcp_nack", "_send_rtcp_pli"):
        assert callable(getattr(receiver, method))
    sender = RTCRtpSender("video", dtls)
    for name in ("rtcp_started", "rtcp_exited", "cname"):
        _private(sender, "RTCRtpSender", name)
    assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
    for method in ("_handle_rtcp_packet", "_run_rtcp", "_send_rtcp"):
        assert callable(getattr(sender, method))
    assert dtls._state is not None and hasattr(dtls, "_tx_srtp")
    assert hasattr(dtls.transport, "_connection") and hasattr(dtls.transport._connection, "_nominated")


async def test_a_silent_track_never_yields() -> None:
    track = SilentTrack("video")
    assert track.kind == "video"
    task = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()


async def test_subscriber_codec_preferences_follow_the_publisher() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # never the default public STUN server
    try:
        for kind in ("video", "audio"):
            for codec in RTCRtpSender.getCapabilities(kind).codecs:
                if codec.mimeType.endswith("/rtx"):
                    continue
                params = RTCRtpCodecParameters(mimeType=codec.mimeType, clockRate=codec.clockRate,
                                               channels=codec.channels, payloadType=111,
                                               parameters=dict(codec.parameters))
                preferences = codec_capabilities(params, kind)
                assert preferences[0].mimeType == codec.mimeType
                pc.addTransceiver(kind).setCodecPreferences(preferences)  # accepted by aiortc
    finally:
        await pc.close()
