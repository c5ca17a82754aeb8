"""The doctor invites a relative into a visit from the record page: the one-time link is shown once,
sent by SMS through the configured channel (here the log channel, which takes any phone number), and
the relative's link opens a session of their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page

from server.demo import Demo
from tests.conftest import login
from tests.e2e.helpers import wait_for


async def test_the_doctor_invites_a_relative(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    server, demo = live
    staff = await aiohttp_client(server)
    csrf = await login(staff, demo.users["doctor"].email)
    visit = await (await staff.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                    json={"patient_id": demo.users["patient1"].id, "send_link": False})).json()

    page = await new_user_page(demo.users["doctor"].email)
    await page.goto(str(server.make_url(f"/clinic/encounters/{visit['id']}/record")))
    await page.click("#invite-guest summary")
    await page.fill("#invite-form input[name=name]", "Phạm Thị Hoa")
    await page.select_option("#invite-form select[name=role]", "family")
    await page.fill("#invite-form input[name=phone]", "abc")  # refused: the error shows, the name stays
    await page.click("#invite-form button[type=submit]")
    error = page.locator("#invite-form [data-error]")

    async def refused() -> str | None:
        return None if (await error.text_content() or "").strip() else "no error shown"
    await wait_for(refused, timeout=10)
    assert await page.input_value("#invite-form input[name=name]") == "Phạm Thị Hoa"
    await page.fill("#invite-form input[name=phone]", "0933 111 222")
    await page.click("#invite-form button[type=submit]")
    await page.wait_for_selector("#invite-result:not([hidden])")
    link = (await page.text_content("#invite-result [data-link]")) or ""
    assert "/join/" in link
    text = await page.text_content("#invite-result [data-text]") or ""
    assert "SMS" in text  # the log channel took it

    relative = await aiohttp_client(server)
    opened = await relative.get(urlsplit(link).path, allow_redirects=False)
    assert opened.status == 302  # the guest's own session, straight to the call
