"""The station's shared device over HTTP: walk-ins in arrival order, consent taken by a nurse as
witness (same rules as the patient's own path, with a signed witness statement and a scan as evidence),
assisted sessions (the nurse's room token only in progress and only for that visit), and who may."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from clinics.models import ConsentRecord, Encounter
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.records.documents.models import Document, DocumentVersion, Signature
from tests.conftest import login
from tests.integration.fhir_support import World, start_app

Clients = Callable[..., Awaitable[TestClient]]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def world(aiohttp_client: Clients, tmp_path: Path, database_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, database_url)


async def as_user(aiohttp_client: Clients, client: TestClient, email: str) -> tuple[TestClient, str]:
    browser = await aiohttp_client(client.server)
    return browser, await login(browser, email)


async def register(nurse: TestClient, csrf: str, tenant: str, **fields: object) -> dict[str, object]:
    body = {"display_name": "Lâm Văn Tư", "birth_date": "1970-05-06", "sex": "male", "cccd": "093070001234",
            **fields}
    response = await nurse.post(f"/api/clinics/{tenant}/patients", headers={"X-CSRF-Token": csrf}, json=body)
    assert response.status == 201, await response.text()
    result: dict[str, object] = await response.json()
    return result


async def walk_in(nurse: TestClient, csrf: str, world: World, patient_id: object) -> dict[str, object]:
    response = await nurse.post(f"/api/clinics/{world.facility.id}/station/walk-ins", headers={"X-CSRF-Token": csrf},
                                json={"patient_id": patient_id, "practitioner_id": world.users["doctor"].id})
    assert response.status == 201, await response.text()
    result: dict[str, object] = await response.json()
    return result


def decision(**extra: object) -> dict[str, object]:
    return {"purpose": "remote_examination", "text_version": 1, "language": "vi", "accepted": True,
            "decided_by": "patient", "decider_name": "Lâm Văn Tư", "method": "verbal", **extra}


async def test_walk_ins_queue_in_arrival_order_after_consent_taken_by_the_nurse(
    world: tuple[TestClient, World], aiohttp_client: Clients
) -> None:
    client, w = world
    nurse, csrf = await as_user(aiohttp_client, client, w.users["nurse"].email)
    first = await register(nurse, csrf, w.facility.id)
    second = await register(nurse, csrf, w.facility.id, display_name="Đào Thị Năm", sex="female",
                            birth_date="1985-01-02", cccd="093185004321")
    visit_a = await walk_in(nurse, csrf, w, first["id"])
    visit_b = await walk_in(nurse, csrf, w, second["id"])
    assert visit_a["status"] == "planned" and visit_a["walk_in"] is True  # not in the queue before consent
    again = await nurse.post(f"/api/clinics/{w.facility.id}/station/walk-ins", headers={"X-CSRF-Token": csrf},
                             json={"patient_id": first["id"], "practitioner_id": w.users["doctor"].id})
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_in_queue"
    no_doctor = await nurse.post(f"/api/clinics/{w.facility.id}/station/walk-ins", headers={"X-CSRF-Token": csrf},
                                 json={"patient_id": first["id"], "practitioner_id": w.users["nurse"].id})
    assert no_doctor.status == 422

    # The nurse reads the text out; B agrees first, A second: the queue keeps the order they walked in.
    for visit, name in ((visit_b, "Đào Thị Năm"), (visit_a, "Lâm Văn Tư")):
        url = f"/api/clinics/encounters/{visit['id']}/consent/witness"
        status = await (await nurse.get(url)).json()
        assert status["given"] is False and status["text"]["version"] == 1 and status["patient_name"] == name
        given = await nurse.post(url, headers={"X-CSRF-Token": csrf}, json=decision(decider_name=name))
        assert given.status == 201, await given.text()
        record = await given.json()
        assert record["decided_as"] == "witness_patient" and record["witnessed_by"] == w.users["nurse"].id
        arrived = await nurse.post(f"/api/clinics/encounters/{visit['id']}/arrive", headers={"X-CSRF-Token": csrf})
        assert arrived.status == 200, await arrived.text()

    state = await (await nurse.get(f"/api/clinics/{w.facility.id}/station")).json()
    mine = [v for v in state["visits"] if v["walk_in"]]
    assert [v["id"] for v in mine] == [visit_a["id"], visit_b["id"]]
    assert [v["position"] for v in mine] == [1, 2] and all(v["consent_given"] for v in mine)
    assert state["doctors"] == [{"id": w.users["doctor"].id, "name": w.users["doctor"].display_name}]
    doctor, _ = await as_user(aiohttp_client, client, w.users["doctor"].email)
    queue = await (await doctor.get(f"/api/clinics/{w.facility.id}/queue")).json()
    assert [e["id"] for e in queue["encounters"] if e["walk_in"]] == [visit_a["id"], visit_b["id"]]
    assert queue["waiting"] == 2


async def test_witnessed_consent_keeps_the_patients_rules_and_its_evidence(
    world: tuple[TestClient, World], aiohttp_client: Clients
) -> None:
    client, w = world
    nurse, csrf = await as_user(aiohttp_client, client, w.users["nurse"].email)
    adult = await walk_in(nurse, csrf, w, w.users["patient1"].id)
    url = f"/api/clinics/encounters/{adult['id']}/consent/witness"
    headers = {"X-CSRF-Token": csrf}

    silent = decision()
    del silent["accepted"]
    assert (await nurse.post(url, headers=headers, json=silent)).status == 400  # silence is not consent
    stale = await nurse.post(url, headers=headers, json=decision(text_version=2))
    assert stale.status == 409 and (await stale.json())["error"]["code"] == "text_changed"
    unknown = await nurse.post(url, headers=headers, json=decision(method="implied"))
    assert unknown.status == 400
    nameless = await nurse.post(url, headers=headers, json=decision(decider_name=""))
    assert nameless.status == 400
    proxy = await nurse.post(url, headers=headers, json=decision(decided_by="guardian", decider_name="Con trai"))
    assert (await proxy.json())["error"]["code"] == "patient_decides"
    refused = await (await nurse.post(url, headers=headers, json=decision(accepted=False))).json()
    assert refused["accepted"] is False
    arrive = f"/api/clinics/encounters/{adult['id']}/arrive"
    assert (await nurse.post(arrive, headers=headers)).status == 409  # a refusal puts nobody in the queue
    signed = await nurse.post(url, headers=headers, json=decision(method="paper"))
    record = await signed.json()
    assert signed.status == 201 and record["method"] == "paper" and len(record["text_sha256"]) == 64

    form = FormData()
    form.add_field("file", PNG, filename="phieu-dong-y.png", content_type="image/png")
    scan = await nurse.post(f"/api/clinics/consents/{record['id']}/evidence", headers=headers, data=form)
    assert scan.status == 201, await scan.text()
    fake = FormData()
    fake.add_field("file", b"not a picture", filename="x.png", content_type="image/png")
    assert (await nurse.post(f"/api/clinics/consents/{record['id']}/evidence", headers=headers,
                             data=fake)).status == 415
    async with client.app[SESSIONS]() as db:
        stored = await db.get(ConsentRecord, record["id"])
        assert stored is not None and stored.decided_by == w.users["nurse"].id
        assert stored.decided_as == "witness_patient" and stored.patient_id == w.users["patient1"].id
        evidence = (await db.execute(select(Document).where(Document.context_type == "consent",
                                                            Document.context_id == record["id"])
                                     .order_by(Document.created_at))).scalars().all()
        assert [d.kind.value for d in evidence] == ["consent", "consent"]
        assert all(d.subject_id == w.users["patient1"].id for d in evidence)
        statement = await db.scalar(select(DocumentVersion).where(
            DocumentVersion.document_id == record["statement_document_id"]))
        assert statement is not None and statement.text is not None
        content = json.loads(statement.text)
        assert content["method"] == "paper" and content["decider_name"] == "Lâm Văn Tư"
        assert content["witness_id"] == w.users["nurse"].id and content["text_sha256"] == record["text_sha256"]
        witness = await db.scalar(select(Signature).where(Signature.document_id == record["statement_document_id"]))
        assert witness is not None and witness.signer_id == w.users["nurse"].id and witness.signer_role == "nurse"
    assert (await nurse.post(arrive, headers=headers)).status == 200

    # The patient, who has a session too, still sees the consent as given (same record) and may withdraw it.
    patient, patient_csrf = await as_user(aiohttp_client, client, w.users["patient1"].email)
    status = await (await patient.get(f"/api/clinics/encounters/{adult['id']}/consent")).json()
    assert status["given"] is True and status["record"]["id"] == record["id"]
    withdrawn = await patient.post(f"/api/clinics/consents/{record['id']}/withdraw",
                                   headers={"X-CSRF-Token": patient_csrf})
    assert (await withdrawn.json())["withdrawn_at"] is not None
    again = await (await nurse.get(url)).json()
    assert again["given"] is False


async def test_a_child_at_the_station_needs_the_guardian_and_her_own_assent(
    world: tuple[TestClient, World], aiohttp_client: Clients
) -> None:
    client, w = world
    nurse, csrf = await as_user(aiohttp_client, client, w.users["nurse"].email)
    child = await walk_in(nurse, csrf, w, w.users["patient2"].id)  # born 2016
    url = f"/api/clinics/encounters/{child['id']}/consent/witness"
    status = await (await nurse.get(url)).json()
    assert status["needs_guardian"] is True and status["needs_child_assent"] is True
    assert status["guardian_name"] == "Võ Văn Em"
    headers = {"X-CSRF-Token": csrf}
    herself = await nurse.post(url, headers=headers, json=decision(decider_name="Võ Thị Dung", child_assent=True))
    assert (await herself.json())["error"]["code"] == "guardian_required"
    no_child = await nurse.post(url, headers=headers, json=decision(decided_by="guardian", decider_name="Võ Văn Em"))
    assert (await no_child.json())["error"]["code"] == "child_assent_required"
    both = await nurse.post(url, headers=headers, json=decision(decided_by="guardian", decider_name="Võ Văn Em",
                                                                child_assent=True))
    record = await both.json()
    assert both.status == 201 and record["decided_as"] == "witness_guardian"
    assert record["guardian_name"] == "Võ Văn Em" and record["child_assent"] is True
    assert date.today().year - 2016 >= 7


async def test_who_may_take_consent_and_see_the_station(
    world: tuple[TestClient, World], aiohttp_client: Clients
) -> None:
    client, w = world
    nurse, csrf = await as_user(aiohttp_client, client, w.users["nurse"].email)
    visit = await walk_in(nurse, csrf, w, w.users["patient1"].id)
    url = f"/api/clinics/encounters/{visit['id']}/consent/witness"
    tenant = w.facility.id
    expected = {"other_doctor": 404, "patient3": 404, "teacher": 404, "patient1": 403, "facility_admin": 403,
                "doctor": 201}
    for handle, status in expected.items():
        browser, token = await as_user(aiohttp_client, client, w.users[handle].email)
        posted = await browser.post(url, headers={"X-CSRF-Token": token}, json=decision())
        assert posted.status == status, (handle, await posted.text())
        read = await browser.get(url)
        assert read.status == (200 if status == 201 else status), handle
        station = await browser.get(f"/api/clinics/{tenant}/station")
        assert station.status == (200 if handle == "doctor" else 404), handle
        page = await browser.get(f"/clinic/{tenant}/station", allow_redirects=False)
        assert page.status == (200 if handle == "doctor" else 404), handle
        created = await browser.post(f"/api/clinics/{tenant}/station/walk-ins", headers={"X-CSRF-Token": token},
                                     json={"patient_id": w.users["patient2"].id,
                                           "practitioner_id": w.users["doctor"].id})
        assert created.status == (201 if handle == "doctor" else 404), handle
        assist = await browser.post(f"/api/clinics/encounters/{visit['id']}/assist",
                                    headers={"X-CSRF-Token": token})
        assert assist.status in ((409,) if handle == "doctor" else (404,)), handle  # the doctor runs it: 409
    anonymous = await aiohttp_client(client.server)
    assert (await anonymous.get(url)).status == 401
    assert (await anonymous.get(f"/clinic/{tenant}/station", allow_redirects=False)).status == 302
    evidence = await anonymous.post("/api/clinics/consents/nope/evidence")
    assert evidence.status == 403  # no session, so no CSRF token
    other, other_csrf = await as_user(aiohttp_client, client, w.users["other_doctor"].email)
    async with client.app[SESSIONS]() as db:
        consent_id = await db.scalar(select(ConsentRecord.id).where(ConsentRecord.patient_id == w.users["patient1"].id))
    form = FormData()
    form.add_field("file", PNG, filename="x.png", content_type="image/png")
    assert (await other.post(f"/api/clinics/consents/{consent_id}/evidence", headers={"X-CSRF-Token": other_csrf},
                             data=form)).status == 404
    async with client.app[SESSIONS]() as db:
        denied = (await db.execute(select(AuditEvent.action).where(
            AuditEvent.actor_id == w.users["other_doctor"].id, AuditEvent.outcome == Outcome.DENIED))).scalars().all()
    assert {"clinic.consent.witness", "clinic.consent.read", "clinic.station.read", "clinic.station.view",
            "clinic.encounter.create", "clinic.assist.start", "clinic.consent.evidence"} <= set(denied)


async def test_assisted_session_token_only_in_progress_and_only_for_that_visit(
    world: tuple[TestClient, World], aiohttp_client: Clients
) -> None:
    client, w = world
    nurse, csrf = await as_user(aiohttp_client, client, w.users["nurse"].email)
    doctor, doctor_csrf = await as_user(aiohttp_client, client, w.users["doctor"].email)
    headers = {"X-CSRF-Token": csrf}
    visits = []
    for handle in ("patient1", "patient2"):
        visit = await walk_in(nurse, csrf, w, w.users[handle].id)
        extra = {"decided_by": "guardian", "decider_name": "Võ Văn Em", "child_assent": True} \
            if handle == "patient2" else {}
        assert (await nurse.post(f"/api/clinics/encounters/{visit['id']}/consent/witness", headers=headers,
                                 json=decision(**extra))).status == 201
        visits.append(visit)
    a, b = visits
    planned = await nurse.post(f"/api/clinics/encounters/{a['id']}/assist", headers=headers)
    assert planned.status == 409  # not in the queue yet
    for visit in visits:
        assert (await nurse.post(f"/api/clinics/encounters/{visit['id']}/arrive", headers=headers)).status == 200
    token_a, token_b = (f"/api/rooms/{v['room']}/token" for v in visits)
    assert (await nurse.post(token_a, headers=headers)).status == 404  # not a member of the room at all

    started = await nurse.post(f"/api/clinics/encounters/{a['id']}/assist", headers=headers)
    assert started.status == 201
    page_url = (await started.json())["url"]
    page = await nurse.get(page_url)
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert w.users["patient1"].display_name in await page.text()
    waiting = await nurse.get(f"/api/clinics/encounters/{a['id']}/waiting")
    assert waiting.headers["Cache-Control"] == "no-store"
    before = await nurse.post(token_a, headers=headers)
    assert before.status == 403 and (await before.json())["error"]["code"] == "not_admitted"
    assert (await doctor.post(token_a, headers={"X-CSRF-Token": doctor_csrf})).status == 200  # the host: any time
    assert (await doctor.post(f"/api/clinics/encounters/{a['id']}/admit",
                              headers={"X-CSRF-Token": doctor_csrf})).status == 200
    granted = await nurse.post(token_a, headers=headers)
    assert granted.status == 200 and (await granted.json())["grants"]["room_admin"] is False
    assert (await doctor.post(f"/api/clinics/encounters/{b['id']}/admit",
                              headers={"X-CSRF-Token": doctor_csrf})).status == 200
    assert (await nurse.post(token_b, headers=headers)).status == 404  # B is in progress, but not hers to run

    finished = await nurse.post(f"/clinic/{w.facility.id}/station/assist/{a['id']}/finish",
                                data={"csrf_token": csrf}, allow_redirects=False)
    assert finished.status == 303 and finished.headers["Location"] == f"/clinic/{w.facility.id}/station"
    assert finished.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert finished.headers["Cache-Control"] == "no-store"
    async with client.app[SESSIONS]() as db:
        ended = await db.get(Encounter, a["id"])
        assert ended is not None and ended.status.value == "finished"
    assert (await nurse.post(token_a, headers=headers)).status == 404  # the session is over
    back = await nurse.get(page_url, allow_redirects=False)  # the Back button
    assert back.status == 303 and w.users["patient1"].display_name not in await back.text()

    # Starting B's session while A's were still open would have ended A's: one visit at a time.
    assert (await nurse.post(f"/api/clinics/encounters/{b['id']}/assist", headers=headers)).status == 201
    assert (await nurse.post(token_b, headers=headers)).status == 200
    async with client.app[SESSIONS]() as db:
        actions = (await db.execute(select(AuditEvent.action).where(
            AuditEvent.actor_id == w.users["nurse"].id, AuditEvent.action.like("clinic.assist.%"),
            AuditEvent.outcome == Outcome.SUCCESS).order_by(AuditEvent.at))).scalars().all()
    assert [a for a in actions if a != "clinic.assist.view"] == \
        ["clinic.assist.start", "clinic.assist.end", "clinic.assist.start"]


async def test_a_new_session_ends_the_previous_one(world: tuple[TestClient, World], aiohttp_client: Clients) -> None:
    client, w = world
    nurse, csrf = await as_user(aiohttp_client, client, w.users["nurse"].email)
    headers = {"X-CSRF-Token": csrf}
    rooms = []
    for handle in ("patient1", "patient2"):
        visit = await walk_in(nurse, csrf, w, w.users[handle].id)
        extra = {"decided_by": "guardian", "decider_name": "Võ Văn Em", "child_assent": True} \
            if handle == "patient2" else {}
        await nurse.post(f"/api/clinics/encounters/{visit['id']}/consent/witness", headers=headers,
                         json=decision(**extra))
        await nurse.post(f"/api/clinics/encounters/{visit['id']}/arrive", headers=headers)
        assert (await nurse.post(f"/api/clinics/encounters/{visit['id']}/assist", headers=headers)).status == 201
        rooms.append((visit, visit["room"]))
    (first, first_room), (second, _room) = rooms
    # The first session was ended by the second: its page sends the nurse back to the station.
    stale = await nurse.get(f"/clinic/{w.facility.id}/station/assist/{first['id']}", allow_redirects=False)
    assert stale.status == 303
    assert (await nurse.post(f"/api/rooms/{first_room}/token", headers=headers)).status == 404
    # A visit still waiting keeps its place when its session ends.
    await nurse.post(f"/clinic/{w.facility.id}/station/assist/{second['id']}/finish", data={"csrf_token": csrf},
                     allow_redirects=False)
    async with client.app[SESSIONS]() as db:
        still = await db.get(Encounter, second["id"])
        assert still is not None and still.status.value == "waiting"
