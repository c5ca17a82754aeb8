"""The join link reaches the patient (or a minor's guardian) by SMS and e-mail through the shared
notifiers — real SMTP and HTTP SMS servers on loopback — and a lost link can be replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from clinics.invitations import e164
from server.app import create_app
from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from tests.conftest import login, make_settings, seed
from tests.integration.test_reminders import Inbox, sms_gateway, smtp  # noqa: F401 (fixtures)


@pytest.fixture
async def world(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sqlite_url: str,
                smtp: tuple[Inbox, int], sms_gateway: tuple[list[Any], str]) -> tuple[TestClient, Demo]:  # noqa: F811
    settings = make_settings(tmp_path, sqlite_url, notifiers=["email", "sms"], smtp_port=smtp[1],
                             sms_gateway_url=sms_gateway[1], sms_gateway_token="gateway-token")
    client = await aiohttp_client(create_app(settings))
    return client, await seed(client.app)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not delivered")


def test_phone_numbers_become_e164() -> None:
    assert e164("0901 234 567") == "+84901234567"
    assert e164("+84912345678") == "+84912345678"
    assert e164("12345") is None and e164(None) is None


async def test_the_link_is_sent_and_a_lost_one_replaced(
    world: tuple[TestClient, Demo], smtp: tuple[Inbox, int], sms_gateway: tuple[list[Any], str],  # noqa: F811
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    client, demo = world
    inbox, _ = smtp
    sms, _ = sms_gateway
    csrf = await login(client, demo.users["doctor"].email)
    created = await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                json={"patient_id": demo.users["patient1"].id})
    visit = await created.json()
    assert created.status == 201 and sorted(visit["sent_via"]) == ["email", "sms"]
    await until(lambda: len(sms) == 1 and len(inbox.messages) == 1)
    # The profile's 0901234567, as the gateway wants it; the text has the link and no health data.
    assert sms[0]["to"] == "+84901234567" and visit["join_link"] in sms[0]["message"]
    assert demo.users["patient1"].display_name not in sms[0]["message"]
    assert inbox.messages[0]["To"] == demo.users["patient1"].email

    # The patient lost the SMS: a new link; the first one stops working, the new one works once.
    new = await client.post(f"/api/clinics/encounters/{visit['id']}/link", headers={"X-CSRF-Token": csrf})
    assert new.status == 201
    replacement = (await new.json())["join_link"]
    await until(lambda: len(sms) == 2)
    assert replacement in sms[1]["message"]
    phone = await aiohttp_client(client.server)
    assert (await phone.get(urlsplit(visit["join_link"]).path, allow_redirects=False)).status == 410
    assert (await phone.get(urlsplit(replacement).path, allow_redirects=False)).status == 302

    # A minor's link goes to the guardian's phone, never to an e-mail.
    child = await (await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                     json={"patient_id": demo.users["patient2"].id})).json()
    assert child["sent_via"] == ["sms"]
    await until(lambda: len(sms) == 3)
    assert sms[2]["to"] == "+84912345678"
    # A walk-in is already at the station: nothing is sent unless asked.
    walk_in = await (await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                       json={"patient_id": demo.users["patient1"].id, "walk_in": True})).json()
    assert walk_in["sent_via"] == []

    # A guest (a relative, an interpreter) invited with a phone number gets their own link by SMS.
    guest = await client.post(f"/api/clinics/encounters/{visit['id']}/guests", headers={"X-CSRF-Token": csrf},
                              json={"name": "Phạm Thị Hoa", "role": "family", "phone": "0933 111 222"})
    invited = await guest.json()
    assert guest.status == 201 and invited["sent_via"] == ["sms"]
    await until(lambda: len(sms) == 4)
    assert sms[3]["to"] == "+84933111222" and invited["join_link"] in sms[3]["message"]

    async with client.app[SESSIONS]() as db:
        sent = (await db.execute(select(AuditEvent.action, AuditEvent.outcome)
                                 .where(AuditEvent.action.like("clinic.join_link.send.%")))).all()
    assert sorted(sent) == sorted([("clinic.join_link.send.sms", Outcome.SUCCESS)] * 4
                                  + [("clinic.join_link.send.email", Outcome.SUCCESS)] * 2)


async def test_only_the_clinic_reissues_links(world: tuple[TestClient, Demo],
                                              aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    client, demo = world
    csrf = await login(client, demo.users["doctor"].email)
    visit = await (await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                     json={"patient_id": demo.users["patient1"].id})).json()
    patient = await aiohttp_client(client.server)
    patient_csrf = await login(patient, demo.users["patient1"].email)
    url = f"/api/clinics/encounters/{visit['id']}/link"
    assert (await patient.post(url, headers={"X-CSRF-Token": patient_csrf})).status == 403
    other = await aiohttp_client(client.server)
    other_csrf = await login(other, demo.users["patient2"].email)
    assert (await other.post(url, headers={"X-CSRF-Token": other_csrf})).status == 404
    await client.post(f"/api/clinics/encounters/{visit['id']}/end", headers={"X-CSRF-Token": csrf})
    assert (await client.post(url, headers={"X-CSRF-Token": csrf})).status == 409
