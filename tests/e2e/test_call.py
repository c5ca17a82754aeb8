"""Two real browsers in a call through our server: the doctor and a patient each decode the
other's video and audio, and a third client sending garbage does not disturb them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from server.demo import Demo
from tests.e2e.helpers import inbound, wait_for, wait_media_rising

pytestmark = pytest.mark.e2e

GARBAGE_JS = """
async ({room, sdpGarbage}) => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch(`/api/rooms/${room}/token`, {method: 'POST', headers: {'X-CSRF-Token': csrf}});
  const grant = await response.json();
  const ws = new WebSocket(`ws://${location.host}/ws`, ['caunoi.v1', 'caunoi.token.' + grant.token]);
  const errors = [];
  let closeCode = null;
  ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.type === 'error') errors.push(m.code); };
  const closed = new Promise((resolve) => { ws.onclose = (e) => { closeCode = e.code; resolve(); }; });
  await new Promise((resolve) => { ws.onopen = resolve; });
  ws.send('{not json');
  ws.send(JSON.stringify({type: 'launch_missiles'}));
  ws.send(JSON.stringify({type: 'offer', sdp: 'v=0'}));                 // before join
  ws.send(JSON.stringify({type: 'join', room}));
  for (const sdp of sdpGarbage) ws.send(JSON.stringify({type: 'offer', sdp}));
  ws.send(JSON.stringify({type: 'answer', sdp: 'v=0\\r\\n'}));          // nobody asked
  ws.send(JSON.stringify({type: 'candidate', target: 'publisher', candidate: {candidate: 'candidate:garbage'}}));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  ws.send('x'.repeat(70 * 1024));                                       // over the 64 KiB cap
  await closed;
  return {errors, closeCode};
}
"""

HOSTILE_SDP = [
    "garbage",
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 300\r\n"
    "a=rtpmap:300 VP8/90000\r\n",
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpm",
]


async def open_room(page: Page, room_title: str) -> None:
    await page.click(f"text={room_title}")
    await page.wait_for_url("**/rooms/r-*")


async def test_doctor_and_patient_see_and_hear_each_other(
    live: tuple[TestServer, Demo],
    new_user_page: Callable[[str], Awaitable[Page]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    _server, demo = live
    title = f"Khám từ xa · {demo.users['patient1'].display_name}"
    doctor = await new_user_page(demo.users["doctor"].email)
    patient = await new_user_page(demo.users["patient1"].email)
    await open_room(doctor, title)
    await open_room(patient, title)

    await wait_media_rising(doctor, "the doctor")
    await wait_media_rising(patient, "the patient")

    # Names are shown on the remote tiles.
    await doctor.wait_for_selector(f"figure.remote figcaption:has-text('{demo.users['patient1'].display_name}')")
    await patient.wait_for_selector(f"figure.remote figcaption:has-text('{demo.users['doctor'].display_name}')")

    # A third client (the nurse's page) floods the room with bad input.
    nurse = await new_user_page(demo.users["nurse"].email)
    room_name = doctor.url.rsplit("/", 1)[1]
    result = await nurse.evaluate(GARBAGE_JS, {"room": room_name, "sdpGarbage": HOSTILE_SDP})
    errors = result["errors"]
    assert errors[:3] == ["invalid_json", "unknown_type", "not_joined"], result
    assert errors[3:6] == ["invalid_sdp"] * len(HOSTILE_SDP), result
    # The garbage answer meets the subscriber offer the server sent the nurse on joining (or none yet).
    assert errors[6] in ("invalid_sdp", "negotiation_error"), result
    # A candidate for a publisher connection that was never offered.
    assert errors[7] == "negotiation_error", result
    assert result["closeCode"] == 1009, result

    # The call goes on.
    await wait_media_rising(doctor, "the doctor after the garbage")
    await wait_media_rising(patient, "the patient after the garbage")

    # Mute: the doctor turns the microphone off; the patient's page shows it.
    await doctor.click("#toggle-mic")

    async def patient_sees_mute() -> str | None:
        badge = await patient.text_content("figure.remote .badge")
        return None if badge and "🔇" in badge else f"the patient's page shows badge {badge!r}"

    await wait_for(patient_sees_mute, 5)

    # Leave: the patient's page drops the doctor's tile.
    await doctor.click("#leave")
    await doctor.wait_for_url("**/rooms")

    async def tile_gone() -> str | None:
        count = await patient.locator("figure.remote").count()
        return None if count == 0 else f"the patient still shows {count} remote tile(s)"

    await wait_for(tile_gone, 5)
    assert await inbound(patient) is not None

    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
