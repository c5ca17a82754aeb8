"""Clinics over HTTP: patients with validated identifiers, facility profiles and the telemedicine
announcement, effective-dated parents, and the Thông tư 30 eligibility check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.auth.accounts import assign_role, create_user
from server.auth.models import Role, Tenant, TenantKind
from server.demo import DEMO_PASSWORD, Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.rooms.access import rooms_of
from tests.conftest import login

ADULT = {"display_name": "Trần Văn Tám", "birth_date": "1970-05-20", "sex": "male", "phone": "0987654321",
         "address": "xã Tân Phú Thạnh", "cccd": "001070123456", "bhyt": "0123456789"}


async def test_register_search_and_read_patients(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    csrf = await login(client, demo.users["nurse"].email)
    url = f"/api/clinics/{demo.facility.id}/patients"
    created = await client.post(url, headers={"X-CSRF-Token": csrf}, json=ADULT)
    assert created.status == 201, await created.text()
    patient = await created.json()
    assert patient["cccd"] == "001070123456" and patient["bhyt"] == "0123456789" and patient["guardian"] is None

    again = await client.post(url, headers={"X-CSRF-Token": csrf}, json={**ADULT, "display_name": "Trùng"})
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_registered"
    for bad, field in [({"cccd": "12345"}, "12 digits"), ({"cccd": "001080123456"}, "born in 1980"),
                       ({"bhyt": "XX9"}, "health-insurance"), ({"birth_date": "2999-01-01"}, "past")]:
        response = await client.post(url, headers={"X-CSRF-Token": csrf}, json={**ADULT, **bad})
        assert response.status == 400, bad
        assert field in (await response.json())["error"]["message"], bad
    child = {"display_name": "Bé Na", "birth_date": "2019-02-01", "sex": "female"}
    refused = await client.post(url, headers={"X-CSRF-Token": csrf}, json=child)
    assert refused.status == 400 and "guardian" in (await refused.json())["error"]["message"]
    guarded = await client.post(url, headers={"X-CSRF-Token": csrf}, json={
        **child, "guardian": {"name": "Nguyễn Thị Mẹ", "phone": "0911222333", "relationship": "mẹ"}})
    assert guarded.status == 201

    for q in ("001070123456", "0123456789", "Tám", "0987654321"):
        found = await (await client.get(url, params={"q": q})).json()
        assert [p["id"] for p in found["patients"]] == [patient["id"]], q
    assert (await client.get(f"{url}/{patient['id']}")).status == 200

    # The patient reads their own record; another patient and another tenant get 404.
    other = await aiohttp_client(client.server)
    await login(other, demo.users["patient1"].email)
    assert (await other.get(f"{url}/{demo.users['patient1'].id}")).status == 200
    assert (await other.get(f"{url}/{patient['id']}")).status == 404
    assert (await other.get(url)).status == 404
    teacher = await aiohttp_client(client.server)
    await login(teacher, demo.users["teacher"].email)
    assert (await teacher.get(f"{url}/{patient['id']}")).status == 404
    async with client.app[SESSIONS]() as db:
        denied = (await db.execute(select(AuditEvent.action).where(AuditEvent.outcome == Outcome.DENIED))).scalars()
        assert sorted(denied) == ["clinic.patient.read", "clinic.patient.read", "clinic.patient.search"]


async def test_consultations_need_the_telemedicine_announcement(client: TestClient, demo: Demo) -> None:
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    profile_url = f"/api/clinics/{demo.facility.id}/profile"
    assert (await (await client.get(profile_url)).json())["telemedicine_enabled"] is True  # the demo announced it
    no_reference = await client.put(profile_url, headers={"X-CSRF-Token": admin_csrf},
                                    json={"level": "commune_station", "telemedicine_enabled": True})
    assert no_reference.status == 400 and "Decree 96/2023" in (await no_reference.json())["error"]["message"]
    off = await client.put(profile_url, headers={"X-CSRF-Token": admin_csrf},
                           json={"level": "commune_station", "telemedicine_enabled": False})
    assert off.status == 200

    csrf = await login(client, demo.users["doctor"].email)
    async with client.app[SESSIONS]() as db:
        room = (await rooms_of(db, demo.users["patient1"].id))[0][0].name
    refused = await client.post(f"/api/rooms/{room}/token", headers={"X-CSRF-Token": csrf})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "telemedicine_not_enabled"
    assert (await client.put(profile_url, headers={"X-CSRF-Token": csrf}, json={"level": "clinic"})).status == 404

    admin_csrf = await login(client, demo.users["facility_admin"].email)
    await client.put(profile_url, headers={"X-CSRF-Token": admin_csrf},
                     json={"level": "commune_station", "telemedicine_enabled": True,
                           "eligibility_reference": "Số 12/TB-SYT", "eligibility_date": "2025-08-01"})
    csrf = await login(client, demo.users["doctor"].email)
    assert (await client.post(f"/api/rooms/{room}/token", headers={"X-CSRF-Token": csrf})).status == 200


async def test_parents_are_effective_dated(client: TestClient, demo: Demo) -> None:
    async with client.app[SESSIONS].begin() as db:
        platform = Tenant(kind=TenantKind.PLATFORM, name="Sở Y tế", slug="platform")
        old_parent = Tenant(kind=TenantKind.FACILITY, name="TTYT huyện Phụng Hiệp", slug="ttyt-ph")
        new_parent = Tenant(kind=TenantKind.FACILITY, name="Bệnh viện Đa khoa TP. Cần Thơ", slug="bvdk-ct")
        db.add_all([platform, old_parent, new_parent])
        await db.flush()
        admin = await create_user(db, email="admin@soyte.demo", display_name="Quản trị Sở", password=DEMO_PASSWORD)
        await assign_role(db, admin, platform, Role.PLATFORM_ADMIN)
        ids = (old_parent.id, new_parent.id)
    csrf = await login(client, "admin@soyte.demo")
    url = f"/api/clinics/{demo.facility.id}/parents"
    assert (await client.post(url, headers={"X-CSRF-Token": csrf},
                              json={"parent_id": ids[0], "valid_from": "2020-01-01"})).status == 201
    # 1 July 2025: no more district level; the station now reports to the city's hospital.
    assert (await client.post(url, headers={"X-CSRF-Token": csrf},
                              json={"parent_id": ids[1], "valid_from": "2025-07-01"})).status == 201
    late = await client.post(url, headers={"X-CSRF-Token": csrf},
                             json={"parent_id": ids[0], "valid_from": "2024-01-01"})
    assert late.status == 409
    assert (await client.post(url, headers={"X-CSRF-Token": csrf},
                              json={"parent_id": demo.school.id, "valid_from": "2026-01-01"})).status == 422
    before = await (await client.get(url, params={"at": "2024-12-31"})).json()
    after = await (await client.get(url, params={"at": str(date(2025, 7, 1))})).json()
    assert (before["parent_id"], after["parent_id"]) == ids
    assert [h["valid_until"] for h in after["history"]] == ["2025-07-01", None]
    # A facility admin cannot re-parent.
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    assert (await client.post(url, headers={"X-CSRF-Token": admin_csrf},
                              json={"parent_id": ids[0], "valid_from": "2027-01-01"})).status == 404


async def test_eligibility_check_is_honest_and_audited(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["doctor"].email)
    url = f"/api/clinics/{demo.facility.id}/eligibility"
    yes = await (await client.post(url, headers={"X-CSRF-Token": csrf},
                                   json={"icd10": "I10", "patient_id": demo.users["patient1"].id})).json()
    assert yes["verdict"] == "eligible" and yes["condition"]["name"] == "Tăng huyết áp"
    unknown = await (await client.post(url, headers={"X-CSRF-Token": csrf}, json={"icd10": "J45.0"})).json()
    assert unknown["verdict"] == "not_on_verified_list"
    assert unknown["alternatives"] == ["referral", "in_person_booking"]
    assert unknown["list"]["complete"] is False
    assert (await client.post(url, headers={"X-CSRF-Token": csrf}, json={"icd10": "hen"})).status == 400
    patient_csrf = await login(client, demo.users["patient1"].email)
    assert (await client.post(url, headers={"X-CSRF-Token": patient_csrf}, json={"icd10": "I10"})).status == 404
    async with client.app[SESSIONS]() as db:
        actions = sorted((await db.execute(select(AuditEvent.action).where(
            AuditEvent.action.like("clinic.eligibility.%")))).scalars())
    assert actions == ["clinic.eligibility.check", "clinic.eligibility.eligible",
                       "clinic.eligibility.not_on_verified_list"]
