"""The visit record's pages (clinics/record_pages.py): who may open which page, what the doctor's
record page and the patient's summary show, and that every refusal is a 404 in the audit log.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.app import create_app
from server.auth.accounts import assign_role, create_user
from server.auth.models import Role, Tenant, TenantKind
from server.auth.passwords import hash_password
from server.db.base import utcnow
from server.demo import DEMO_PASSWORD, Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.scheduling.models import Resource
from tests.conftest import login, make_settings, page_csrf, seed
from tests.integration.test_visit_record import RECORD
from tests.integration.test_visits import give_consent

Client = Callable[..., Awaitable[TestClient]]


@dataclass
class Visit:
    server: TestClient  # the doctor's browser
    demo: Demo
    doctor_csrf: str
    patient: TestClient  # the patient's phone, logged in by the join link
    patient_csrf: str
    id: str
    room: str


@pytest.fixture
async def visit(aiohttp_client: Client, tmp_path: Path, database_url: str) -> Visit:
    """A visit of patient1 with the doctor, consented to and admitted (the call is on), plus a second
    facility with its own doctor and patient."""
    doctor = await aiohttp_client(create_app(make_settings(tmp_path, database_url)))
    demo = await seed(doctor.app)
    async with doctor.app[SESSIONS].begin() as db:
        other = Tenant(kind=TenantKind.FACILITY, name="Trạm Y tế xã Khác", slug="tyt-khac")
        db.add(other)
        await db.flush()
        for handle, email, role in (("other_doctor", "bacsi@khac.demo", Role.DOCTOR),
                                    ("patient3", "benhnhan3@khac.demo", Role.PATIENT)):
            user = await create_user(db, email=email, display_name=handle,
                                     password_hash=hash_password(DEMO_PASSWORD))
            await assign_role(db, user, other, role)
            demo.users[handle] = user
    csrf = await login(doctor, demo.users["doctor"].email)
    created = await (await doctor.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                       json={"patient_id": demo.users["patient1"].id, "send_link": False})).json()
    phone = await aiohttp_client(doctor.server)
    await phone.get(urlsplit(created["join_link"]).path)
    phone_csrf = await page_csrf(phone, "/rooms")
    await give_consent(phone, phone_csrf, created["id"])
    assert (await phone.post(f"/api/clinics/encounters/{created['id']}/arrive",
                             headers={"X-CSRF-Token": phone_csrf})).status == 200
    assert (await doctor.post(f"/api/clinics/encounters/{created['id']}/admit",
                              headers={"X-CSRF-Token": csrf})).status == 200
    return Visit(doctor, demo, csrf, phone, phone_csrf, created["id"], created["room"])


async def browser_of(aiohttp_client: Client, visit: Visit, handle: str | None) -> TestClient:
    browser = await aiohttp_client(visit.server.server)
    if handle is not None:
        await login(browser, visit.demo.users[handle].email)
    return browser


async def denials(visit: Visit, action: str) -> int:
    async with visit.server.app[SESSIONS]() as db:
        rows = (await db.execute(select(AuditEvent).where(AuditEvent.action == action,
                                                          AuditEvent.outcome == Outcome.DENIED,
                                                          AuditEvent.target_id == visit.id))).scalars().all()
    return len(rows)


async def status_of(client: TestClient, path: str) -> int:
    return (await client.get(path, allow_redirects=False)).status


async def test_who_opens_which_page(visit: Visit, aiohttp_client: Client) -> None:
    record, call = f"/clinic/encounters/{visit.id}/record", f"/clinic/encounters/{visit.id}/call"
    patient_call, summary = f"/visit/{visit.id}/call", f"/visit/{visit.id}/summary"
    other_doctor = await browser_of(aiohttp_client, visit, "other_doctor")
    other_patient = await browser_of(aiohttp_client, visit, "patient2")  # same facility, not their visit
    far_patient = await browser_of(aiohttp_client, visit, "patient3")  # another facility
    anonymous = await browser_of(aiohttp_client, visit, None)
    expected = {
        # page: (the doctor, another facility's doctor, the patient, another patient, a far patient)
        record: (200, 404, 404, 404, 404),
        call: (200, 404, 404, 404, 404),
        patient_call: (404, 404, 200, 404, 404),
        summary: (200, 404, 200, 404, 404),
    }
    for path, statuses in expected.items():
        got = tuple([await status_of(c, path) for c in (visit.server, other_doctor, visit.patient, other_patient,
                                                         far_patient)])
        assert got == statuses, path
        redirect = await anonymous.get(path, allow_redirects=False)
        assert redirect.status == 302 and redirect.headers["Location"] == f"/login?next={path}", path
    # Every refusal is in the audit log (three strangers per page; the patient's call page also
    # refused the doctor, the doctor's pages also refused the patient).
    assert await denials(visit, "clinic.record.page") == 4
    assert await denials(visit, "clinic.call.page") == 4
    assert await denials(visit, "clinic.visit.view") == 4
    assert await denials(visit, "clinic.summary.view") == 3
    assert await status_of(visit.server, "/clinic/encounters/no-such-visit/record") == 404


async def test_record_page_shows_the_identity_to_check_and_the_consent(visit: Visit) -> None:
    page = await (await visit.server.get(f"/clinic/encounters/{visit.id}/record")).text()
    assert "Phạm Văn Cường" in page and "14/03/1956" in page  # name and date of birth from the profile
    assert "093056000123" in page and "HT3920930561234" in page  # CCCD and BHYT to compare with the card
    assert 'id="consent-on-record"' in page and "Đã có đồng ý khám từ xa" in page
    assert 'data-can-write="true"' in page and 'data-list-verified="21"' in page
    assert f'href="/clinic/encounters/{visit.id}/call"' in page  # the call is on: join it beside the record
    call = await (await visit.server.get(f"/clinic/encounters/{visit.id}/call")).text()
    assert f'data-room="{visit.room}"' in call and 'id="record-form"' in call  # the call and the record
    async with visit.server.app[SESSIONS]() as db:
        audited = (await db.execute(select(AuditEvent.action).where(AuditEvent.target_id == visit.id,
                                                                    AuditEvent.outcome == Outcome.SUCCESS))).scalars()
        assert {"clinic.record.page", "clinic.call.page"} <= set(audited)


async def book_follow_up(visit: Visit, patient: str) -> str:
    async with visit.server.app[SESSIONS]() as db:
        resource = await db.scalar(select(Resource).where(Resource.user_id == visit.demo.users["doctor"].id))
    assert resource is not None
    start, end = utcnow() + timedelta(days=1), utcnow() + timedelta(days=9)
    slots = await (await visit.server.get(f"/api/scheduling/resources/{resource.id}/slots",
                                          params={"from": start.isoformat(), "to": end.isoformat()})).json()
    free = next(s for s in slots["slots"] if s["free"])
    booked = await visit.server.post(f"/api/scheduling/resources/{resource.id}/bookings",
                                     headers={"X-CSRF-Token": visit.doctor_csrf},
                                     json={"start": free["start"], "subject_user_id": visit.demo.users[patient].id})
    assert booked.status == 201, await booked.text()
    booking_id: str = (await booked.json())["id"]
    return booking_id


async def save(visit: Visit, record: dict[str, object]) -> dict[str, object]:
    saved = await visit.server.put(f"/api/clinics/encounters/{visit.id}/record",
                                   headers={"X-CSRF-Token": visit.doctor_csrf}, json=record)
    assert saved.status == 200, await saved.text()
    result: dict[str, object] = await saved.json()
    return result


async def test_the_patient_sees_the_summary_once_the_visit_has_ended(visit: Visit) -> None:
    record = copy.deepcopy(RECORD)
    record["diagnoses"] = [{"icd10": "J45.0", "text": "Hen phế quản", "primary": True},
                           {"icd10": "J00", "text": "", "primary": False}]
    record["follow_up"] = {"booking_id": await book_follow_up(visit, "patient1"), "note": "Mang theo sổ đo HA"}
    saved = await save(visit, record)
    assert (await visit.server.post(f"/api/records/documents/{saved['document_id']}/versions/1/sign",
                                    headers={"X-CSRF-Token": visit.doctor_csrf})).status == 201
    summary = f"/visit/{visit.id}/summary"

    before = await (await visit.patient.get(summary)).text()
    assert 'id="summary-wait"' in before and "Amlodipin" not in before  # not before the visit has ended
    assert await status_of(visit.patient, f"/visit/{visit.id}/call") == 200  # still in the call
    assert (await visit.server.post(f"/api/clinics/encounters/{visit.id}/end",
                                    headers={"X-CSRF-Token": visit.doctor_csrf})).status == 200

    page = await (await visit.patient.get(summary)).text()
    assert "Hen phế quản" in page and "J45.0" in page  # the diagnosis in plain words, and its code
    assert "Viêm mũi họng cấp tính" in page  # no words written for J00: the Thông tư 30 list's name
    assert "Dùng thuốc, đo HA mỗi sáng" in page  # what to do (the plan)
    assert "Amlodipin 5 mg" in page and "1 viên, sáng, trong 14 ngày" in page and "79001A1B2C3D-c" in page
    assert 'id="follow-up-date"' in page and "Mang theo sổ đo HA" in page
    assert f'href="/api/clinics/encounters/{visit.id}/record.pdf"' in page
    assert "Đã ký: BS. Nguyễn Văn An" in page
    # The visit is over: the call page and the waiting page lead to the summary.
    moved = await visit.patient.get(f"/visit/{visit.id}/call", allow_redirects=False)
    assert moved.status == 302 and moved.headers["Location"] == summary
    assert 'data-status="finished"' in await (await visit.patient.get(f"/visit/{visit.id}")).text()
    moved = await visit.server.get(f"/clinic/encounters/{visit.id}/call", allow_redirects=False)
    assert moved.status == 302 and moved.headers["Location"] == f"/clinic/encounters/{visit.id}/record"


async def test_a_follow_up_of_someone_else_is_not_shown(visit: Visit) -> None:
    """The booking id comes from the record's JSON: a booking of another patient never reaches this
    patient's summary, even if a record names it."""
    record = copy.deepcopy(RECORD)
    record["follow_up"] = {"booking_id": await book_follow_up(visit, "patient2"), "note": ""}
    await save(visit, record)
    await visit.server.post(f"/api/clinics/encounters/{visit.id}/end", headers={"X-CSRF-Token": visit.doctor_csrf})
    page = await (await visit.patient.get(f"/visit/{visit.id}/summary")).text()
    assert 'id="follow-up-date"' not in page and "Chưa hẹn lần khám tiếp theo" in page


async def test_a_summary_without_a_record_says_so(visit: Visit) -> None:
    await visit.server.post(f"/api/clinics/encounters/{visit.id}/end", headers={"X-CSRF-Token": visit.doctor_csrf})
    page = await (await visit.patient.get(f"/visit/{visit.id}/summary")).text()
    assert 'id="summary-wait"' in page and 'id="summary-pdf"' not in page
