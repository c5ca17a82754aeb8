"""WHIP from an encoder (an aiortc client) and WHEP into a real Chromium page: the browser plays the
class's presenter over plain HTTP + SDP, with no WebSocket and no login."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCSessionDescription
from playwright.async_api import Browser
from sqlalchemy import select

from server.auth.tokens import Grants, mint_room_token
from server.demo import Demo
from server.keys import SECRET, SESSIONS
from server.rooms.models import Room, RoomKind
from tests.e2e.helpers import wait_for
from tests.media.peers import ColourTrack, ToneTrack, new_pc

pytestmark = pytest.mark.e2e

WHEP_PLAYER = """
async ({room, token}) => {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const audio = document.createElement('audio'); audio.autoplay = true; document.body.append(audio);
  pc.ontrack = (e) => { if (e.track.kind === 'audio') audio.srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {  // WHEP without trickle: send the offer with its candidates
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  const response = await fetch(`/whep/${room}`, {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp', 'Authorization': `Bearer ${token}`}});
  if (response.status !== 201) return {status: response.status, body: await response.text()};
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
  window.whep = pc;
  return {status: 201, location: response.headers.get('Location')};
}
"""

STATS = """async () => {
  const out = {frames: 0, samples: 0};
  (await window.whep.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.frames = s.framesDecoded || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.samples = s.totalSamplesReceived || 0;
  });
  return out; }"""


async def test_a_browser_plays_a_whip_encoder_over_whep(
    live: tuple[TestServer, Demo], browser: Browser, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    server, _demo = live
    client = await aiohttp_client(server)
    async with server.app[SESSIONS]() as db:
        room = await db.scalar(select(Room.name).where(Room.kind == RoomKind.CLASS))
    secret = server.app[SECRET]
    encoder_token = mint_room_token(secret, room=room, identity="lecture-encoder", grants=Grants(can_publish=True),
                                    ttl_seconds=300)
    encoder = new_pc()
    encoder.addTransceiver(ColourTrack(), direction="sendonly")
    encoder.addTransceiver(ToneTrack(), direction="sendonly")
    await encoder.setLocalDescription(await encoder.createOffer())
    published = await client.post(f"/whip/{room}", data=encoder.localDescription.sdp,
                                  headers={"Content-Type": "application/sdp",
                                           "Authorization": f"Bearer {encoder_token}"})
    assert published.status == 201, await published.text()
    await encoder.setRemoteDescription(RTCSessionDescription(sdp=await published.text(), type="answer"))
    try:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(str(server.make_url("/login")))  # any page of ours: same origin, no login needed
        viewer_token = mint_room_token(secret, room=room, identity="hall-screen", grants=Grants(can_subscribe=True),
                                       ttl_seconds=300)
        played = await page.evaluate(WHEP_PLAYER, {"room": room, "token": viewer_token})
        assert played["status"] == 201, played
        first: dict[str, int] = {}

        async def playing() -> str | None:
            stats = await page.evaluate(STATS)
            if not first:
                first.update(stats)
            if stats["frames"] > max(10, first["frames"]) and stats["samples"] > first["samples"]:
                return None
            return f"the WHEP page decoded {stats['frames']} frames, {stats['samples']} audio samples"

        await wait_for(playing, 20)
        await context.close()
    finally:
        await encoder.close()
