"""A facility administrator manages departments and practitioners; a new practitioner chooses their
own password from a one-time link sent by e-mail (a real SMTP server on loopback)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.app import create_app
from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent
from tests.conftest import login, make_settings, page_csrf, seed
from tests.integration.fhir_support import build_world
from tests.integration.test_reminders import Inbox, smtp  # noqa: F401 (fixture)


@pytest.fixture
async def world(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str,
                smtp: tuple[Inbox, int]) -> tuple[TestClient, Demo]:  # noqa: F811
    settings = make_settings(tmp_path, database_url, notifiers=["email"], smtp_port=smtp[1])
    client = await aiohttp_client(create_app(settings))
    return client, await seed(client.app)


async def set_password(browser: TestClient, link: str, password: str, confirm: str | None = None) -> Any:
    path = urlsplit(link).path
    form = await browser.get(path)
    html = await form.text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert form.status == 200 and token, html
    return await browser.post(path, data={"csrf_token": token.group(1), "password": password,
                                          "confirm": password if confirm is None else confirm},
                              allow_redirects=False)


async def test_departments_and_a_new_doctor_who_sets_their_own_password(
    world: tuple[TestClient, Demo], smtp: tuple[Inbox, int],  # noqa: F811
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    client, demo = world
    inbox, _ = smtp
    facility = demo.facility.id
    csrf = await login(client, demo.users["facility_admin"].email)
    headers = {"X-CSRF-Token": csrf}

    made = await client.post(f"/api/clinics/{facility}/departments", headers=headers,
                             json={"name": "Phòng khám Nhi", "code": "K05", "services": "Khám nhi\nTư vấn dinh dưỡng"})
    assert made.status == 201
    department = await made.json()
    duplicate = await client.post(f"/api/clinics/{facility}/departments", headers=headers,
                                  json={"name": "Phòng khám Nhi"})
    assert duplicate.status == 409 and (await duplicate.json())["error"]["code"] == "duplicate_department"
    assert (await client.post(f"/api/clinics/{facility}/departments", headers=headers, json={"name": ""})
            ).status == 400

    body = {"display_name": "BS. Lý Thị Mai", "email": "Mai.Ly@tramyte.demo", "phone": "0987 654 321",
            "role": "doctor", "licence_number": "004321/CT-CCHN", "specialty": "Nhi",
            "department_id": department["id"]}
    bad = await client.post(f"/api/clinics/{facility}/practitioners", headers=headers,
                            json={**body, "licence_number": "<script>"})
    assert bad.status == 400
    added = await client.post(f"/api/clinics/{facility}/practitioners", headers=headers, json=body)
    assert added.status == 201, await added.text()
    result = await added.json()
    assert result["existing_account"] is False and result["sent_via"] == ["email"]
    assert result["password_link"].split("/account/password/")[1]  # shown once to pass on if no mail arrives
    assert (await client.post(f"/api/clinics/{facility}/practitioners", headers=headers, json=body)).status == 409

    for _ in range(100):
        if inbox.messages:
            break
        await asyncio.sleep(0.05)
    [mail] = inbox.messages
    assert mail["To"] == "mai.ly@tramyte.demo" and result["password_link"] in mail.get_payload(decode=True).decode()

    people = (await (await client.get(f"/api/clinics/{facility}/practitioners")).json())["practitioners"]
    mai = next(p for p in people if p["user_id"] == result["user_id"])
    assert mai == {**mai, "role": "doctor", "active": True, "password_set": False, "department": "Phòng khám Nhi",
                   "phone": "+84987654321", "licence_number": "004321/CT-CCHN"}

    # The doctor chooses a password (a weak one is refused and nothing is consumed), is logged in,
    # and the link is then spent.
    browser = await aiohttp_client(client.server)
    assert (await set_password(browser, result["password_link"], "short")).status == 422
    assert (await set_password(browser, result["password_link"], "một câu dài dễ nhớ", "khác hẳn")).status == 422
    done = await set_password(browser, result["password_link"], "một câu dài dễ nhớ")
    assert done.status == 302 and done.headers["Location"] == "/rooms"
    me = await (await browser.get("/api/me")).json()
    assert me["email"] == "mai.ly@tramyte.demo"
    again = await aiohttp_client(client.server)
    assert (await again.get(urlsplit(result["password_link"]).path)).status == 410
    assert await login_status(again, "mai.ly@tramyte.demo", "một câu dài dễ nhớ") == 302

    # She leaves the facility: the role goes (the dashboard is closed to her), the profile stays.
    left = await client.patch(f"/api/clinics/{facility}/practitioners/{result['user_id']}", headers=headers,
                              json={"active": False})
    assert left.status == 200 and (await left.json())["active"] is False
    await asyncio.sleep(5.1)  # the session cache keeps roles for 5 s
    assert (await browser.get(f"/api/clinics/{facility}/queue")).status == 404
    back = await client.patch(f"/api/clinics/{facility}/practitioners/{result['user_id']}", headers=headers,
                              json={"active": True})
    assert back.status == 422 and (await back.json())["error"]["code"] == "role_required"
    back = await client.patch(f"/api/clinics/{facility}/practitioners/{result['user_id']}", headers=headers,
                              json={"active": True, "role": "nurse"})
    assert (await back.json())["role"] == "nurse"

    # A reset link voids the earlier ones.
    first = (await (await client.post(f"/api/clinics/{facility}/practitioners/{result['user_id']}/password-link",
                                      headers=headers)).json())["password_link"]
    second = (await (await client.post(f"/api/clinics/{facility}/practitioners/{result['user_id']}/password-link",
                                       headers=headers)).json())["password_link"]
    assert (await again.get(urlsplit(first).path)).status == 410
    assert (await again.get(urlsplit(second).path)).status == 200

    async with client.app[SESSIONS]() as db:
        actions = set((await db.execute(select(AuditEvent.action))).scalars().all())
    assert {"clinic.department.create", "clinic.practitioner.create", "clinic.practitioner.update",
            "auth.password_set", "auth.password_link"} <= actions


async def login_status(client: TestClient, email: str, password: str) -> int:
    csrf = await page_csrf(client, "/login")
    response = await client.post("/login", data={"csrf_token": csrf, "email": email, "password": password},
                                 allow_redirects=False)
    return response.status


async def test_an_existing_account_is_linked_not_duplicated(
    world: tuple[TestClient, Demo], smtp: tuple[Inbox, int],  # noqa: F811
) -> None:
    client, demo = world
    inbox, _ = smtp
    csrf = await login(client, demo.users["facility_admin"].email)
    # The station's nurse also works here as a doctor... at the same facility is a conflict:
    same = await client.post(f"/api/clinics/{demo.facility.id}/practitioners", headers={"X-CSRF-Token": csrf},
                             json={"display_name": "x", "email": demo.users["nurse"].email, "role": "doctor",
                                   "licence_number": "004567/CT-CCHN"})
    assert same.status == 409
    # ...while a teacher with an account becoming a nurse keeps their password and gets no link.
    teacher = await client.post(f"/api/clinics/{demo.facility.id}/practitioners", headers={"X-CSRF-Token": csrf},
                                json={"display_name": "x", "email": demo.users["teacher"].email, "role": "nurse",
                                      "licence_number": "009999/CT-CCHN"})
    result = await teacher.json()
    assert teacher.status == 201 and result["existing_account"] is True and result["password_link"] is None
    assert inbox.messages == []


async def test_departments_are_visible_to_other_facilities_only_when_active(
    world: tuple[TestClient, Demo], aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    client, demo = world
    others = await build_world(client, demo)
    csrf = await login(client, demo.users["facility_admin"].email)
    url = f"/api/clinics/{demo.facility.id}/departments"
    await client.post(url, headers={"X-CSRF-Token": csrf}, json={"name": "Nhi"})
    closed = await (await client.post(url, headers={"X-CSRF-Token": csrf}, json={"name": "Sản"})).json()
    await client.patch(f"/api/clinics/departments/{closed['id']}", headers={"X-CSRF-Token": csrf},
                       json={"active": False})
    assert {"Nhi", "Sản"} <= {d["name"] for d in (await (await client.get(url)).json())["departments"]}
    # A doctor elsewhere, choosing whom to ask for a hội chẩn: the active departments only.
    colleague = await aiohttp_client(client.server)
    await login(colleague, others.users["other_doctor"].email)
    seen = {d["name"] for d in (await (await colleague.get(url)).json())["departments"]}
    assert "Nhi" in seen and "Sản" not in seen
    # ...and cannot change them.
    colleague_csrf = await page_csrf(colleague, "/rooms")
    assert (await colleague.patch(f"/api/clinics/departments/{closed['id']}", headers={"X-CSRF-Token": colleague_csrf},
                                  json={"active": True})).status == 404
    patient = await aiohttp_client(client.server)
    await login(patient, demo.users["patient1"].email)
    assert (await patient.get(url)).status == 404
