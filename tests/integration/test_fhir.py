"""The FHIR R4 API over real HTTP: metadata, read, search, paging, parameters, errors, auditing.

Every resource and Bundle the API answers with is validated with fhir.resources (fhir_support.fhir_get).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from clinics.demo import HOSPITAL_SLUG
from server.auth.accounts import assign_role, create_user
from server.auth.models import Role, Tenant
from server.keys import SESSIONS
from server.records.audit import Outcome
from server.records.fhir.types import served
from tests.conftest import login
from tests.integration.fhir_support import (
    FHIR_JSON,
    SEARCHABLE_ALONE,
    SERVED,
    World,
    add_audit_row,
    audit_rows,
    bearer,
    fhir_get,
    role_assignment,
    start_app,
    validate,
)

Client = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def app_world(aiohttp_client: Client, tmp_path: Path, database_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, database_url)


@pytest.fixture
async def sqlite_world(aiohttp_client: Client, tmp_path: Path, sqlite_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, sqlite_url)


def ids(bundle: dict[str, object]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]  # type: ignore[attr-defined, index]


def local(path_or_url: str) -> str:
    """A Bundle link is absolute on the public URL; the test server listens elsewhere."""
    parts = urlsplit(path_or_url)
    return f"{parts.path}?{parts.query}"


async def test_metadata_lists_exactly_what_is_served(client: TestClient) -> None:
    status, statement = await fhir_get(client, "metadata")  # no credentials: metadata is public
    assert status == 200
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    assert {r["type"] for r in rest["resource"]} == SERVED
    for resource in rest["resource"]:
        assert [i["code"] for i in resource["interaction"]] == ["read", "search-type"]
        served_types = served(client.app)
        assert {p["name"] for p in resource["searchParam"]} == set(served_types[resource["type"]].params) | {"_count"}
        assert [o["name"] for o in resource.get("operation", [])] == (["book"] if resource["type"] == "Appointment"
                                                                       else [])
    assert [o["name"] for o in rest["operation"]] == ["export"]


@pytest.mark.parametrize("who", ["platform_admin", "facility_admin", "doctor", "patient1", "teacher"])
async def test_every_answer_validates(app_world: tuple[TestClient, World], who: str) -> None:
    """Search every type, then read every resource found: all of it is valid R4, entries and reads agree."""
    client, world = app_world
    await add_audit_row(client, datetime.now(UTC), actor=world.users["doctor"], role="doctor",
                        target_type="Patient", target_id=world.users["patient1"].id, tenant=world.facility)
    key = world.keys[who]
    seen = 0
    for name in sorted(SEARCHABLE_ALONE):
        status, bundle = await fhir_get(client, name, key)
        if status == 404:
            assert name == "AuditEvent" and who not in {"platform_admin", "facility_admin"}
            continue
        assert status == 200 and bundle["type"] == "searchset" and bundle["total"] == len(ids(bundle))
        for entry in bundle.get("entry", []):
            assert entry["fullUrl"].endswith(f"/fhir/R4/{name}/{entry['resource']['id']}")
            status, resource = await fhir_get(client, f"{name}/{entry['resource']['id']}", key)
            assert status == 200 and resource == entry["resource"]
            seen += 1
    assert seen > 0


async def test_resources_carry_our_data(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    key = world.keys["facility_admin"]
    doctor, patient1 = world.users["doctor"], world.users["patient1"]
    _, practitioner = await fhir_get(client, f"Practitioner/{doctor.id}", key)
    assert practitioner["name"] == [{"text": doctor.display_name}]
    assert practitioner["telecom"][0]["value"] == doctor.email
    _, patient = await fhir_get(client, f"Patient/{patient1.id}", key)
    assert patient["managingOrganization"] == {"reference": f"Organization/{world.facility.id}"}
    _, org = await fhir_get(client, f"Organization/{world.facility.id}", key)
    assert org["name"] == world.facility.name and org["type"][0]["coding"][0]["code"] == "prov"
    _, school = await fhir_get(client, f"Organization/{world.school.id}", world.keys["teacher"])
    assert school["type"][0]["coding"][0]["code"] == "edu"
    assignment = await role_assignment(client, doctor, Role.DOCTOR)
    _, role = await fhir_get(client, f"PractitionerRole/{assignment.id}", key)
    assert role["practitioner"]["reference"] == f"Practitioner/{doctor.id}"
    assert role["organization"]["reference"] == f"Organization/{world.facility.id}"
    assert role["code"][0]["coding"][0]["code"] == "doctor"


async def test_paging_follows_next_links_to_the_end(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    async with client.app[SESSIONS].begin() as db:
        for i in range(7):
            user = await create_user(db, email=f"bn{i}@tramyte.demo", display_name=f"Bệnh Nhân {i}")
            await assign_role(db, user, world.facility, Role.PATIENT)
    key = world.keys["doctor"]
    status, first = await fhir_get(client, "Patient?_count=3", key)
    assert status == 200 and first["total"] == 9 and len(ids(first)) == 3
    collected, bundle, pages = ids(first), first, 1
    while next_links := [link["url"] for link in bundle["link"] if link["relation"] == "next"]:
        _, bundle = await fhir_get(client, local(next_links[0]), key)
        collected += ids(bundle)
        pages += 1
        assert any(link["relation"] == "previous" for link in bundle["link"])
    assert pages == 3 and len(collected) == 9 and len(set(collected)) == 9
    _, counted = await fhir_get(client, "Patient?_count=0", key)
    assert counted["total"] == 9 and "entry" not in counted
    _, capped = await fhir_get(client, "Patient?_count=100000", key)
    assert len(ids(capped)) == 9
    _, beyond = await fhir_get(client, "Patient?_count=3&_offset=30", key)
    assert beyond["total"] == 9 and "entry" not in beyond
    assert [link["relation"] for link in beyond["link"]] == ["self", "previous"]


async def test_search_parameters(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    key = world.keys["facility_admin"]
    doctor, nurse, patient1 = world.users["doctor"], world.users["nurse"], world.users["patient1"]
    # Accent and case insensitive, any word: "nguyen" finds "BS. Nguyễn Văn An"; "pham" finds "Phạm Văn Cường".
    assert ids((await fhir_get(client, "Practitioner?name=nguyen", key))[1]) == [doctor.id]
    assert ids((await fhir_get(client, "Patient?name=PHAM", key))[1]) == [patient1.id]
    assert ids((await fhir_get(client, "Patient?name=cuong", key))[1]) == [patient1.id]
    assert ids((await fhir_get(client, "Patient?name=zzz", key))[1]) == []
    assert ids((await fhir_get(client, f"Patient?_id={patient1.id}", key))[1]) == [patient1.id]
    assert ids((await fhir_get(client, f"Patient?organization=Organization/{world.facility.id}", key))[1]) \
        == sorted([patient1.id, world.users["patient2"].id],
                  key=lambda i: next(u.display_name for u in world.users.values() if u.id == i))
    assert ids((await fhir_get(client, "PractitionerRole?role=nurse", key))[1]) == \
        [(await role_assignment(client, nurse, Role.NURSE)).id]
    assert len(ids((await fhir_get(client, f"PractitionerRole?practitioner=Practitioner/{doctor.id}", key))[1])) == 1
    admin = world.keys["platform_admin"]
    assert ids((await fhir_get(client, "Organization?type=edu", admin))[1]) == [world.school.id]
    async with client.app[SESSIONS]() as db:  # the demo's city hospital (clinics plugin) is a facility too
        hospital = await db.scalar(select(Tenant.id).where(Tenant.slug == HOSPITAL_SLUG))
    assert set(ids((await fhir_get(client, "Organization?type=prov", admin))[1])) == {
        world.facility.id, world.other.id, hospital}
    assert ids((await fhir_get(client, f"Organization?_id={world.facility.id},{world.school.id}&type=prov",
                               admin))[1]) == [world.facility.id]


@pytest.mark.parametrize("query", [
    "Patient?unknown=1", "Patient?_count=-1", "Patient?_count=abc", "Patient?name:exact=x", "Patient?name=a&name=b",
    "Patient?name=", "Patient?_format=xml", "Patient?_offset=x", "AuditEvent?date=soon", "AuditEvent?date=ge2026-13-01",
    "AuditEvent?date=2026-11-26T08:30", "AuditEvent?agent=Organization/x", "AuditEvent?outcome=1",
    "AuditEvent?agent=a,b", "AuditEvent?patient=Practitioner/x", "AuditEvent?patient=a&entity=b",
    "PractitionerRole?organization=Patient/x", "Patient/x?foo=1",
])
async def test_bad_parameters_are_400(sqlite_world: tuple[TestClient, World], query: str) -> None:
    client, world = sqlite_world
    status, outcome = await fhir_get(client, query, world.keys["facility_admin"])
    assert status == 400, outcome
    assert outcome["issue"][0]["code"] == "invalid"


async def test_errors_are_operation_outcomes(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    key = world.keys["doctor"]
    for path, status, code in [("Observation", 404, "not-supported"), ("$everything", 404, "not-supported"),
                               ("/fhir/R5/Patient", 404, "not-supported"), ("/fhir/", 404, "not-supported"),
                               ("Patient/no-such-id", 404, "not-found"), ("Patient/bad id!", 404, "not-found")]:
        got, outcome = await fhir_get(client, path, key)
        assert (got, outcome["issue"][0]["code"]) == (status, code), path
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await client.request(method, "/fhir/R4/Patient", headers=bearer(key), json={})
        assert response.status == 405 and response.headers["Allow"] == "GET"
        assert response.content_type == FHIR_JSON
        validate(await response.json(content_type=None))
    response = await client.get(f"/fhir/R4/Patient/{world.users['patient1'].id}", headers=bearer(key))
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    head = await client.head(f"/fhir/R4/Patient/{world.users['patient1'].id}", headers=bearer(key))
    assert head.status == 200 and head.content_type == FHIR_JSON
    response = await client.get("/fhir/R4/Patient")
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json(content_type=None))["issue"][0]["code"] == "login"


async def test_session_cookie_works_for_get_only(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    csrf = await login(client, world.users["patient1"].email)
    status, patient = await fhir_get(client, f"Patient/{world.users['patient1'].id}")
    assert status == 200 and patient["id"] == world.users["patient1"].id
    # Writes with a cookie are refused even with a valid CSRF token: resources are read-only.
    response = await client.post("/fhir/R4/Patient", headers={"X-CSRF-Token": csrf}, json={})
    assert response.status == 405


async def test_audit_event_search(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    doctor, nurse, patient1 = world.users["doctor"], world.users["nurse"], world.users["patient1"]
    rows = {
        # 2026-03-01T18:00Z is 2 March in Hồ Chí Minh City (UTC+7): date-only values are local days.
        "a": await add_audit_row(client, datetime(2026, 3, 1, 18, 0, tzinfo=UTC), action="fhir.read", actor=doctor,
                                 role="doctor", target_type="Patient", target_id=patient1.id, tenant=world.facility),
        "b": await add_audit_row(client, datetime(2026, 3, 1, 16, 59, tzinfo=UTC), action="room.join", actor=nurse,
                                 role="nurse", target_type="room", target_id="r-1", tenant=world.facility),
        "c": await add_audit_row(client, datetime(2026, 3, 5, 9, 0, tzinfo=UTC), action="auth.login",
                                 outcome=Outcome.FAILURE, tenant=world.facility),
        "other": await add_audit_row(client, datetime(2026, 3, 2, 9, 0, tzinfo=UTC), action="fhir.read",
                                     actor=world.users["other_doctor"], role="doctor", tenant=world.other),
    }
    key = world.keys["facility_admin"]

    async def found(query: str) -> set[str]:
        status, bundle = await fhir_get(client, f"AuditEvent?{query}&date=lt2026-04-01", key)
        assert status == 200, bundle
        return {k for k, row in rows.items() if row.id in ids(bundle)}

    assert await found("date=ge2026-03-01") == {"a", "b", "c"}  # never facility B's row
    assert await found("date=2026-03-02") == {"a"}
    assert await found("date=2026-03-01") == {"b"}
    assert await found("date=ge2026-03-01T17:00:00Z&date=le2026-03-05") == {"a", "c"}
    assert await found("date=gt2026-03-02&date=lt2026-03-06") == {"c"}
    assert await found("date=2026-03") == {"a", "b", "c"}
    assert await found(f"agent={doctor.id}") == {"a"}
    assert await found(f"agent=Practitioner/{nurse.id}") == {"b"}
    assert await found(f"entity=Patient/{patient1.id}") == {"a"}
    assert await found(f"patient=Patient/{patient1.id}") == {"a"}
    assert await found("patient=r-1") == set()  # r-1 is a room, not a patient
    assert await found("entity=r-1") == {"b"}
    assert await found("subtype=room.join") == {"b"}
    assert await found("outcome=8") == {"c"}
    assert await found(f"_id={rows['c'].id}") == {"c"}
    _, event = await fhir_get(client, f"AuditEvent/{rows['a'].id}", key)
    assert event["recorded"] == "2026-03-01T18:00:00.000Z" and event["action"] == "R"
    assert event["agent"][0]["who"] == {"reference": f"Practitioner/{doctor.id}"}
    assert event["entity"][0]["what"] == {"reference": f"Patient/{patient1.id}"}
    assert event["subtype"][0]["code"] == "fhir.read" and event["outcome"] == "0"
    assert event["source"]["site"] == world.facility.id
    assert (await fhir_get(client, f"AuditEvent/{rows['other'].id}", key))[0] == 404
    _, everything = await fhir_get(client, "AuditEvent?date=lt2026-04-01", world.keys["platform_admin"])
    assert set(ids(everything)) == {row.id for row in rows.values()}


async def test_every_access_is_audited(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    doctor, patient1, patient3 = world.users["doctor"], world.users["patient1"], world.users["patient3"]
    key = world.keys["doctor"]
    await fhir_get(client, f"Patient/{patient1.id}", key)
    [read] = await audit_rows(client, action="fhir.read", actor_id=doctor.id)
    assert (read.outcome, read.target_type, read.target_id, read.tenant_id, read.actor_role) == \
        (Outcome.SUCCESS, "Patient", patient1.id, world.facility.id, "doctor")
    assert read.request_id and read.ip
    _, bundle = await fhir_get(client, "Patient", key)
    searched = await audit_rows(client, action="fhir.search", actor_id=doctor.id)
    # One row per patient disclosed, so that "who saw this patient" can be answered.
    assert sorted(r.target_id or "" for r in searched) == sorted(ids(bundle))
    assert all(r.outcome == Outcome.SUCCESS and r.tenant_id == world.facility.id for r in searched)
    await fhir_get(client, f"Patient/{patient3.id}", key)
    [denied] = await audit_rows(client, action="fhir.read", outcome=Outcome.DENIED)
    assert (denied.actor_id, denied.target_id) == (doctor.id, patient3.id)
    await fhir_get(client, "AuditEvent", key)
    [refused] = await audit_rows(client, action="fhir.search", target_type="AuditEvent")
    assert (refused.actor_id, refused.outcome) == (doctor.id, Outcome.DENIED)
    await fhir_get(client, "AuditEvent", world.keys["facility_admin"])
    [allowed] = await audit_rows(client, action="fhir.search", target_type="AuditEvent", outcome=Outcome.SUCCESS)
    assert allowed.actor_id == world.users["facility_admin"].id
    await fhir_get(client, "Organization", key)
    assert len(await audit_rows(client, action="fhir.search", target_type="Organization")) == 1
    before = len(await audit_rows(client))
    await fhir_get(client, "metadata")
    assert len(await audit_rows(client)) == before  # metadata discloses nothing about anyone


async def test_links_use_the_public_url(aiohttp_client: Client, tmp_path: Path, sqlite_url: str) -> None:
    """Behind a proxy the server's own address is not what clients reach: links use CAUNOI_PUBLIC_URL."""
    client, world = await start_app(aiohttp_client, tmp_path, sqlite_url, public_url="https://kham.example.vn")
    _, bundle = await fhir_get(client, "Organization?_count=1", world.keys["platform_admin"])
    assert all(link["url"].startswith("https://kham.example.vn/fhir/R4/Organization?") for link in bundle["link"])
    assert bundle["entry"][0]["fullUrl"].startswith("https://kham.example.vn/fhir/R4/Organization/")
    _, statement = await fhir_get(client, "metadata")
    assert statement["implementation"]["url"] == "https://kham.example.vn/fhir/R4"
