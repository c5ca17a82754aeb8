"""Consent: explicit, per purpose, withdrawable, with evidence; guardian and child for minors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent
from tests.conftest import login, page_csrf


async def visit_for(client: TestClient, demo: Demo, patient: str,
                    aiohttp_client: Callable[..., Awaitable[TestClient]]) -> tuple[TestClient, str, str]:
    """(the patient's browser after the join link, its CSRF token, the encounter id)."""
    csrf = await login(client, demo.users["doctor"].email)
    visit = await (await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                     json={"patient_id": demo.users[patient].id})).json()
    phone = await aiohttp_client(client.server)
    await phone.get(urlsplit(visit["join_link"]).path)
    return phone, await page_csrf(phone, "/rooms"), visit["id"]


async def test_adult_consent_is_explicit_versioned_and_withdrawable(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    phone, csrf, encounter = await visit_for(client, demo, "patient1", aiohttp_client)
    status = await (await phone.get(f"/api/clinics/encounters/{encounter}/consent")).json()
    assert status["given"] is False and status["needs_guardian"] is False
    assert status["text"]["title"] == "Đồng ý khám bệnh từ xa" and "rút lại" in status["text"]["body"]
    url = f"/api/clinics/encounters/{encounter}/consent"
    base = {"purpose": "remote_examination", "language": "vi"}
    stale = await phone.post(url, headers={"X-CSRF-Token": csrf}, json={**base, "text_version": 99, "accepted": True})
    assert stale.status == 409 and (await stale.json())["error"]["code"] == "text_changed"
    implied = await phone.post(url, headers={"X-CSRF-Token": csrf}, json={**base, "text_version": 1})
    assert implied.status == 400  # no "accepted": silence is not consent
    refused = await (await phone.post(url, headers={"X-CSRF-Token": csrf},
                                      json={**base, "text_version": 1, "accepted": False})).json()
    assert refused["accepted"] is False
    arrive = f"/api/clinics/encounters/{encounter}/arrive"
    assert (await phone.post(arrive, headers={"X-CSRF-Token": csrf})).status == 409
    given = await (await phone.post(url, headers={"X-CSRF-Token": csrf},
                                    json={**base, "text_version": 1, "accepted": True})).json()
    assert given["decided_as"] == "patient" and len(given["text_sha256"]) == 64
    assert (await phone.post(arrive, headers={"X-CSRF-Token": csrf})).status == 200

    withdrawn = await phone.post(f"/api/clinics/consents/{given['id']}/withdraw", headers={"X-CSRF-Token": csrf})
    assert (await withdrawn.json())["withdrawn_at"] is not None
    status = await (await phone.get(f"/api/clinics/encounters/{encounter}/consent")).json()
    assert status["given"] is False
    async with client.app[SESSIONS]() as db:
        actions = (await db.execute(select(AuditEvent.action).where(AuditEvent.action.like("clinic.consent.%"))
                                    .order_by(AuditEvent.at))).scalars().all()
    assert actions == ["clinic.consent.refuse", "clinic.consent.accept", "clinic.consent.withdraw"]

    stranger = await aiohttp_client(client.server)
    stranger_csrf = await login(stranger, demo.users["patient2"].email)
    assert (await stranger.get(f"/api/clinics/encounters/{encounter}/consent")).status == 404
    assert (await stranger.post(f"/api/clinics/consents/{given['id']}/withdraw",
                                headers={"X-CSRF-Token": stranger_csrf})).status == 404


async def test_a_child_needs_a_guardian_and_her_own_assent(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    phone, csrf, encounter = await visit_for(client, demo, "patient2", aiohttp_client)  # born 2016
    status = await (await phone.get(f"/api/clinics/encounters/{encounter}/consent")).json()
    assert status["needs_guardian"] is True and status["needs_child_assent"] is True
    assert status["guardian_name"] == "Võ Văn Em"
    url = f"/api/clinics/encounters/{encounter}/consent"
    base = {"purpose": "remote_examination", "language": "vi", "text_version": 1, "accepted": True}
    no_guardian = await phone.post(url, headers={"X-CSRF-Token": csrf}, json=base)
    assert (await no_guardian.json())["error"]["code"] == "guardian_required"
    no_child = await phone.post(url, headers={"X-CSRF-Token": csrf}, json={**base, "guardian_name": "Võ Văn Em"})
    assert (await no_child.json())["error"]["code"] == "child_assent_required"
    both = await (await phone.post(url, headers={"X-CSRF-Token": csrf},
                                   json={**base, "guardian_name": "Võ Văn Em", "child_assent": True})).json()
    assert both["decided_as"] == "guardian" and both["child_assent"] is True
