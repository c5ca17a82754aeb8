"""The facility administrator schedules a remote visit from the dashboard: finds the patient, picks
the doctor and a free time of the doctor's calendar; the booking and the visit are made together and
the one-time link is shown (and sent). The patient then has it in their history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page

from server.demo import Demo
from tests.conftest import login
from tests.e2e.helpers import wait_for


async def test_the_administrator_schedules_a_remote_visit(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    server, demo = live
    page = await new_user_page(demo.users["facility_admin"].email)
    await page.goto(str(server.make_url(f"/clinic/{demo.facility.id}/dashboard")))
    await page.click("#new-visit summary")
    await page.fill("#patient-query", "Phạm Văn")
    patient = demo.users["patient1"]

    async def found() -> str | None:
        values = await page.eval_on_selector_all("#patient-choice option", "options => options.map(o => o.value)")
        return None if values == [patient.id] else f"patients offered: {values}"
    await wait_for(found, timeout=10)

    async def slots_loaded() -> str | None:
        count = await page.eval_on_selector_all("#slot-choice option", "options => options.length")
        return None if count > 1 else "no free times offered yet"
    await wait_for(slots_loaded, timeout=10)
    assert await page.input_value("#doctor-choice") == demo.users["doctor"].id
    slot = await page.eval_on_selector("#slot-choice", "select => select.options[1].value")
    await page.select_option("#slot-choice", slot)
    await page.click("#new-visit-form button[type=submit]")
    await page.wait_for_selector("#new-visit-result:not([hidden])")
    assert "/join/" in (await page.text_content("#new-visit-result [data-link]") or "")
    # The booked time is no longer offered.
    offered = await page.eval_on_selector_all("#slot-choice option", "options => options.map(o => o.value)")
    assert slot not in offered

    phone = await aiohttp_client(server)
    await login(phone, patient.email)
    [visit] = (await (await phone.get("/api/clinics/my/visits")).json())["visits"]
    assert datetime.fromisoformat(visit["scheduled_start"]) == datetime.fromisoformat(slot)
    assert visit["doctor"] == demo.users["doctor"].display_name and visit["join"]
    bookings = (await (await phone.get("/api/scheduling/my/bookings")).json())["bookings"]
    assert [datetime.fromisoformat(b["start"]) for b in bookings] == [datetime.fromisoformat(slot)]
