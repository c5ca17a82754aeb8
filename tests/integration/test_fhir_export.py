"""FHIR Bulk Data export over real HTTP: kick-off, status with progress, manifest, NDJSON files (every
line validated with fhir.resources), who may export and download, cancellation, expiry."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.keys import SETTINGS
from server.records.audit import Outcome
from server.records.fhir import export
from server.records.fhir.calendars import slot_id
from server.records.fhir.queries import Context, Found, page
from server.records.fhir.search import SearchRequest
from server.records.fhir.types import ResourceType, register
from server.records.scope import Scope
from server.scheduling.models import ResourceKind
from tests.conftest import login, make_settings, seed
from tests.integration.fhir_support import (
    FHIR_JSON,
    World,
    add_audit_row,
    audit_rows,
    bearer,
    book_body,
    build_world,
    fhir_get,
    fhir_post,
    open_resource,
    start_app,
)
from tests.integration.fhir_support import validate as validate_resource
from tests.integration.scheduling_helpers import day_after_tomorrow_at

Client = Callable[..., Awaitable[TestClient]]
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
async def app_world(aiohttp_client: Client, tmp_path: Path, database_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, database_url)


@pytest.fixture
async def sqlite_world(aiohttp_client: Client, tmp_path: Path, sqlite_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, sqlite_url)


def local(url: str) -> str:
    """Links are on the public URL; the test server listens elsewhere."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def kick_off(client: TestClient, key: str, query: str = "") -> str:
    response = await client.get(f"/fhir/R4/$export{query}", headers={**bearer(key), **ASYNC})
    assert response.status == 202, await response.text()
    validate_resource(await response.json(content_type=None))
    return local(response.headers["Content-Location"])


async def finished(client: TestClient, key: str, status_url: str) -> dict[str, Any]:
    for _ in range(200):
        response = await client.get(status_url, headers=bearer(key))
        if response.status == 200:
            assert response.content_type == "application/json"
            manifest: dict[str, Any] = await response.json()
            return manifest
        assert response.status == 202, await response.text()
        assert response.headers["X-Progress"]
        await asyncio.sleep(0.05)
    raise AssertionError("the export did not finish")


async def ndjson(client: TestClient, key: str, url: str) -> list[dict[str, Any]]:
    response = await client.get(local(url), headers=bearer(key))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/fhir+ndjson"
    lines = (await response.text()).splitlines()
    resources = [json.loads(line) for line in lines]
    for resource in resources:
        validate_resource(resource)  # every line, every type
    return resources


