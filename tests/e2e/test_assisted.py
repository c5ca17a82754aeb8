"""Assisted mode on a station's shared device, in a real browser: the nurse registers two walk-ins,
takes their consent as witness, runs patient A's call on the station's tablet (the doctor admits from
their own browser; both decode each other's media), presses "End and next patient", and the device
then carries nothing of A — not in the page, not in any browser storage, not in the relay, not behind
the Back button — before B's visit starts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page
from sqlalchemy import select

from clinics.models import Encounter
from server.demo import DEMO_PASSWORD, Demo
from server.keys import SESSIONS, SFU
from server.rooms.models import Room
from tests.e2e.helpers import wait_for, wait_media_rising

pytestmark = pytest.mark.e2e

A = {"display_name": "Lâm Văn Tư", "birth_date": "1970-05-06", "sex": "male", "cccd": "093070001234",
     "bhyt": "0930701234", "phone": "0987654321"}
B = {"display_name": "Đào Thị Năm", "birth_date": "1985-01-02", "sex": "female", "cccd": "093185004321",
     "bhyt": "0931855678", "phone": "0976543210"}
A_CHAT = "Bác Tư bị ho ba ngày nay"
STORAGE_JS = """async () => ({
  local: Object.keys(localStorage).length, session: Object.keys(sessionStorage).length,
  idb: (await indexedDB.databases()).length, caches: self.caches ? (await caches.keys()).length : 0,
  media: document.querySelectorAll('video, audio').length })"""
PLANT_JS = """async (name) => {
  // What a careless script might have kept about the patient: the clean-up must remove it all.
  localStorage.setItem('last-patient', name);
  sessionStorage.setItem('draft', name);
  await new Promise((done) => {
    const open = indexedDB.open('notes');
    open.onupgradeneeded = () => open.result.createObjectStore('n');
    open.onsuccess = () => { open.result.close(); done(); };
  });
  const cache = await caches.open('pages');
  await cache.put('/patient', new Response(name));
}"""


async def register_and_consent(station: Page, patient: dict[str, str], method: str, scan: Path | None) -> str:
    """Through the station page as a nurse would; returns the new visit's id."""
    await station.click("#register-box summary")
    for field in ("display_name", "birth_date", "phone", "cccd", "bhyt"):
        await station.fill(f"#register [name={field}]", patient[field])
    await station.select_option("#register [name=sex]", patient["sex"])
    await station.click("#register button[type=submit]")
    await station.click(f"#found li:has-text('{patient['display_name']}') button.walk-in")
    await station.wait_for_selector("#consent:not([hidden])")
    assert patient["display_name"] in (await station.text_content("#consent-for") or "")
    assert await station.input_value("#decider-name") == patient["display_name"]
    await station.check(f"input[name=method][value={method}]")
    if scan is not None:
        await station.set_input_files("#scan", str(scan))
    await station.click("#consent button[type=submit]")
    assert "nothing is assumed" in (await station.text_content("#consent-error") or "") or \
        "không được mặc định" in (await station.text_content("#consent-error") or "")  # no decision: refused
    await station.check("input[name=decision][value=accept]")
    await station.click("#consent button[type=submit]")
    await station.wait_for_selector("#consent[hidden]", state="attached")
    row = station.locator(f"#queue tr:has-text('{patient['display_name']}')")
    await row.locator("button.run-call").wait_for()
    visit = await row.get_attribute("data-encounter")
    assert visit
    return visit


