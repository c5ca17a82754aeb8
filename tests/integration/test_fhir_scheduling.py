"""FHIR scheduling and documents over real HTTP: HealthcareService, Schedule, Slot, Appointment,
DocumentReference, and Appointment/$book through the database-guaranteed booking.

Every answer is validated with fhir.resources (fhir_support.fhir_get / fhir_post).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.auth.models import Tenant, User
from server.keys import SESSIONS
from server.records.audit import Outcome
from server.records.documents.models import Document, DocumentKind, DocumentVersion, SubjectType
from server.records.fhir.calendars import slot_id
from server.scheduling.models import Booking, BookingStatus, ResourceKind
from server.scheduling.service import cancel
from tests.conftest import login
from tests.integration.fhir_support import (
    World,
    audit_rows,
    bearer,
    book_body,
    fhir_get,
    fhir_post,
    open_resource,
    start_app,
)
from tests.integration.scheduling_helpers import VN, day_after_tomorrow_at

Client = Callable[..., Awaitable[TestClient]]
# One of each kind of person in each tenant (as tests/integration/test_fhir_authorization.py).
PEOPLE = ["facility_admin", "doctor", "nurse", "patient1", "patient2", "school_admin", "teacher", "student1",
          "student2", "other_admin", "other_doctor", "patient3", "platform_admin"]


@pytest.fixture
async def app_world(aiohttp_client: Client, tmp_path: Path, database_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, database_url)


@pytest.fixture
async def sqlite_world(aiohttp_client: Client, tmp_path: Path, sqlite_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, sqlite_url)


def ids(bundle: dict[str, object]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]  # type: ignore[attr-defined, index]


def local_day(start: datetime) -> str:
    return start.astimezone(VN).date().isoformat()


async def test_services_schedules_and_slots(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    doctor = world.users["doctor"]
    consult = await open_resource(client, world.facility, "BS. An — khám từ xa", user=doctor)
    room = await open_resource(client, world.facility, "Phòng tư vấn 1", kind=ResourceKind.ROOM)
    elsewhere = await open_resource(client, world.other, "Khám ở xã Khác", user=world.users["other_doctor"])
    key = world.keys["patient1"]

    _, services = await fhir_get(client, "HealthcareService", key)
    # The demo has resources of its own (the clinics plugin's consultation room); never facility B's.
    assert {consult.id, room.id} <= set(ids(services)) and elsewhere.id not in ids(services)
    _, service = await fhir_get(client, f"HealthcareService/{consult.id}", key)
    assert service["providedBy"] == {"reference": f"Organization/{world.facility.id}"}
    assert service["name"] == consult.name and service["category"][0]["coding"][0]["code"] == "practitioner"
    rooms = ids((await fhir_get(client, "HealthcareService?service-category=room", key))[1])
    assert room.id in rooms and consult.id not in rooms
    assert ids((await fhir_get(client, "HealthcareService?name=phong tu van 1", key))[1]) == [room.id]
    assert (await fhir_get(client, f"HealthcareService/{elsewhere.id}", key))[0] == 404

    _, schedule = await fhir_get(client, f"Schedule/{consult.id}", key)
    assert {"reference": f"Practitioner/{doctor.id}"} in schedule["actor"]
    by_doctor = ids((await fhir_get(client, f"Schedule?actor=Practitioner/{doctor.id}", key))[1])
    assert consult.id in by_doctor and room.id not in by_doctor
    assert ids((await fhir_get(client, f"Schedule?actor=HealthcareService/{room.id}", key))[1]) == [room.id]

    start = day_after_tomorrow_at(9)
    day = local_day(start)
    status, slots = await fhir_get(client, f"Slot?schedule=Schedule/{consult.id}&start=ge{day}&start=le{day}", key)
    assert status == 200 and slots["total"] == 8  # 07:30 … 11:00
    assert all(e["resource"]["status"] == "free" for e in slots["entry"])
    wanted = slot_id(consult.id, start)
    assert wanted in ids(slots)
    _, slot = await fhir_get(client, f"Slot/{wanted}", key)
    assert slot["schedule"] == {"reference": f"Schedule/{consult.id}"}
    assert slot["start"] == start.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # Not a slot: off the grid, outside the hours, another tenant's, malformed.
    for missing in [slot_id(consult.id, start + timedelta(minutes=10)), slot_id(consult.id, start.replace(hour=14)),
                    slot_id(elsewhere.id, start), "not-a-slot"]:
        assert (await fhir_get(client, f"Slot/{missing}", key))[0] == 404, missing
    # Paging over computed slots.
    _, first = await fhir_get(client, f"Slot?schedule={consult.id}&start=ge{day}&start=le{day}&_count=3", key)
    assert len(ids(first)) == 3 and first["total"] == 8
    for query in ["Slot", f"Slot?schedule={consult.id}&start=ge2026-01-01&start=le2026-12-31",
                  f"Slot?schedule={consult.id}&status=maybe", "Schedule?actor=Organization/x",
                  "HealthcareService?active=yes"]:
        status, outcome = await fhir_get(client, query, key)
        assert status == 400 and outcome["issue"][0]["code"] == "invalid", query


async def test_book_then_search_appointments(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    u = world.users
    consult = await open_resource(client, world.facility, "BS. An — khám từ xa", user=u["doctor"])
    start = day_after_tomorrow_at(9)
    slot = slot_id(consult.id, start)

    status, created = await fhir_post(client, "Appointment/$book", book_body(slot, comment="ho kéo dài"),
                                      world.keys["patient1"])
    assert status == 201, created
    assert created["status"] == "booked" and created["slot"] == [{"reference": f"Slot/{slot}"}]
    actors = [p["actor"].get("reference") for p in created["participant"]]
    assert actors == [f"Patient/{u['patient1'].id}", f"Practitioner/{u['doctor'].id}",
                      f"HealthcareService/{consult.id}"]
    assert created["comment"] == "ho kéo dài"
    [row] = await audit_rows(client, action="scheduling.booking.create")
    assert (row.outcome, row.target_id, row.actor_id) == (Outcome.SUCCESS, created["id"], u["patient1"].id)

    # The slot is now busy, and a second booking of it is a 409.
    _, taken = await fhir_get(client, f"Slot/{slot}", world.keys["patient2"])
    assert taken["status"] == "busy"
    status, conflict = await fhir_post(client, "Appointment/$book", book_body(slot), world.keys["patient2"])
    assert status == 409 and conflict["issue"][0]["code"] == "conflict"
    # A doctor books for patient2; a patient may not book for somebody else.
    later = slot_id(consult.id, start + timedelta(minutes=30))
    status, for_other = await fhir_post(client, "Appointment/$book", book_body(later, u["patient2"].id),
                                        world.keys["doctor"])
    assert status == 201 and for_other["participant"][0]["actor"]["reference"] == f"Patient/{u['patient2'].id}"
    status, _ = await fhir_post(client, "Appointment/$book",
                                book_body(slot_id(consult.id, start + timedelta(hours=1)), u["patient2"].id),
                                world.keys["patient1"])
    assert status == 404
    # Another tenant's people do not see the schedule at all.
    status, _ = await fhir_post(client, "Appointment/$book", book_body(slot_id(consult.id, start + timedelta(hours=1))),
                                world.keys["patient3"])
    assert status == 404
    # Not a slot (off the grid) is a business rule; a malformed body is invalid.
    status, outcome = await fhir_post(client, "Appointment/$book",
                                      book_body(slot_id(consult.id, start + timedelta(minutes=7))),
                                      world.keys["patient1"])
    assert status == 422 and outcome["issue"][0]["code"] == "business-rule"
    for body in [{}, {"resourceType": "Appointment"}, {"resourceType": "Parameters"},
                 {"resourceType": "Parameters", "parameter": [{"name": "slot", "valueString": slot}]},
                 {"resourceType": "Parameters", "parameter": [{"name": "room", "valueString": "x"}]},
                 book_body("nope")]:
        status, outcome = await fhir_post(client, "Appointment/$book", body, world.keys["patient1"])
        assert status == 400 and outcome["issue"][0]["code"] == "invalid", body

    mine = created["id"]
    theirs = for_other["id"]
    key1, key2 = world.keys["patient1"], world.keys["patient2"]
    assert ids((await fhir_get(client, "Appointment", key1))[1]) == [mine]
    assert ids((await fhir_get(client, "Appointment", key2))[1]) == [theirs]
    assert (await fhir_get(client, f"Appointment/{theirs}", key1))[0] == 404
    doctor = world.keys["doctor"]
    day = local_day(start)
    assert ids((await fhir_get(client, "Appointment", doctor))[1]) == [mine, theirs]
    assert ids((await fhir_get(client, f"Appointment?patient=Patient/{u['patient2'].id}", doctor))[1]) == [theirs]
    assert ids((await fhir_get(client, f"Appointment?actor=Practitioner/{u['doctor'].id}", doctor))[1]) == \
        [mine, theirs]
    assert ids((await fhir_get(client, f"Appointment?date={day}&status=booked", doctor))[1]) == [mine, theirs]
    assert ids((await fhir_get(client, f"Appointment?date=gt{day}", doctor))[1]) == []
    assert ids((await fhir_get(client, "Appointment?status=cancelled", doctor))[1]) == []
    async with client.app[SESSIONS].begin() as db:
        booking = await db.get(Booking, theirs)
        assert booking is not None
        await cancel(db, booking, actor_id=u["patient2"].id, reason="bận việc")
    _, cancelled = await fhir_get(client, f"Appointment/{theirs}", key2)
    assert cancelled["status"] == "cancelled" and cancelled["cancelationReason"] == {"text": "bận việc"}
    assert ids((await fhir_get(client, "Appointment?status=cancelled", doctor))[1]) == [theirs]
    _, freed = await fhir_get(client, f"Slot/{later}", key1)
    assert freed["status"] == "free"
    assert ids((await fhir_get(client, "Appointment", world.keys["other_doctor"]))[1]) == []
    assert (await fhir_get(client, "Appointment?status=noshow", doctor))[0] == 400
    # Searches of appointments audit one row per appointment returned.
    seen = await audit_rows(client, action="fhir.search", target_type="Appointment", actor_id=u["patient1"].id)
    assert {r.target_id for r in seen} == {mine}


async def test_book_needs_an_api_key(sqlite_world: tuple[TestClient, World]) -> None:
    """$book changes something: a cookie alone, even with a valid CSRF token, is not enough."""
    client, world = sqlite_world
    consult = await open_resource(client, world.facility, "BS. An", user=world.users["doctor"])
    body = book_body(slot_id(consult.id, day_after_tomorrow_at(9)))
    csrf = await login(client, world.users["patient1"].email)
    status, outcome = await fhir_post(client, "Appointment/$book", body, headers={"X-CSRF-Token": csrf})
    assert status == 401 and outcome["issue"][0]["code"] == "login"
    status, _ = await fhir_post(client, "Appointment/$book", body, "cn_not-a-key")
    assert status == 401
    response = await client.get("/fhir/R4/Appointment/$book", headers=bearer(world.keys["patient1"]))
    assert response.status == 405 and response.headers["Allow"] == "POST"
    response = await client.post("/fhir/R4/Appointment/$book", data="slot", headers={
        **bearer(world.keys["patient1"]), "Content-Type": "text/plain"})
    assert response.status == 415
    async with client.app[SESSIONS]() as db:
        assert await db.scalar(select(func.count()).select_from(Booking)) == 0


async def test_twenty_concurrent_books_of_one_slot_make_exactly_one(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    consult = await open_resource(client, world.facility, "BS. An", user=world.users["doctor"])
    body = book_body(slot_id(consult.id, day_after_tomorrow_at(10)), world.users["patient1"].id)

    async def attempt() -> int:
        return (await fhir_post(client, "Appointment/$book", body, world.keys["doctor"]))[0]

    statuses = sorted(await asyncio.gather(*(attempt() for _ in range(20))))
    assert statuses == [201] + [409] * 19, statuses
    async with client.app[SESSIONS]() as db:
        assert await db.scalar(select(func.count()).select_from(Booking).where(
            Booking.resource_id == consult.id, Booking.status == BookingStatus.BOOKED)) == 1


async def test_group_capacity_through_book(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    group = await open_resource(client, world.facility, "Lớp tiền sản", kind=ResourceKind.SERVICE, capacity=3)
    slot = slot_id(group.id, day_after_tomorrow_at(8))
    results = [await fhir_post(client, "Appointment/$book", book_body(slot, world.users[p].id), world.keys["nurse"])
               for p in ("patient1", "patient2", "patient1", "patient2")]
    assert [status for status, _ in results] == [201, 201, 201, 409]
    _, full = await fhir_get(client, f"Slot/{slot}", world.keys["nurse"])
    assert full["status"] == "busy"


async def add_document(client: TestClient, tenant: Tenant, subject: User, kind: DocumentKind, title: str,
                       text: str, author: User, at: datetime) -> Document:
    async with client.app[SESSIONS].begin() as db:
        document = Document(tenant_id=tenant.id, kind=kind, title=title, subject_type=SubjectType.PATIENT,
                            subject_id=subject.id, created_by=author.id, created_at=at)
        db.add(document)
        await db.flush()
        data = text.encode()
        db.add(DocumentVersion(document_id=document.id, version=1, content_type="text/plain", size=len(data),
                               sha256=hashlib.sha256(data).hexdigest(), text=text, created_by=author.id,
                               created_at=at))
    return document


async def test_document_references(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    u = world.users
    march = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    note = await add_document(client, world.facility, u["patient1"], DocumentKind.NOTE, "Khám ngày 2/3",
                              "S: ho. O: phổi trong.", u["doctor"], march)
    report = await add_document(client, world.facility, u["patient2"], DocumentKind.REPORT, "Kết quả xét nghiệm",
                                "bình thường", u["doctor"], march + timedelta(days=10))
    foreign = await add_document(client, world.other, u["patient3"], DocumentKind.NOTE, "Khám", "x",
                                 u["other_doctor"], march)
    doctor = world.keys["doctor"]
    _, found = await fhir_get(client, "DocumentReference", doctor)
    assert ids(found) == [report.id, note.id]  # newest first; never facility B's
    _, reference = await fhir_get(client, f"DocumentReference/{note.id}", doctor)
    assert reference["subject"] == {"reference": f"Patient/{u['patient1'].id}"}
    assert reference["type"]["coding"][0]["code"] == "note" and reference["description"] == "Khám ngày 2/3"
    attachment = reference["content"][0]["attachment"]
    assert attachment["url"].endswith(f"/api/records/documents/{note.id}/versions/1/content")
    assert attachment["size"] == len("S: ho. O: phổi trong.".encode())
    assert attachment["contentType"] == "text/plain"
    assert attachment["extension"][0]["url"] == "urn:caunoi:fhir:attachment-sha256"
    assert ids((await fhir_get(client, f"DocumentReference?patient=Patient/{u['patient2'].id}", doctor))[1]) == \
        [report.id]
    assert ids((await fhir_get(client, f"DocumentReference?subject={u['patient1'].id}", doctor))[1]) == [note.id]
    assert ids((await fhir_get(client, "DocumentReference?type=report", doctor))[1]) == [report.id]
    assert ids((await fhir_get(client, "DocumentReference?date=2026-03-02", doctor))[1]) == [note.id]
    assert ids((await fhir_get(client, "DocumentReference?date=ge2026-03-03&date=lt2026-04", doctor))[1]) == \
        [report.id]
    assert (await fhir_get(client, "DocumentReference?type=letter", doctor))[0] == 400
    # The patient sees their own documents only; other tenants and the school see nothing.
    assert ids((await fhir_get(client, "DocumentReference", world.keys["patient1"]))[1]) == [note.id]
    assert (await fhir_get(client, f"DocumentReference/{report.id}", world.keys["patient1"]))[0] == 404
    assert (await fhir_get(client, f"DocumentReference/{foreign.id}", doctor))[0] == 404
    for who in ("teacher", "platform_admin", "other_admin"):
        assert foreign.id not in ids((await fhir_get(client, "DocumentReference", world.keys[who]))[1]) or \
            who == "other_admin"
        assert note.id not in ids((await fhir_get(client, "DocumentReference", world.keys[who]))[1])
    seen = await audit_rows(client, action="fhir.search", target_type="DocumentReference", actor_id=u["doctor"].id)
    assert {r.target_id for r in seen} >= {note.id, report.id}


async def test_authorization_is_the_json_apis(sqlite_world: tuple[TestClient, World]) -> None:
    """For every person: a FHIR read succeeds exactly when the JSON API's read of the same thing does."""
    client, world = sqlite_world
    u = world.users
    consult = await open_resource(client, world.facility, "BS. An", user=u["doctor"])
    lesson = await open_resource(client, world.school, "Lớp 5A", user=u["teacher"], kind=ResourceKind.CLASS,
                                 capacity=30)
    start = day_after_tomorrow_at(9)
    _, visit = await fhir_post(client, "Appointment/$book", book_body(slot_id(consult.id, start), u["patient1"].id),
                               world.keys["doctor"])
    _, seat = await fhir_post(client, "Appointment/$book", book_body(slot_id(lesson.id, start)),
                              world.keys["student1"])
    now = datetime.now(UTC)
    note = await add_document(client, world.facility, u["patient1"], DocumentKind.NOTE, "Khám", "x", u["doctor"], now)
    async with client.app[SESSIONS].begin() as db:
        report = Document(tenant_id=world.school.id, kind=DocumentKind.REPORT, title="Học bạ",
                          subject_type=SubjectType.STUDENT, subject_id=u["student1"].id, created_by=u["teacher"].id)
        db.add(report)
        await db.flush()
        db.add(DocumentVersion(document_id=report.id, version=1, content_type="text/plain", size=1,
                               sha256=hashlib.sha256(b"x").hexdigest(), text="x", created_by=u["teacher"].id))
    pairs = [
        (f"Schedule/{consult.id}", f"/api/scheduling/resources/{consult.id}/slots"),
        (f"HealthcareService/{lesson.id}", f"/api/scheduling/resources/{lesson.id}/slots"),
        (f"Appointment/{visit['id']}", f"/api/scheduling/bookings/{visit['id']}"),
        (f"Appointment/{seat['id']}", f"/api/scheduling/bookings/{seat['id']}"),
        (f"DocumentReference/{note.id}", f"/api/records/documents/{note.id}"),
        (f"DocumentReference/{report.id}", f"/api/records/documents/{report.id}"),
    ]
    allowed: dict[str, set[str]] = {}
    for who in PEOPLE:
        await login(client, u[who].email)
        for fhir_path, api_path in pairs:
            api = (await client.get(api_path)).status
            status, _ = await fhir_get(client, fhir_path, world.keys[who])
            assert (status, api) in {(200, 200), (404, 404)}, (who, fhir_path, status, api)
            if status == 200:
                allowed.setdefault(fhir_path, set()).add(who)
            # A search shows exactly what a read allows.
            rtype, _, rid = fhir_path.partition("/")
            _, bundle = await fhir_get(client, f"{rtype}?_id={rid}", world.keys[who])
            assert ids(bundle) == ([rid] if status == 200 else []), (who, fhir_path)
    # And the rules are the ones we mean (not merely equal to each other).
    assert allowed[f"Appointment/{visit['id']}"] == {"facility_admin", "doctor", "nurse", "patient1"}
    assert allowed[f"Appointment/{seat['id']}"] == {"school_admin", "teacher", "student1"}
    assert allowed[f"DocumentReference/{note.id}"] == {"facility_admin", "doctor", "nurse", "patient1"}
    assert allowed[f"DocumentReference/{report.id}"] == {"school_admin", "teacher", "student1"}
    assert allowed[f"Schedule/{consult.id}"] == {"facility_admin", "doctor", "nurse", "patient1", "patient2"}
