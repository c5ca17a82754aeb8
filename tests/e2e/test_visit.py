"""The patient's path in a real browser: one-time link → pre-call check → waiting room → admitted by
the doctor → the consultation, where both decode each other's video and audio."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page

from server.demo import Demo
from tests.conftest import login
from tests.e2e.helpers import wait_for, wait_media_rising

pytestmark = pytest.mark.e2e


async def test_patient_joins_by_link_waits_and_is_admitted(
    live: tuple[TestServer, Demo], browser: Browser, new_user_page: Callable[[str], Awaitable[Page]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    server, demo = live
    staff = await aiohttp_client(server)
    csrf = await login(staff, demo.users["nurse"].email)
    visit = await (await staff.post(f"/api/clinics/{demo.facility.id}/encounters",
                                    headers={"X-CSRF-Token": csrf},
                                    json={"patient_id": demo.users["patient2"].id,
                                          "practitioner_id": demo.users["doctor"].id})).json()

    # The patient: no password, a cheap phone, the link from the SMS.
    context = await browser.new_context(viewport={"width": 360, "height": 740})
    await context.grant_permissions(["camera", "microphone"])
    phone = await context.new_page()
    await phone.goto(str(server.make_url(urlsplit(visit["join_link"]).path)))
    await phone.wait_for_url(f"**/visit/{visit['id']}")
    assert await phone.locator("h1").text_content() == "Buổi khám từ xa của bạn"  # Vietnamese first

    async def check_passed() -> str | None:
        camera = await phone.text_content("#camera-state")
        verdict = await phone.get_attribute("#network-state", "data-verdict")
        if camera != "Camera và micrô hoạt động tốt.":
            return f"camera check says {camera!r}"
        return None if verdict == "good" else f"network verdict {verdict!r}"

    await wait_for(check_passed, 10)
    # The patient is 10: her father consents, and she agrees too (Luật 91: from age 7).
    await phone.wait_for_selector("#consent:not([hidden])")
    assert await phone.input_value("#guardian-name") == "Võ Văn Em"
    await phone.click("#enter")
    assert "cũng đồng ý" in (await phone.text_content("#consent-error") or "")  # not ticked: refused
    await phone.check("#child-assent")
    await phone.click("#enter")
    await phone.wait_for_selector("#waiting:not([hidden])")

    async def queued() -> str | None:
        text = await phone.text_content("#position")
        return None if text and text.endswith(" 1") else f"position shows {text!r}"

    await wait_for(queued, 10)

    # The doctor's dashboard notices the arrival; they exchange a message, then the doctor admits her.
    doctor = await new_user_page(demo.users["doctor"].email)
    await doctor.goto(str(server.make_url(f"/clinic/{demo.facility.id}/dashboard")))
    row = doctor.locator(f"tr[data-encounter='{visit['id']}']")
    await phone.fill("#chat-text", "Cháu bị sốt từ tối qua ạ")
    await phone.click("#chat-form button")
    await row.locator("button.chat-open").click()
    await doctor.wait_for_selector("#chat-log li:has-text('Cháu bị sốt từ tối qua ạ')")
    await doctor.fill("#chat-text", "Bác sĩ sẽ gọi ngay")
    await doctor.click("#chat-form button")
    await phone.wait_for_selector("#chat-log li.from-clinic:has-text('Bác sĩ sẽ gọi ngay')")
    await row.locator("button.admit").click()
    await phone.wait_for_url(f"**/rooms/{visit['room']}", timeout=15000)
    await doctor.goto(str(server.make_url(f"/rooms/{visit['room']}")))
    await wait_media_rising(doctor, "the doctor")
    await wait_media_rising(phone, "the patient")
    await context.close()
