"""Encounter (class VR) from the clinics plugin through the FHIR API, validated with fhir.resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.conftest import login
from tests.integration.fhir_support import fhir_get, start_app, validate


async def test_encounters_are_served_to_staff_and_to_their_patient(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sqlite_url: str
) -> None:
    client, world = await start_app(aiohttp_client, tmp_path, sqlite_url)
    csrf = await login(client, world.users["doctor"].email)
    visit = await (await client.post(f"/api/clinics/{world.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                     json={"patient_id": world.users["patient1"].id, "walk_in": True})).json()
    await client.post(f"/api/clinics/encounters/{visit['id']}/admit", headers={"X-CSRF-Token": csrf})

    _, statement = await fhir_get(client, "metadata")
    assert "Encounter" in {r["type"] for r in statement["rest"][0]["resource"]}
    status, encounter = await fhir_get(client, f"Encounter/{visit['id']}", world.keys["doctor"])
    assert status == 200, encounter
    validate(encounter)
    assert encounter["class"]["code"] == "VR" and encounter["status"] == "in-progress"
    assert encounter["subject"]["reference"] == f"Patient/{world.users['patient1'].id}"
    status, bundle = await fhir_get(client, f"Encounter?patient=Patient/{world.users['patient1'].id}",
                                    world.keys["patient1"])
    assert status == 200 and [e["resource"]["id"] for e in bundle["entry"]] == [visit["id"]]
    validate(bundle)
    for outsider in ("patient2", "teacher"):
        assert (await fhir_get(client, f"Encounter/{visit['id']}", world.keys[outsider]))[0] == 404, outsider
