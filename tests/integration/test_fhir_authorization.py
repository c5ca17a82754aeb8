"""FHIR authorization matrix: every route × every role × three tenants, with bearer keys and cookies.

The rules, written out here independently of server/records/scope.py so that a change there shows:
- Organization: members of the tenant (any role), and the platform admin.
- Practitioner, PractitionerRole: staff of the tenant the practitioner works in, and the platform admin.
- Patient: the patient themself, and the facility's admin, doctors and nurses (not the platform admin).
- AuditEvent: the facility or school admin of the row's tenant, and the platform admin.
Anyone else gets 404 (never a hint that the thing exists); without credentials, 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from server.auth.models import Role
from tests.conftest import login
from tests.integration.fhir_support import World, add_audit_row, fhir_get, role_assignment, start_app

Client = Callable[..., Awaitable[TestClient]]
ROLES = ["facility_admin", "doctor", "nurse", "patient1", "patient2", "school_admin", "teacher", "student1",
         "other_admin", "other_doctor", "patient3", "platform_admin"]
# Which tenant each person belongs to, and as what.
FACILITY_STAFF = {"facility_admin", "doctor", "nurse"}
FACILITY_MEMBERS = FACILITY_STAFF | {"patient1", "patient2"}
SCHOOL_STAFF = {"school_admin", "teacher"}
SCHOOL_MEMBERS = SCHOOL_STAFF | {"student1"}
OTHER_STAFF = {"other_admin", "other_doctor"}
OTHER_MEMBERS = OTHER_STAFF | {"patient3"}
PLATFORM = {"platform_admin"}


async def cases(client: TestClient, world: World) -> list[tuple[str, set[str]]]:
    """(path, who may read it) for one resource of each type in each tenant."""
    u = world.users
    facility_audit = await add_audit_row(client, datetime.now(UTC), action="room.join", actor=u["nurse"],
                                         role="nurse", tenant=world.facility)
    school_audit = await add_audit_row(client, datetime.now(UTC), action="room.join", actor=u["teacher"],
                                       role="teacher", tenant=world.school)
    other_audit = await add_audit_row(client, datetime.now(UTC), action="room.join", actor=u["other_doctor"],
                                      role="doctor", tenant=world.other)
    return [
        (f"Organization/{world.facility.id}", FACILITY_MEMBERS | PLATFORM),
        (f"Organization/{world.school.id}", SCHOOL_MEMBERS | PLATFORM),
        (f"Organization/{world.other.id}", OTHER_MEMBERS | PLATFORM),
        (f"Organization/{world.platform.id}", set()),  # the platform is not an organization of care
        (f"Practitioner/{u['doctor'].id}", FACILITY_STAFF | PLATFORM),
        (f"Practitioner/{u['nurse'].id}", FACILITY_STAFF | PLATFORM),
        (f"Practitioner/{u['teacher'].id}", SCHOOL_STAFF | PLATFORM),
        (f"Practitioner/{u['other_doctor'].id}", OTHER_STAFF | PLATFORM),
        (f"Practitioner/{u['facility_admin'].id}", set()),  # an administrator is not a practitioner
        (f"PractitionerRole/{(await role_assignment(client, u['doctor'], Role.DOCTOR)).id}",
         FACILITY_STAFF | PLATFORM),
        (f"PractitionerRole/{(await role_assignment(client, u['teacher'], Role.TEACHER)).id}",
         SCHOOL_STAFF | PLATFORM),
        (f"PractitionerRole/{(await role_assignment(client, u['other_doctor'], Role.DOCTOR)).id}",
         OTHER_STAFF | PLATFORM),
        (f"Patient/{u['patient1'].id}", FACILITY_STAFF | {"patient1"}),
        (f"Patient/{u['patient2'].id}", FACILITY_STAFF | {"patient2"}),
        (f"Patient/{u['patient3'].id}", OTHER_STAFF | {"patient3"}),
        (f"Patient/{u['student1'].id}", set()),  # a student is not a patient
        (f"AuditEvent/{facility_audit.id}", {"facility_admin"} | PLATFORM),
        (f"AuditEvent/{school_audit.id}", {"school_admin"} | PLATFORM),
        (f"AuditEvent/{other_audit.id}", {"other_admin"} | PLATFORM),
        ("AuditEvent", {"facility_admin", "school_admin", "other_admin"} | PLATFORM),
    ]


def searchable(path: str) -> tuple[str, str] | None:
    resource_type, _, resource_id = path.partition("/")
    return (resource_type, resource_id) if resource_id else None


async def test_read_matrix(aiohttp_client: Client, tmp_path: Path, database_url: str) -> None:
    client, world = await start_app(aiohttp_client, tmp_path, database_url)
    matrix = await cases(client, world)
    wrong: list[str] = []
    for path, allowed in matrix:
        status, _ = await fhir_get(client, path)
        if status != 401:
            wrong.append(f"anonymous {path}: {status}, expected 401")
        for role in ROLES:
            status, _ = await fhir_get(client, path, world.keys[role])
            expected = 200 if role in allowed else 404
            if status != expected:
                wrong.append(f"{role} {path}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)


async def test_search_shows_exactly_what_read_allows(aiohttp_client: Client, tmp_path: Path,
                                                     database_url: str) -> None:
    """A search is the union of allowed reads: nothing from another tenant, nobody else's record."""
    client, world = await start_app(aiohttp_client, tmp_path, database_url)
    matrix = await cases(client, world)
    wrong: list[str] = []
    for role in ROLES:
        for resource_type in ("Organization", "Practitioner", "PractitionerRole", "Patient", "AuditEvent"):
            status, bundle = await fhir_get(client, f"{resource_type}?_count=200", world.keys[role])
            if status == 404:
                assert resource_type == "AuditEvent"
                continue
            found = {e["resource"]["id"] for e in bundle.get("entry", [])}
            for path, allowed in matrix:
                target = searchable(path)
                if target is None or target[0] != resource_type:
                    continue
                if (target[1] in found) != (role in allowed):
                    wrong.append(f"{role} search {resource_type}: {path} {'shown' if target[1] in found else 'hidden'}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ["patient1", "doctor", "other_doctor", "school_admin"])
async def test_cookie_session_follows_the_same_rules(sqlite_url: str, tmp_path: Path, aiohttp_client: Client,
                                                     role: str) -> None:
    client, world = await start_app(aiohttp_client, tmp_path, sqlite_url)
    matrix = await cases(client, world)
    await login(client, world.users[role].email)
    for path, allowed in matrix:
        status, _ = await fhir_get(client, path)
        assert status == (200 if role in allowed else 404), f"{role} {path} by cookie: {status}"
