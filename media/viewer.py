"""A WHEP-style player: the client offers to receive one publisher's tracks, the relay answers.

Unlike a participant's subscriber connection (the server offers and re-offers as tracks come and
go), a viewer's connection is negotiated once, by the client, as WHEP (draft-ietf-wish-whep) has it:
an HTTP POST of an offer, the answer in the response, a DELETE to end. It carries the publisher's
tracks that exist when the offer arrives, forwarded exactly as to any subscriber (down tracks: no
decode, no encode).
"""

from __future__ import annotations

import logging

from aiortc import RTCPeerConnection, RTCSessionDescription

from media import sdp as sdp_check
from media.aiortc_taps import SilentTrack, codec_capabilities, label_stream
from media.downtrack import DownTrack
from media.exceptions import InvalidSdp, NotPublished
from media.forwarder import Forwarder
from media.ice import IceConfig, announce_address

log = logging.getLogger(__name__)


class Viewer:
    def __init__(self, viewer_id: str, publisher_id: str, config: IceConfig) -> None:
        self.id = viewer_id
        self.publisher_id = publisher_id
        self._config = config
        self.pc: RTCPeerConnection | None = None
        self.downtracks: list[DownTrack] = []

    async def answer(self, sdp: str, published: dict[str, Forwarder]) -> str:
        """Answer the client's offer with the publisher's current tracks, in the publisher's codecs."""
        offer = sdp_check.parse_offer(sdp)
        kinds = [m.kind for m in offer.media if m.kind in ("audio", "video")]
        if not any(kind in published for kind in kinds):
            raise NotPublished(f"{self.publisher_id} publishes nothing this offer can receive")
        pc = self.pc = RTCPeerConnection(self._config.rtc_configuration())
        # Transceivers made before the offer is applied are the ones aiortc matches to its media
        # sections (by kind), so the codec preferences below decide the answer: the viewer gets the
        # publisher's codec or the negotiation fails; nothing is transcoded.
        for kind in dict.fromkeys(kinds):
            forwarder = published.get(kind)
            if forwarder is None:
                continue
            transceiver = pc.addTransceiver(SilentTrack(kind), direction="sendonly")
            label_stream(transceiver.sender, self.publisher_id)
            preferences = codec_capabilities(forwarder.codec, kind)
            if preferences:
                transceiver.setCodecPreferences(preferences)
            downtrack = DownTrack(forwarder, self.id, transceiver)
            forwarder.add(downtrack)
            self.downtracks.append(downtrack)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc: no common codec, bad directions, ...
            log.warning("viewer offer rejected for %s: %s: %s", self.id, type(exc).__name__, exc)
            await self.close()
            raise InvalidSdp(f"the offer could not be negotiated ({type(exc).__name__}); "
                             f"it must accept {', '.join(f.codec.mimeType for f in published.values())}") from None
        return announce_address(pc.localDescription.sdp, self._config.announced_address)

    async def close(self) -> None:
        for downtrack in self.downtracks:
            downtrack.close()
        self.downtracks.clear()
        if self.pc is not None:
            await self.pc.close()
