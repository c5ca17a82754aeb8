"""The scheduling pages (web/scheduling_pages.py): login required, Vietnamese by default, who may open
which page, and every refusal a 404 written to the audit log."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.app import create_app
from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.scheduling.models import Resource
from tests.conftest import login, make_settings, seed

CONFIG = re.compile(r'<script type="application/json" id="config">(.*?)</script>', re.S)


async def resource_of(client: TestClient, tenant_id: str) -> Resource:
    """The demo's bookable resource of a tenant (the doctor's consultations, or class 5A)."""
    async with client.app[SESSIONS]() as db:
        resource = (await db.execute(select(Resource).where(Resource.tenant_id == tenant_id))).scalars().first()
    assert resource is not None, f"the demo has no resource in tenant {tenant_id}"
    return resource


async def denials(client: TestClient, action: str, target_id: str) -> list[AuditEvent]:
    async with client.app[SESSIONS]() as db:
        rows = (await db.execute(select(AuditEvent).where(AuditEvent.action == action,
                                                          AuditEvent.target_id == target_id))).scalars().all()
    return [row for row in rows if row.outcome == Outcome.DENIED]


def page_config(html: str) -> dict[str, object]:
    match = CONFIG.search(html)
    assert match, "the page has no JSON config block"
    config: dict[str, object] = json.loads(match.group(1))
    return config


@pytest.mark.parametrize("path", ["/schedule", "/schedule/admin/{id}/availability", "/schedule/calendar/{id}"])
async def test_pages_require_login(client: TestClient, demo: Demo, path: str) -> None:
    resource = await resource_of(client, demo.facility.id)
    url = path.format(id=resource.id)
    response = await client.get(url, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == f"/login?next={url}"


async def test_header_links_to_the_booking_page_once_logged_in(client: TestClient, demo: Demo) -> None:
    link = '<a class="nav-schedule" href="/schedule">Đặt lịch</a>'
    assert link not in await (await client.get("/login")).text()
    await login(client, demo.users["patient1"].email)
    assert link in await (await client.get("/rooms")).text()


async def test_booking_page_is_vietnamese_by_default_and_lists_the_tenants_services(
        client: TestClient, demo: Demo) -> None:
    await login(client, demo.users["patient1"].email)
    facility = await resource_of(client, demo.facility.id)
    school = await resource_of(client, demo.school.id)
    response = await client.get("/schedule")
    assert response.status == 200
    html = await response.text()
    assert '<html lang="vi">' in html
    assert "Đặt lịch hẹn" in html and "Lịch hẹn của tôi" in html and "Book an appointment" not in html
    assert facility.name in html and school.name not in html
    config = page_config(html)
    ids = {r["id"] for r in config["resources"]}  # type: ignore[index,union-attr]
    assert facility.id in ids and school.id not in ids
    assert config["clients"] == []  # a patient books only for themselves
    i18n = json.loads(re.search(r'id="i18n">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert i18n["weekdays"][0] == "Thứ Hai"
    assert "vừa có người đặt giờ này" in i18n["taken"]
    # The page loads only its own module: no inline script (the CSP forbids it).
    assert "/static/js/scheduling/book.js" in html
    assert re.search(r"<script(?![^>]*(type=\"application/json\"|src=))", html) is None

    await client.get("/lang/en?next=/schedule")
    english = await (await client.get("/schedule")).text()
    assert '<html lang="en">' in english and "Book an appointment" in english


async def test_staff_may_book_on_behalf_of_their_patients(client: TestClient, demo: Demo) -> None:
    await login(client, demo.users["nurse"].email)
    config = page_config(await (await client.get("/schedule")).text())
    names = {c["name"] for c in config["clients"]}  # type: ignore[union-attr]
    assert names == {demo.users["patient1"].display_name, demo.users["patient2"].display_name}


async def test_availability_editor_is_for_administrators_only(client: TestClient, demo: Demo) -> None:
    resource = await resource_of(client, demo.facility.id)
    url = f"/schedule/admin/{resource.id}/availability"
    await login(client, demo.users["facility_admin"].email)
    response = await client.get(url)
    assert response.status == 200
    html = await response.text()
    assert "Lịch làm việc" in html and resource.name in html
    assert "15 phút" in html  # the slot length, in Vietnamese
    assert page_config(html)["resource"]["admin"] is True  # type: ignore[index]

    for handle in ("doctor", "patient1"):
        await login(client, demo.users[handle].email)
        response = await client.get(url)
        assert response.status == 404, handle
        assert resource.name not in await response.text()
    assert len(await denials(client, "scheduling.availability.page", resource.id)) == 2


async def test_calendar_is_for_staff_only(client: TestClient, demo: Demo) -> None:
    resource = await resource_of(client, demo.facility.id)
    url = f"/schedule/calendar/{resource.id}"
    await login(client, demo.users["doctor"].email)
    response = await client.get(url)
    assert response.status == 200
    config = page_config(await response.text())
    names = {p["name"] for p in config["people"]}  # type: ignore[union-attr]
    assert demo.users["patient1"].display_name in names  # the calendar shows who booked, by name
    assert demo.users["teacher"].display_name not in names  # nobody of another tenant

    await login(client, demo.users["patient1"].email)
    assert (await client.get(url)).status == 404
    assert len(await denials(client, "scheduling.calendar.page", resource.id)) == 1


@pytest.mark.parametrize("path", ["/schedule/admin/{id}/availability", "/schedule/calendar/{id}"])
async def test_another_tenants_resource_is_not_found_and_audited(client: TestClient, demo: Demo, path: str) -> None:
    facility_resource = await resource_of(client, demo.facility.id)
    await login(client, demo.users["school_admin"].email)  # an administrator, but of the school
    response = await client.get(path.format(id=facility_resource.id))
    assert response.status == 404
    assert facility_resource.name not in await response.text()
    action = "scheduling.availability.page" if "admin" in path else "scheduling.calendar.page"
    rows = await denials(client, action, facility_resource.id)
    assert len(rows) == 1
    assert rows[0].actor_id == demo.users["school_admin"].id

    response = await client.get(path.format(id="no-such-resource"))
    assert response.status == 404
    assert len(await denials(client, action, "no-such-resource")) == 1


async def test_only_administrators_get_the_new_calendar_form(client: TestClient, demo: Demo) -> None:
    await login(client, demo.users["nurse"].email)
    assert 'id="resource-form"' not in await (await client.get("/schedule")).text()

    await login(client, demo.users["facility_admin"].email)
    html = await (await client.get("/schedule")).text()
    assert 'id="resource-form"' in html and "Thêm lịch mới" in html
    assert f'<input type="hidden" name="tenant" id="new-tenant" value="{demo.facility.id}">' in html
    owners = set(re.findall(r'<option value="[^"]+" data-tenant="[^"]+">([^<]+)</option>', html))
    # The calendar may belong to a doctor or nurse of this facility; never a patient, never the school.
    assert owners == {demo.users["doctor"].display_name, demo.users["nurse"].display_name}
    assert "/static/js/scheduling/new_resource.js" in html


async def test_names_for_the_pages_on_sqlite_and_postgresql(
        aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str) -> None:
    """The member queries (DISTINCT … ORDER BY name) behind the calendar and the booking page, on both databases."""
    client = await aiohttp_client(create_app(make_settings(tmp_path, database_url)))
    demo = await seed(client.app)
    resource = await resource_of(client, demo.facility.id)
    await login(client, demo.users["facility_admin"].email)
    people = page_config(await (await client.get(f"/schedule/calendar/{resource.id}")).text())["people"]
    names = [p["name"] for p in people]  # type: ignore[union-attr]
    facility = [u.display_name for h, u in demo.users.items() if h in {"facility_admin", "doctor", "nurse", "patient1",
                                                                      "patient2"}]
    assert sorted(names) == sorted(facility)  # each once (DISTINCT), nobody of the school
    clients = page_config(await (await client.get("/schedule")).text())["clients"]
    assert {c["name"] for c in clients} == {demo.users["patient1"].display_name,  # type: ignore[union-attr]
                                            demo.users["patient2"].display_name}


async def test_the_editor_has_the_settings_form_with_the_current_values(client: TestClient, demo: Demo) -> None:
    resource = await resource_of(client, demo.facility.id)
    await login(client, demo.users["facility_admin"].email)
    html = await (await client.get(f"/schedule/admin/{resource.id}/availability")).text()
    assert 'id="settings-form"' in html and "Cài đặt" in html and "Lưu cài đặt" in html
    for name, value in [("slot_minutes", resource.slot_minutes), ("buffer_minutes", resource.buffer_minutes),
                        ("min_notice_minutes", resource.min_notice_minutes), ("horizon_days", resource.horizon_days),
                        ("capacity", resource.capacity)]:
        assert re.search(rf'<input type="number" name="{name}" value="{value}"', html), name
    assert f'name="timezone" value="{resource.timezone}"' in html
    assert '<option value="Asia/Ho_Chi_Minh">' in html and '<option value="Europe/Paris">' in html
    assert 'id="set-active" checked' in html and 'id="inactive-banner" hidden' in html
    assert "/static/js/scheduling/settings.js" in html


async def test_switched_off_calendars_stay_reachable_for_administrators(client: TestClient, demo: Demo) -> None:
    resource = await resource_of(client, demo.facility.id)
    async with client.app[SESSIONS].begin() as db:
        stored = await db.get(Resource, resource.id)
        assert stored is not None
        stored.active = False
    await login(client, demo.users["facility_admin"].email)
    html = await (await client.get("/schedule")).text()
    assert f'<li><a href="/schedule/admin/{resource.id}/availability">{resource.name}</a></li>' in html
    assert resource.id not in {r["id"] for r in page_config(html)["resources"]}  # type: ignore[union-attr]
    editor = await (await client.get(f"/schedule/admin/{resource.id}/availability")).text()
    assert 'id="inactive-banner">' in editor and 'id="set-active" checked' not in editor

    await login(client, demo.users["nurse"].email)  # staff, not an administrator: nothing to switch on
    html = await (await client.get("/schedule")).text()
    assert 'id="switched-off"' not in html and resource.name not in html