async def test_nurse_runs_two_walk_ins_on_one_device_and_nothing_of_the_first_remains(
    live: tuple[TestServer, Demo], browser: Browser, new_user_page: Callable[[str], Awaitable[Page]],
    tmp_path: Path,
) -> None:
    server, demo = live
    facility = demo.facility.id
    tablet = await browser.new_context(viewport={"width": 800, "height": 1280})
    await tablet.grant_permissions(["camera", "microphone"])
    station = await tablet.new_page()
    console: list[str] = []
    station.on("console", lambda message: console.append(message.text))
    await station.goto(str(server.make_url("/login")))
    await station.fill("input[name=email]", demo.users["nurse"].email)
    await station.fill("input[name=password]", DEMO_PASSWORD)
    await station.click("button[type=submit]")
    await station.wait_for_url("**/rooms")
    await station.goto(str(server.make_url(f"/clinic/{facility}/station")))
    await station.wait_for_selector("#doctor option", state="attached")

    scan = tmp_path / "phieu-dong-y.png"
    scan.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 128)
    visit_a = await register_and_consent(station, A, "verbal", None)
    visit_b = await register_and_consent(station, B, "paper", scan)
    order = await station.locator("#queue tr").evaluate_all("(rows) => rows.map((r) => r.dataset.encounter)")
    assert order == [visit_a, visit_b]  # arrival order

    # A's call, run by the nurse on the tablet.
    await station.click(f"#queue tr[data-encounter='{visit_a}'] button.run-call")
    await station.wait_for_url(f"**/station/assist/{visit_a}")
    assert await station.text_content("#patient-name") == A["display_name"]
    await wait_for(lambda: _camera_ok(station), 10)
    await station.click("#continue")
    await station.wait_for_selector("#waiting:not([hidden])")
    await station.fill("#chat-text", A_CHAT)
    await station.click("#chat-form button")
    await station.wait_for_selector(f"#chat-log li:has-text('{A_CHAT}')")
    await station.evaluate(PLANT_JS, A["display_name"])

    doctor = await new_user_page(demo.users["doctor"].email)
    await doctor.goto(str(server.make_url(f"/clinic/{facility}/dashboard")))
    row = doctor.locator(f"tr[data-encounter='{visit_a}']")
    assert "Đến trực tiếp" in (await row.locator("td").first.text_content() or "")  # marked as a walk-in
    await row.locator("button.admit").click()
    await station.wait_for_selector("#call:not([hidden])", timeout=15000)
    async with server.app[SESSIONS]() as db:
        room_a = await db.scalar(select(Room.name).join(Encounter, Encounter.room_id == Room.id)
                                 .where(Encounter.id == visit_a))
    assert room_a and await station.get_attribute("#call", "data-room") == room_a
    await doctor.goto(str(server.make_url(f"/rooms/{room_a}")))
    await wait_media_rising(doctor, "the doctor")
    await wait_media_rising(station, "the station")

    # Next patient.
    await station.click("#next-patient button")
    await station.wait_for_url(f"**/clinic/{facility}/station")
    await station.wait_for_selector(f"#queue tr[data-encounter='{visit_b}']")
    html = await station.content()
    for trace in (A["display_name"], A["cccd"], A["bhyt"], A["phone"], A_CHAT, visit_a):
        assert trace not in html, f"{trace!r} is still on the station page"
    left = await station.evaluate(STORAGE_JS)
    assert left == {"local": 0, "session": 0, "idb": 0, "caches": 0, "media": 0}, left

    async def site_data_cleared() -> str | None:  # Chromium logs it when it has done it, not before
        return None if any("Clear-Site-Data" in line and "Cleared data types" in line for line in console) \
            else f"no Clear-Site-Data report in the console: {console}"
    await wait_for(site_data_cleared, timeout=10)

    async def relay_released() -> str | None:
        room = server.app[SFU].rooms.get(room_a)
        here = room is not None and demo.users["nurse"].id in room.participants
        return "the station is still in A's call on the relay" if here else None

    await wait_for(relay_released, 10)
    await station.go_back()  # the assisted page is not kept anywhere: the server sends the nurse back
    await station.wait_for_url(f"**/clinic/{facility}/station")
    assert A["display_name"] not in await station.content()

    # B's visit starts on a clean device.
    await station.wait_for_selector(f"#queue tr[data-encounter='{visit_b}'] button.run-call")
    await station.click(f"#queue tr[data-encounter='{visit_b}'] button.run-call")
    await station.wait_for_url(f"**/station/assist/{visit_b}")
    assert await station.text_content("#patient-name") == B["display_name"]
    html = await station.content()
    assert A["display_name"] not in html and A_CHAT not in html
    await tablet.close()


async def _camera_ok(page: Page) -> str | None:
    state = await page.text_content("#camera-state")
    return None if state == "Camera và micrô hoạt động tốt." else f"camera check says {state!r}"
