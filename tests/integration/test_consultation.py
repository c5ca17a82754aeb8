"""Hội chẩn between facilities: the request with consent, triage, scheduling, the room's members, the
conclusions, the versioned and signed minutes with their PDF — and who may see what."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from pypdf import PdfReader
from sqlalchemy import func, select

from clinics.demo import HOSPITAL_PEOPLE, HOSPITAL_SLUG
from server.auth.accounts import assign_role
from server.auth.models import Role, Tenant, User
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.records.documents.models import Document, DocumentKind
from tests.conftest import login
from tests.integration.fhir_support import World, start_app

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
QUESTIONS = ["Có cần chuyển tuyến không?", "Điều chỉnh thuốc hạ áp thế nào?"]
Clients = Callable[..., Awaitable[TestClient]]


class Party:
    """One logged-in browser: its client and CSRF token."""

    def __init__(self, client: TestClient, csrf: str) -> None:
        self.client, self.csrf = client, csrf

    async def call(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.request(method, url, headers={"X-CSRF-Token": self.csrf}, **kwargs)
        body = await response.json() if response.content_type == "application/json" else await response.read()
        return response.status, body


@pytest.fixture
async def world(aiohttp_client: Clients, tmp_path: Path, database_url: str) -> tuple[TestClient, World, Tenant]:
    client, w = await start_app(aiohttp_client, tmp_path, database_url)
    async with client.app[SESSIONS].begin() as db:
        hospital = await db.scalar(select(Tenant).where(Tenant.slug == HOSPITAL_SLUG))
        assert hospital is not None
        for _handle, email, *_rest in HOSPITAL_PEOPLE:
            user = await db.scalar(select(User).where(User.email == email))
            assert user is not None
            w.users[_handle] = user
        # A nurse of the hospital who takes no part: the patient's data stays out of her reach.
        nurse = w.users["other_admin"]
        await assign_role(db, nurse, hospital, Role.NURSE)
        w.users["hospital_nurse"] = nurse
    return client, w, hospital


async def party(aiohttp_client: Clients, client: TestClient, user: User) -> Party:
    browser = await aiohttp_client(client.server)
    return Party(browser, await login(browser, user.email))


def request_body(w: World, hospital: Tenant, **changes: Any) -> dict[str, Any]:
    return {"consulted_tenant_id": hospital.id, "department": "Khoa Nội tim mạch",
            "patient_id": w.users["patient1"].id, "urgency": "urgent",
            "reason": "Tăng huyết áp kháng trị", "history": "THA 10 năm, đã dùng 3 thuốc",
            "findings": "HA 180/100 mmHg", "questions": QUESTIONS, **changes}


async def denied(client: TestClient, action: str) -> int:
    async with client.app[SESSIONS]() as db:
        return int(await db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.outcome == Outcome.DENIED)) or 0)


async def test_hoi_chan_from_request_to_signed_minutes(world: tuple[TestClient, World, Tenant],
                                                       aiohttp_client: Clients) -> None:
    client, w, hospital = world
    station = await party(aiohttp_client, client, w.users["doctor"])
    chair = await party(aiohttp_client, client, w.users["hospital_doctor"])
    secretary = await party(aiohttp_client, client, w.users["hospital_secretary"])
    nurse = await party(aiohttp_client, client, w.users["nurse"])
    status, visit = await station.call("POST", f"/api/clinics/{w.facility.id}/encounters",
                                       json={"patient_id": w.users["patient1"].id})
    assert status == 201
    status, created = await station.call("POST", f"/api/clinics/{w.facility.id}/consultation-requests",
                                         json=request_body(w, hospital, encounter_id=visit["id"]))
    assert status == 201, created
    assert created["status"] == "requested"
    base = f"/api/clinics/consultation-requests/{created['id']}"

    # Triage at the hospital: the header only, never the patient.
    status, incoming = await chair.call("GET", f"/api/clinics/{hospital.id}/consultation-requests")
    assert status == 200 and [c["id"] for c in incoming["incoming"]] == [created["id"]]
    assert incoming["incoming"][0]["patient_name"] is None
    status, header = await chair.call("GET", base)
    assert status == 200 and header["full"] is False and "patient" not in header and "history" not in header
    assert header["reason"] == "Tăng huyết áp kháng trị" and header["may_triage"] is True
    assert (await chair.call("GET", f"{base}/attachments/x"))[0] == 404
    assert (await station.call("POST", f"{base}/accept"))[0] == 403  # the station does not accept its own
    assert (await chair.call("POST", f"{base}/accept"))[1]["status"] == "accepted"
    assert (await chair.call("POST", f"{base}/accept"))[0] == 409

    schedule = {"scheduled_start": "2026-12-01T09:00:00+07:00", "chair_id": w.users["hospital_doctor"].id,
                "secretary_id": w.users["hospital_secretary"].id, "member_ids": [w.users["nurse"].id]}
    status, scheduled = await chair.call("POST", f"{base}/schedule", json=schedule)
    assert status == 200 and scheduled["status"] == "scheduled", scheduled
    status, full = await chair.call("GET", base)
    assert full["full"] is True and full["my_role"] == "chair"
    assert full["patient"]["name"] == w.users["patient1"].display_name and full["history"].startswith("THA")
    assert [q["text"] for q in full["questions"]] == QUESTIONS
    assert {p["role"] for p in full["participants"]} == {"chair", "secretary", "member", "requester"}
    room = full["room"]
    assert room

    # The room admits exactly the participants, from both facilities.
    for member in (station, chair, secretary, nurse):
        status, token = await member.call("POST", f"/api/rooms/{room}/token")
        assert status == 200, token
    assert (await chair.call("POST", f"/api/rooms/{room}/token"))[1]["grants"]["room_admin"] is True
    for outsider in ("facility_admin", "patient1", "other_doctor", "hospital_nurse"):
        someone = await party(aiohttp_client, client, w.users[outsider])
        assert (await someone.call("POST", f"/api/rooms/{room}/token"))[0] == 404, outsider

    # Attachments: the documents module's limits; read by participants through the consultation.
    form = FormData()
    form.add_field("file", PNG, filename="ecg.png", content_type="image/png")
    status, attachment = await station.call("POST", f"{base}/attachments", data=form)
    assert status == 201, attachment
    fake = FormData()
    fake.add_field("file", b"MZ\x90\x00", filename="x.png", content_type="image/png")
    assert (await station.call("POST", f"{base}/attachments", data=fake))[0] == 415
    assert (await chair.call("POST", f"{base}/attachments", data=form))[0] == 403
    status, data = await secretary.call("GET", f"{base}/attachments/{attachment['id']}")
    assert status == 200 and data == PNG

    # The session and the conclusions: the chair only, every question answered.
    assert (await secretary.call("POST", f"{base}/start"))[1]["status"] == "in_session"
    answers = [{"question_id": q["id"], "conclusion": c}
               for q, c in zip(full["questions"], ["Chưa cần chuyển tuyến", "Thêm spironolacton 25 mg"], strict=True)]
    conclusion = {"answers": answers, "conclusion": "Tăng huyết áp kháng trị, chưa tổn thương cơ quan đích",
                  "diagnosis_icd10": "i10", "diagnosis_text": "Tăng huyết áp vô căn",
                  "management": "Theo dõi HA tại trạm mỗi tuần, hội chẩn lại sau 1 tháng"}
    assert (await secretary.call("PUT", f"{base}/conclusion", json=conclusion))[0] == 403
    status, error = await chair.call("PUT", f"{base}/conclusion", json={**conclusion, "answers": answers[:1]})
    assert status == 422 and error["error"]["code"] == "unanswered_question"
    status, error = await chair.call("PUT", f"{base}/conclusion", json={**conclusion, "diagnosis_icd10": "XYZ"})
    assert status == 400
    status, saved = await chair.call("PUT", f"{base}/conclusion", json=conclusion)
    assert status == 200 and saved["version"] == 1 and saved["status"] == "concluded", saved

    # Signatures bind a version: a change after the chair signed needs signing again.
    assert (await chair.call("POST", f"{base}/minutes/sign", json={"version": 1}))[1]["status"] == "concluded"
    answers[1]["conclusion"] = "Thêm spironolacton 25 mg buổi sáng"
    status, saved = await chair.call("PUT", f"{base}/conclusion", json={**conclusion, "answers": answers})
    assert saved["version"] == 2
    status, error = await secretary.call("POST", f"{base}/minutes/sign", json={"version": 1})
    assert status == 409 and error["error"]["code"] == "not_current_version"
    assert (await secretary.call("POST", f"{base}/minutes/sign", json={"version": 2}))[1]["status"] == "concluded"
    status, signed = await chair.call("POST", f"{base}/minutes/sign", json={"version": 2})
    assert status == 201 and signed["status"] == "signed"
    assert {s["role"] for s in signed["signatures"]} == {"chair", "secretary"}
    assert (await chair.call("POST", f"{base}/minutes/sign", json={"version": 2}))[0] == 409  # once
    assert (await chair.call("PUT", f"{base}/conclusion", json=conclusion))[0] == 409  # closed
    assert (await nurse.call("POST", f"{base}/minutes/sign", json={"version": 2}))[0] == 201  # a member may too

    status, minutes = await station.call("GET", f"{base}/minutes")
    assert status == 200 and minutes["version"] == 2 and minutes["status"] == "signed"
    assert minutes["signed_by_me"] is False  # the station doctor did not sign
    assert minutes["minutes"]["questions"][1]["conclusion"] == "Thêm spironolacton 25 mg buổi sáng"
    assert minutes["minutes"]["chair"]["name"] == w.users["hospital_doctor"].display_name
    assert minutes["minutes"]["diagnosis"] == {"icd10": "I10", "text": "Tăng huyết áp vô căn"}
    response = await secretary.client.get(f"{base}/minutes.pdf")
    assert response.status == 200 and response.content_type == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(await response.read())).pages)
    assert "BIÊN BẢN HỘI CHẨN" in text and "Thêm spironolacton 25 mg buổi sáng" in text
    assert "Trần Minh Khoa" in text and "Chủ trì" in text
    assert "Lý Thu Hà (Thư ký) —" in text  # the signatures, roles in Vietnamese

    # Stored in the patient's record at the station, linked to the visit; the call is closed.
    async with client.app[SESSIONS]() as db:
        document = await db.get(Document, minutes["document_id"])
    assert document is not None and document.kind == DocumentKind.MINUTES
    assert (document.tenant_id, document.subject_id, document.context_type, document.context_id) == (
        w.facility.id, w.users["patient1"].id, "encounter", visit["id"])
    status, error = await chair.call("POST", f"/api/rooms/{room}/token")
    assert status == 403 and error["error"]["code"] == "consultation_not_open"


async def test_outsiders_get_404_and_are_audited(world: tuple[TestClient, World, Tenant],
                                                 aiohttp_client: Clients) -> None:
    client, w, hospital = world
    station = await party(aiohttp_client, client, w.users["doctor"])
    chair = await party(aiohttp_client, client, w.users["hospital_doctor"])
    status, created = await station.call("POST", f"/api/clinics/{w.facility.id}/consultation-requests",
                                         json=request_body(w, hospital))
    base = f"/api/clinics/consultation-requests/{created['id']}"
    await chair.call("POST", f"{base}/accept")
    await chair.call("POST", f"{base}/schedule", json={
        "scheduled_start": "2026-12-01T09:00:00+07:00", "chair_id": w.users["hospital_doctor"].id,
        "secretary_id": w.users["hospital_secretary"].id})
    form = FormData()
    form.add_field("file", PNG, filename="ecg.png", content_type="image/png")
    attachment = (await station.call("POST", f"{base}/attachments", data=form))[1]

    before = await denied(client, "clinic.consultation.read")
    for outsider in ("other_doctor", "other_admin", "patient1", "patient3", "hospital_nurse", "teacher"):
        someone = await party(aiohttp_client, client, w.users[outsider])
        for url in (base, f"{base}/minutes", f"{base}/attachments/{attachment['id']}", f"{base}/people"):
            assert (await someone.call("GET", url))[0] == 404, (outsider, url)
        assert (await someone.call("POST", f"{base}/start"))[0] == 404, outsider
        # Who may comes before what was sent: an empty body from an outsider is still 404.
        for method, url in (("POST", f"{base}/decline"), ("POST", f"{base}/schedule"),
                            ("PUT", f"{base}/conclusion"), ("POST", f"{base}/minutes/sign")):
            assert (await someone.call(method, url, json={}))[0] == 404, (outsider, url)
        page = await someone.client.get(f"/consultation/{created['id']}")
        assert page.status == 404, outsider
    assert await denied(client, "clinic.consultation.read") == before + 6
    # The hospital's nurse is staff there, but sees no incoming request she takes no part in.
    nurse = await party(aiohttp_client, client, w.users["hospital_nurse"])
    status, listing = await nurse.call("GET", f"/api/clinics/{hospital.id}/consultation-requests")
    assert status == 200 and listing["incoming"] == []
    # Tenants stay apart: the other facility's staff cannot list the station's consultations.
    other = await party(aiohttp_client, client, w.users["other_doctor"])
    assert (await other.call("GET", f"/api/clinics/{w.facility.id}/consultation-requests"))[0] == 404
    assert (await other.call("POST", f"/api/clinics/{w.facility.id}/consultation-requests",
                             json=request_body(w, hospital)))[0] == 404
    anonymous = await aiohttp_client(client.server)
    assert (await anonymous.get(base)).status == 401
    # The station's own staff see it (their patient), the hospital's chair too (a participant).
    assert (await station.call("GET", f"{base}/attachments/{attachment['id']}"))[0] == 200
    assert (await chair.call("GET", f"{base}/attachments/{attachment['id']}"))[0] == 200
    assert (await station.client.get(f"/consultation/{created['id']}")).status == 200


async def test_request_validation_and_consent(world: tuple[TestClient, World, Tenant],
                                              aiohttp_client: Clients) -> None:
    client, w, hospital = world
    station = await party(aiohttp_client, client, w.users["nurse"])
    url = f"/api/clinics/{w.facility.id}/consultation-requests"

    async def refused(body: dict[str, Any]) -> tuple[int, str]:
        status, error = await station.call("POST", url, json=body)
        return status, error["error"]["code"]

    assert await refused(request_body(w, hospital, questions=[])) == (400, "invalid_body")
    assert await refused(request_body(w, hospital, questions=["  "])) == (400, "invalid_body")
    assert await refused(request_body(w, hospital, urgency="soon")) == (400, "invalid_body")
    assert await refused(request_body(w, hospital, extra=1)) == (400, "invalid_body")
    assert await refused(request_body(w, hospital, consulted_tenant_id=w.facility.id)) == (422, "invalid_facility")
    assert await refused(request_body(w, hospital, consulted_tenant_id=w.school.id)) == (422, "invalid_facility")
    # The other facility has announced no telemedicine: it cannot be asked.
    assert await refused(request_body(w, hospital, consulted_tenant_id=w.other.id)) == (422, "invalid_facility")
    assert await refused(request_body(w, hospital, patient_id=w.users["patient3"].id)) == (422, "invalid_patient")
    assert await refused(request_body(w, hospital, encounter_id="nope")) == (422, "invalid_encounter")
    # patient2 has not agreed to share her data for a consultation.
    assert await refused(request_body(w, hospital, patient_id=w.users["patient2"].id)) == (409, "consent_required")

    status, created = await station.call("POST", url, json=request_body(w, hospital))
    assert status == 201
    base = f"/api/clinics/consultation-requests/{created['id']}"
    chair = await party(aiohttp_client, client, w.users["hospital_doctor"])
    assert (await chair.call("POST", f"{base}/schedule", json={
        "scheduled_start": "2026-12-01T09:00:00+07:00", "chair_id": w.users["hospital_doctor"].id,
        "secretary_id": w.users["hospital_secretary"].id}))[0] == 409  # not accepted yet
    assert (await chair.call("POST", f"{base}/decline", json={}))[0] == 400
    status, declined = await chair.call("POST", f"{base}/decline", json={"reason": "Chuyên khoa không phù hợp"})
    assert status == 200 and declined["status"] == "declined"
    assert (await chair.call("POST", f"{base}/accept"))[0] == 409
    status, seen = await station.call("GET", base)
    assert seen["decline_reason"] == "Chuyên khoa không phù hợp" and seen["room"] is None

    status, created = await station.call("POST", url, json=request_body(w, hospital))
    base = f"/api/clinics/consultation-requests/{created['id']}"
    await chair.call("POST", f"{base}/accept")
    start = "2026-12-01T09:00:00+07:00"
    for body, code in (
        ({"chair_id": w.users["doctor"].id, "secretary_id": w.users["hospital_secretary"].id}, "invalid_chair"),
        ({"chair_id": w.users["hospital_doctor"].id, "secretary_id": w.users["hospital_doctor"].id},
         "invalid_secretary"),
        ({"chair_id": w.users["hospital_doctor"].id, "secretary_id": w.users["other_doctor"].id},
         "invalid_secretary"),
        ({"chair_id": w.users["hospital_doctor"].id, "secretary_id": w.users["nurse"].id,
          "member_ids": [w.users["patient1"].id]}, "invalid_member"),
    ):
        status, error = await chair.call("POST", f"{base}/schedule", json={"scheduled_start": start, **body})
        assert (status, error["error"]["code"]) == (422, code)
    status, error = await chair.call("POST", f"{base}/schedule", json={
        "scheduled_start": "2026-12-01T09:00:00", "chair_id": w.users["hospital_doctor"].id,
        "secretary_id": w.users["nurse"].id})
    assert status == 400  # a time without its zone
    # Before the schedule the triage doctor is no participant: no minutes to sign, nothing to see.
    assert (await chair.call("POST", f"{base}/minutes/sign", json={"version": 1}))[0] == 404
