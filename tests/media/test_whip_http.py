"""WHIP and WHEP over HTTP through the app (RFC 9725 and the WHEP draft), with aiortc clients: an
encoder publishes into a class, a viewer plays the presenter; each error as the RFC wants it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient
from aiortc import RTCSessionDescription
from sqlalchemy import select

from server.app import create_app
from server.auth.tokens import Grants, mint_room_token
from server.keys import SECRET, SESSIONS
from server.rooms.models import Room, RoomKind
from tests.conftest import make_settings, seed
from tests.media.peers import ColourTrack, ToneTrack, new_pc
from tests.media.test_sfu import until
from tests.media.test_viewer import WhepClient


async def test_encoder_publishes_and_a_viewer_plays(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/w.db")))
    await seed(client.app)
    async with client.app[SESSIONS]() as db:
        room = await db.scalar(select(Room.name).where(Room.kind == RoomKind.CLASS))
    secret = client.app[SECRET]

    def token(**grants: bool) -> str:
        return mint_room_token(secret, room=room, identity="encoder-1", name="Máy quay bục giảng",
                               grants=Grants(**grants), ttl_seconds=300)

    publisher = new_pc()
    publisher.addTransceiver(ColourTrack(), direction="sendonly")
    publisher.addTransceiver(ToneTrack(), direction="sendonly")
    await publisher.setLocalDescription(await publisher.createOffer())
    offer = publisher.localDescription.sdp
    sdp = {"Content-Type": "application/sdp"}

    # The errors first.
    assert (await client.post(f"/whip/{room}", data=offer, headers=sdp)).status == 401
    assert (await client.post(f"/whip/{room}", data=offer, headers={
        **sdp, "Authorization": "Bearer forged.token.here"})).status == 401
    assert (await client.post(f"/whip/{room}", data=offer, headers={
        **sdp, "Authorization": f"Bearer {token(can_subscribe=True)}"})).status == 403
    assert (await client.post("/whip/r-other", data=offer, headers={
        **sdp, "Authorization": f"Bearer {token(can_publish=True)}"})).status == 403
    assert (await client.post(f"/whip/{room}", data=offer, headers={
        "Content-Type": "text/plain", "Authorization": f"Bearer {token(can_publish=True)}"})).status == 415
    bad = await client.post(f"/whip/{room}", data="v=0\r\ngarbage", headers={
        **sdp, "Authorization": f"Bearer {token(can_publish=True)}"})
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "invalid_sdp"
    viewer_token = mint_room_token(secret, room=room, identity="viewer-1", grants=Grants(can_subscribe=True),
                                   ttl_seconds=300)
    nothing = await client.post(f"/whep/{room}", data="v=0\r\n", headers={
        **sdp, "Authorization": f"Bearer {viewer_token}"})
    assert nothing.status == 404

    # Publish.
    created = await client.post(f"/whip/{room}", data=offer, headers={
        **sdp, "Authorization": f"Bearer {token(can_publish=True)}"})
    assert created.status == 201, await created.text()
    assert created.content_type == "application/sdp"
    location = created.headers["Location"]
    assert location.startswith(f"/whip/{room}/whip-")
    await publisher.setRemoteDescription(RTCSessionDescription(sdp=await created.text(), type="answer"))

    # Play the presenter (the WHIP session), then a named one.
    viewer = WhepClient()
    played = await client.post(f"/whep/{room}", data=await viewer.offer(), headers={
        **sdp, "Authorization": f"Bearer {viewer_token}"})
    assert played.status == 201, await played.text()
    await viewer.accept(await played.text())
    try:
        await until(lambda: None if viewer.frames("video") > 10 and viewer.frames("audio") > 10
                    else f"the viewer got {viewer.frames('video')} video and {viewer.frames('audio')} audio frames")
        unknown = await client.post(f"/whep/{room}/nobody", data=await WhepClient().offer(), headers={
            **sdp, "Authorization": f"Bearer {viewer_token}"})
        assert unknown.status == 404

        # Only the session's owner ends it.
        other = mint_room_token(secret, room=room, identity="someone-else", grants=Grants(can_publish=True),
                                ttl_seconds=300)
        assert (await client.delete(location, headers={"Authorization": f"Bearer {other}"})).status == 404
        assert (await client.delete(location, headers={"Authorization": f"Bearer {token(can_publish=True)}"})
                ).status == 200
        assert (await client.delete(played.headers["Location"],
                                    headers={"Authorization": f"Bearer {viewer_token}"})).status in (200, 404)
    finally:
        await viewer.pc.close()
        await publisher.close()