async def test_export_of_a_facility(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    u = world.users
    consult = await open_resource(client, world.facility, "BS. An", user=u["doctor"])
    status, booked = await fhir_post(client, "Appointment/$book",
                                     book_body(slot_id(consult.id, day_after_tomorrow_at(9))), world.keys["patient1"])
    assert status == 201
    elsewhere = await open_resource(client, world.other, "Xã Khác", user=u["other_doctor"], kind=ResourceKind.SERVICE)
    await add_audit_row(client, datetime.now(UTC), action="room.join", actor=u["nurse"], role="nurse",
                        tenant=world.facility)
    key = world.keys["facility_admin"]

    status_url = await kick_off(client, key)
    manifest = await finished(client, key, status_url)
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"].endswith("/fhir/R4/$export")
    by_type = {entry["type"]: entry for entry in manifest["output"]}
    assert "Slot" not in by_type  # computed, not stored: not exported
    assert {"Organization", "Practitioner", "PractitionerRole", "Patient", "HealthcareService", "Schedule",
            "Appointment", "AuditEvent"} <= set(by_type)
    files = {name: await ndjson(client, key, entry["url"]) for name, entry in by_type.items()}
    for name, resources in files.items():
        assert len(resources) == by_type[name]["count"]
        assert {r["resourceType"] for r in resources} == {name}
    assert {r["id"] for r in files["Organization"]} == {world.facility.id}
    assert {r["id"] for r in files["Patient"]} == {u["patient1"].id, u["patient2"].id}
    assert {r["id"] for r in files["Appointment"]} == {booked["id"]}
    assert consult.id in {r["id"] for r in files["Schedule"]}
    assert elsewhere.id not in {r["id"] for r in files["HealthcareService"]}
    assert all(r["source"]["site"] == world.facility.id for r in files["AuditEvent"])

    # One audit row per patient exported, as a search writes one per patient returned.
    exported = await audit_rows(client, action="fhir.export", target_type="Patient")
    assert {r.target_id for r in exported} == {u["patient1"].id, u["patient2"].id}
    assert all(r.actor_id == u["facility_admin"].id and r.tenant_id == world.facility.id for r in exported)
    assert len(await audit_rows(client, action="fhir.export.download")) == len(files)

    # Only the same user sees the status and the files: another administrator gets 404.
    for path in [status_url, local(by_type["Patient"]["url"])]:
        response = await client.get(path, headers=bearer(world.keys["other_admin"]))
        assert response.status == 404 and response.content_type == FHIR_JSON
    # DELETE removes the job and its files.
    response = await client.delete(status_url, headers=bearer(key))
    assert response.status == 202
    assert (await client.get(status_url, headers=bearer(key))).status == 404
    assert (await client.get(local(by_type["Patient"]["url"]), headers=bearer(key))).status == 404


async def test_type_filter_and_parameters(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    key = world.keys["school_admin"]
    manifest = await finished(client, key, await kick_off(client, key, "?_type=Organization,Practitioner"
                                                                       "&_outputFormat=application/fhir+ndjson"))
    assert [entry["type"] for entry in manifest["output"]] == ["Organization", "Practitioner"]
    [school] = await ndjson(client, key, manifest["output"][0]["url"])
    assert school["id"] == world.school.id
    for query in ["?_type=Slot", "?_type=Observation", "?_since=2026-01-01", "?_outputFormat=text/csv",
                  "?_type=Patient&_type=Practitioner"]:
        response = await client.get(f"/fhir/R4/$export{query}", headers={**bearer(key), **ASYNC})
        assert response.status == 400, query
        assert (await response.json(content_type=None))["issue"][0]["code"] == "invalid"
    response = await client.get("/fhir/R4/$export", headers=bearer(key))  # no Prefer: respond-async
    assert response.status == 400


async def test_who_may_export(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    for who in ("doctor", "patient1", "teacher", "platform_admin"):
        response = await client.get("/fhir/R4/$export", headers={**bearer(world.keys[who]), **ASYNC})
        assert response.status == 403, who
        validate_resource(await response.json(content_type=None))
    denied = await audit_rows(client, action="fhir.export", outcome=Outcome.DENIED)
    assert len(denied) == 4
    # A session cookie is not enough, even for an administrator with a CSRF token.
    csrf = await login(client, world.users["facility_admin"].email)
    response = await client.get("/fhir/R4/$export", headers={**ASYNC, "X-CSRF-Token": csrf})
    assert response.status == 401
    response = await client.get("/fhir/R4/$export")
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_progress_cancel_and_expiry(sqlite_world: tuple[TestClient, World],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    client, world = sqlite_world
    key = world.keys["facility_admin"]
    release = asyncio.Event()
    original = export._write_type

    async def slow(*args: Any) -> int:
        await release.wait()
        return await original(*args)

    monkeypatch.setattr(export, "_write_type", slow)
    status_url = await kick_off(client, key, "?_type=Patient,Organization")
    for _ in range(100):  # the task writes its progress as it starts
        response = await client.get(status_url, headers=bearer(key))
        assert response.status == 202
        validate_resource(await response.json(content_type=None))
        if response.headers["X-Progress"] != "starting":
            break
        await asyncio.sleep(0.02)
    assert response.headers["X-Progress"] == "Organization (1 of 2 types)"  # in the order of the CapabilityStatement
    # One export at a time per user.
    response = await client.get("/fhir/R4/$export", headers={**bearer(key), **ASYNC})
    assert response.status == 429
    # Cancel while running: the task stops, the directory goes.
    jobs = client.app[export.EXPORTS]
    [task] = list(jobs.tasks.values())
    response = await client.delete(status_url, headers=bearer(key))
    assert response.status == 202
    await asyncio.wait([task], timeout=5)
    assert task.cancelled()
    assert (await client.get(status_url, headers=bearer(key))).status == 404
    assert [row.target_id for row in await audit_rows(client, action="fhir.export.cancel")] == \
        [status_url.rsplit("/", 1)[1]]
    # A finished export is kept for the TTL, then swept with its files.
    release.set()
    status_url = await kick_off(client, key, "?_type=Patient")
    await finished(client, key, status_url)
    job_dir = jobs.root / status_url.rsplit("/", 1)[1]
    assert (job_dir / "Patient.ndjson").is_file()
    assert jobs.sweep(now=time.time() + 60) == 0
    assert jobs.ttl == client.app[SETTINGS].fhir_export_ttl_seconds == 3600
    assert jobs.sweep(now=time.time() + jobs.ttl + 1) == 1
    assert not job_dir.exists()
    assert (await client.get(status_url, headers=bearer(key))).status == 404


async def test_a_plugin_type_is_served_listed_and_exported(aiohttp_client: Client, tmp_path: Path,
                                                           sqlite_url: str) -> None:
    """register() is how a plugin (clinics: Encounter) joins the API without server/ importing it."""
    app = create_app(make_settings(tmp_path, sqlite_url))

    async def encounters(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
        visit = {"resourceType": "Encounter", "id": "visit-1", "status": "in-progress",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"}}
        ids = search.any_of("_id")
        shown = [(visit, facility_id)] if scope.patients and (ids is None or "visit-1" in ids) else []
        return page(shown, search)

    register(app, ResourceType("Encounter", encounters, {"_id": ("token", "the logical id")}))
    with pytest.raises(ValueError):
        register(app, ResourceType("Patient", encounters, {}))
    client = await aiohttp_client(app)
    world = await build_world(client, await seed(client.app))
    facility_id = world.facility.id
    _, statement = await fhir_get(client, "metadata")
    assert "Encounter" in {r["type"] for r in statement["rest"][0]["resource"]}
    status, visit = await fhir_get(client, "Encounter/visit-1", world.keys["doctor"])
    assert status == 200 and visit["class"]["code"] == "VR"
    assert (await fhir_get(client, "Encounter/visit-1", world.keys["teacher"]))[0] == 404
    key = world.keys["facility_admin"]
    manifest = await finished(client, key, await kick_off(client, key, "?_type=Encounter"))
    [entry] = manifest["output"]
    assert [r["id"] for r in await ndjson(client, key, entry["url"])] == ["visit-1"]
