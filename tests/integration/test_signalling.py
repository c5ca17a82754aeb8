"""The signalling WebSocket over real HTTP: handshake checks, the protocol, and bad input."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import WSMsgType, WSServerHandshakeError
from aiohttp.test_utils import TestClient
from aiortc import RTCConfiguration, RTCPeerConnection
from sqlalchemy import select

from server.auth.tokens import Grants, mint_room_token
from server.demo import Demo
from server.keys import SECRET, SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.rooms.access import rooms_of
from tests.conftest import login
from tests.integration.wsclient import connect, expect_close, receive, receive_type, room_token


async def consultation_room(client: TestClient, demo: Demo, patient: str = "patient1") -> str:
    async with client.app[SESSIONS]() as db:
        rooms = await rooms_of(db, demo.users[patient].id)
    return rooms[0][0].name


@pytest.fixture
async def doctor(client: TestClient, demo: Demo) -> tuple[str, str]:
    """(room name, doctor's room token) for patient1's consultation."""
    csrf = await login(client, demo.users["doctor"].email)
    room = await consultation_room(client, demo)
    return room, (await room_token(client, csrf, room))["token"]


async def second_user(
    aiohttp_client: Callable[..., Awaitable[TestClient]], client: TestClient, email: str, room: str
) -> tuple[TestClient, str]:
    other = await aiohttp_client(client.server)
    csrf = await login(other, email)
    return other, (await room_token(other, csrf, room))["token"]


async def real_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="sendonly")
    pc.addTransceiver("video", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


# --- the handshake ------------------------------------------------------------------------------


async def test_missing_token_is_401(client: TestClient) -> None:
    with pytest.raises(WSServerHandshakeError) as caught:
        await client.ws_connect("/ws", protocols=("caunoi.v1",))
    assert caught.value.status == 401


async def test_expired_token_is_401(client: TestClient, demo: Demo, doctor: tuple[str, str]) -> None:
    room, _ = doctor
    expired = mint_room_token(client.app[SECRET], room=room, identity=demo.users["doctor"].id,
                              grants=Grants(can_publish=True), ttl_seconds=10, now=time.time() - 60)
    with pytest.raises(WSServerHandshakeError) as caught:
        await connect(client, expired)
    assert caught.value.status == 401


async def test_forged_token_is_401_and_audited(client: TestClient, demo: Demo, doctor: tuple[str, str]) -> None:
    room, _ = doctor
    forged = mint_room_token("another-secret-" + "y" * 40, room=room, identity=demo.users["doctor"].id,
                             grants=Grants(can_publish=True, room_admin=True), ttl_seconds=60)
    with pytest.raises(WSServerHandshakeError) as caught:
        await connect(client, forged)
    assert caught.value.status == 401
    async with client.app[SESSIONS]() as db:
        rows = (await db.execute(select(AuditEvent).where(AuditEvent.action == "room.connect"))).scalars().all()
    assert [r.outcome for r in rows] == [Outcome.DENIED]


async def test_foreign_origin_is_403(client: TestClient, doctor: tuple[str, str]) -> None:
    _, token = doctor
    with pytest.raises(WSServerHandshakeError) as caught:
        await connect(client, token, headers={"Origin": "https://evil.example"})
    assert caught.value.status == 403


async def test_own_origin_and_bearer_header_are_accepted(client: TestClient, doctor: tuple[str, str]) -> None:
    room, token = doctor
    origin = f"http://{client.host}:{client.port}"
    ws = await connect(client, token, headers={"Origin": origin})
    assert ws.protocol == "caunoi.v1"  # the token subprotocol is never echoed back
    await ws.close()
    ws = await client.ws_connect("/ws", headers={"Authorization": f"Bearer {token}"})
    await ws.send_json({"type": "join", "room": room})
    assert (await receive(ws))["type"] == "joined"
    await ws.close()


async def test_token_for_another_room_is_refused(client: TestClient, demo: Demo, doctor: tuple[str, str]) -> None:
    _, token = doctor
    other_room = await consultation_room(client, demo, "patient2")
    ws = await connect(client, token)
    await ws.send_json({"type": "join", "room": other_room})
    assert (await receive(ws))["code"] == "wrong_room"
    await expect_close(ws, 1008)


# --- the protocol -------------------------------------------------------------------------------


async def test_join_presence_mute_and_leave(
    client: TestClient, demo: Demo, doctor: tuple[str, str], aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    room, token = doctor
    ws_doctor = await connect(client, token)
    await ws_doctor.send_json({"type": "join", "room": room, "protocol": 1})
    joined = await receive_type(ws_doctor, "joined")
    assert joined["participant"]["name"] == demo.users["doctor"].display_name
    assert joined["participants"] == [] and joined["ice_servers"] == []

    patient, patient_token = await second_user(aiohttp_client, client, demo.users["patient1"].email, room)
    ws_patient = await connect(patient, patient_token)
    await ws_patient.send_json({"type": "join", "room": room})
    joined = await receive_type(ws_patient, "joined")
    assert [p["name"] for p in joined["participants"]] == [demo.users["doctor"].display_name]
    event = await receive_type(ws_doctor, "participant_joined")
    assert event["participant"]["id"] == demo.users["patient1"].id

    await ws_patient.send_json({"type": "mute", "kind": "audio", "muted": True})
    mute = await receive_type(ws_doctor, "mute")
    assert mute == {"type": "mute", "participant_id": demo.users["patient1"].id, "kind": "audio", "muted": True}

    await ws_doctor.send_json({"type": "ping", "ts": 12.5})
    assert (await receive_type(ws_doctor, "pong"))["ts"] == 12.5

    await ws_patient.send_json({"type": "leave"})
    await expect_close(ws_patient, 1000)
    left = await receive_type(ws_doctor, "participant_left")
    assert left["participant_id"] == demo.users["patient1"].id
    await ws_doctor.close()

    expected = sorted([("room.join", demo.users["doctor"].id), ("room.join", demo.users["patient1"].id),
                       ("room.leave", demo.users["doctor"].id), ("room.leave", demo.users["patient1"].id)])
    actions: list[tuple[str, str | None]] = []
    for _ in range(50):  # the server writes the last leave row just after the socket closes
        async with client.app[SESSIONS]() as db:
            rows = await db.execute(select(AuditEvent.action, AuditEvent.actor_id)
                                    .where(AuditEvent.action.in_(["room.join", "room.leave"])))
            actions = sorted((action, actor) for action, actor in rows)
        if actions == expected:
            break
        await asyncio.sleep(0.1)
    assert actions == expected


async def test_joining_twice_replaces_the_older_connection(client: TestClient, doctor: tuple[str, str]) -> None:
    room, token = doctor
    first = await connect(client, token)
    await first.send_json({"type": "join", "room": room})
    await receive_type(first, "joined")
    second = await connect(client, token)
    await second.send_json({"type": "join", "room": room})
    await receive_type(second, "joined")
    assert (await receive_type(first, "error"))["code"] == "replaced"
    await expect_close(first, 1001)
    await second.send_json({"type": "ping"})
    assert (await receive_type(second, "pong"))["type"] == "pong"
    await second.close()


async def test_viewer_cannot_publish(client: TestClient, demo: Demo, doctor: tuple[str, str]) -> None:
    room, _ = doctor
    viewer = mint_room_token(client.app[SECRET], room=room, identity="observer", grants=Grants(can_subscribe=True),
                             ttl_seconds=60)
    ws = await connect(client, viewer)
    await ws.send_json({"type": "join", "room": room})
    await receive_type(ws, "joined")
    await ws.send_json({"type": "offer", "sdp": await real_offer()})
    assert (await receive_type(ws, "error"))["code"] == "not_allowed"
    await ws.close()


async def test_publisher_offer_gets_an_answer(client: TestClient, doctor: tuple[str, str]) -> None:
    room, token = doctor
    ws = await connect(client, token)
    await ws.send_json({"type": "join", "room": room})
    await receive_type(ws, "joined")
    await ws.send_json({"type": "offer", "sdp": await real_offer()})
    answer = await receive_type(ws, "answer", timeout=10)
    assert answer["sdp"].startswith("v=0") and "a=recvonly" in answer["sdp"]
    end = await receive_type(ws, "candidate")
    assert end == {"type": "candidate", "target": "publisher", "candidate": None}
    await ws.close()


# --- bad input ----------------------------------------------------------------------------------


async def test_bad_messages_get_errors_and_the_connection_survives(
    client: TestClient, doctor: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    room, token = doctor
    ws = await connect(client, token)
    cases = [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        (json.dumps({"type": "launch_missiles"}), "unknown_type"),
        (json.dumps({"type": "offer", "sdp": "v=0"}), "not_joined"),
        (json.dumps({"type": "join", "room": room, "protocol": 2}), "invalid_message"),
        (json.dumps({"type": "join", "room": room, "extra": 1}), "invalid_message"),
    ]
    for text, code in cases:
        await ws.send_str(text)
        error = await receive_type(ws, "error")
        assert error["code"] == code, text
        assert error["message"]
    await ws.send_bytes(b"\x00\x01")
    assert (await receive_type(ws, "error"))["code"] == "invalid_message"
    await ws.send_json({"type": "join", "room": room})
    await receive_type(ws, "joined")
    offer = await real_offer()
    hostile = [
        offer[: len(offer) // 2],  # truncated
        "garbage",
        offer.replace("UDP/TLS/RTP/SAVPF 96", "UDP/TLS/RTP/SAVPF 300").replace("rtpmap:96 ", "rtpmap:300 "),
        "v=0\r\n" + "a=x\r\n" * 6000,  # ~36 KiB: over the SDP cap, under the message cap
    ]
    for sdp in hostile:
        await ws.send_json({"type": "offer", "sdp": sdp})
        error = await receive_type(ws, "error")
        assert error["code"] in ("invalid_sdp", "invalid_message"), (sdp[:60], error)
    await ws.send_json({"type": "answer", "sdp": offer})
    assert (await receive_type(ws, "error"))["code"] == "negotiation_error"
    await ws.send_json({"type": "candidate", "target": "publisher", "candidate": {"candidate": "candidate:x"}})
    assert (await receive_type(ws, "error"))["code"] == "negotiation_error"
    # Still alive and answering.
    await ws.send_json({"type": "ping"})
    await receive_type(ws, "pong")
    await ws.close()
    # Bad input is the client's problem, not a server bug: no traceback in the log.
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


async def test_oversized_message_closes_with_1009(client: TestClient, doctor: tuple[str, str]) -> None:
    room, token = doctor
    ws = await connect(client, token)
    await ws.send_json({"type": "join", "room": room})
    await receive_type(ws, "joined")
    await ws.send_json({"type": "offer", "sdp": "v=0\r\n" + "x" * (1024 * 1024)})  # a 1 MiB SDP
    await expect_close(ws, 1009)


async def test_too_many_errors_close_with_1008(client: TestClient, doctor: tuple[str, str]) -> None:
    _, token = doctor
    ws = await connect(client, token)
    for _ in range(25):
        if ws.closed:
            break
        await ws.send_str("nope")
    codes = []
    while True:
        message = await ws.receive(timeout=5)
        if message.type != WSMsgType.TEXT:
            break
        codes.append(json.loads(message.data)["code"])
    assert codes[-1] == "too_many_errors"
    assert ws.close_code == 1008


async def test_shutdown_tells_clients_the_server_is_going_away(client: TestClient, doctor: tuple[str, str]) -> None:
    from server.signalling.handler import close_all

    room, token = doctor
    ws = await connect(client, token)
    await ws.send_json({"type": "join", "room": room})
    await receive_type(ws, "joined")
    await close_all(client.app)  # what the app's on_shutdown runs
    await expect_close(ws, 1001)


async def test_video_preference_is_validated_and_accepted(client: TestClient, doctor: tuple[str, str]) -> None:
    room, token = doctor
    ws = await connect(client, token)
    await ws.send_json({"type": "video_preference", "participant_id": "x", "quality": "low"})
    assert (await receive_type(ws, "error"))["code"] == "not_joined"
    await ws.send_json({"type": "join", "room": room})
    await receive_type(ws, "joined")
    await ws.send_json({"type": "video_preference", "participant_id": "x", "quality": "4k"})
    assert (await receive_type(ws, "error"))["code"] == "invalid_message"
    for quality in ("off", "low", "high"):
        await ws.send_json({"type": "video_preference", "participant_id": "someone", "quality": quality})
    await ws.send_json({"type": "ping"})
    assert (await receive(ws))["type"] == "pong"  # no error came before the pong
    await ws.close()
