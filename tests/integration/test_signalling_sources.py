"""Track sources over the signalling WebSocket: a screen share announced with the offer, and refusals.

The media itself (decoding both videos, stopping the screen) is tested in tests/media/test_screen_share.py.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from aiortc import RTCConfiguration, RTCPeerConnection

from server.auth.tokens import Grants, mint_room_token
from server.keys import SECRET
from tests.integration.test_signalling import doctor  # noqa: F401  (fixture)
from tests.integration.wsclient import connect, receive_type


async def camera_screen_microphone_offer() -> str:
    """An offer with mids 0 (camera), 1 (screen), 2 (microphone)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="sendonly")
    pc.addTransceiver("video", direction="sendonly")
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def joined(client: TestClient, token: str, room: str) -> Any:
    ws = await connect(client, token)
    await ws.send_json({"type": "join", "room": room})
    await receive_type(ws, "joined")
    return ws


async def test_a_screen_announced_with_the_offer_reaches_subscribers_labelled(
    client: TestClient, doctor: tuple[str, str]  # noqa: F811
) -> None:
    room, token = doctor
    observer_token = mint_room_token(client.app[SECRET], room=room, identity="observer",
                                     grants=Grants(can_subscribe=True), ttl_seconds=60)
    observer = await joined(client, observer_token, room)
    ws = await joined(client, token, room)
    tracks = [{"mid": "0", "source": "camera"}, {"mid": "1", "source": "screen"}, {"mid": "2", "source": "microphone"}]
    await ws.send_json({"type": "offer", "sdp": await camera_screen_microphone_offer(), "tracks": tracks})
    await receive_type(ws, "answer", timeout=10)
    offer = await receive_type(observer, "offer", timeout=10)
    assert sorted((t["kind"], t["source"]) for t in offer["tracks"]) == [
        ("audio", "microphone"), ("video", "camera"), ("video", "screen")]
    assert len({t["participant_id"] for t in offer["tracks"]}) == 1, "three tracks of one publisher"
    await ws.close()
    await observer.close()


async def test_bad_sources_are_clear_errors_and_the_connection_survives(
    client: TestClient, doctor: tuple[str, str]  # noqa: F811
) -> None:
    room, token = doctor
    ws = await joined(client, token, room)
    sdp = await camera_screen_microphone_offer()
    cases = [
        ([{"mid": "1", "source": "whiteboard"}], "invalid_message", "tracks.0.source"),
        ([{"mid": "0", "source": "screen"}, {"mid": "1", "source": "screen"}], "invalid_message",
         "one track per source"),
        ([{"mid": "0", "source": "camera"}, {"mid": "0", "source": "screen"}], "invalid_message", "named twice"),
        ([{"mid": "1", "source": "microphone"}], "invalid_track_source", "cannot be the 'microphone'"),
        ([{"mid": "9", "source": "screen"}], "invalid_track_source", "names no media section"),
        # Two video sections and neither named: both would be the camera.
        (None, "invalid_track_source", "both the 'camera'"),
    ]
    for tracks, code, words in cases:
        message: dict[str, Any] = {"type": "offer", "sdp": sdp}
        if tracks is not None:
            message["tracks"] = tracks
        await ws.send_json(message)
        error = await receive_type(ws, "error", timeout=10)
        assert error["code"] == code and words in error["message"], (tracks, error)
    await ws.send_json({"type": "ping", "ts": 7})
    assert (await receive_type(ws, "pong"))["ts"] == 7
    await ws.close()
