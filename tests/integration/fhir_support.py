"""Shared by the FHIR, API key and audit page tests: a second facility, a platform admin, API keys,
audit rows at chosen times, and validation of every FHIR resource with fhir.resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from server.app import create_app
from server.auth.accounts import assign_role, create_user
from server.auth.apikeys import create_api_key
from server.auth.models import Role, RoleAssignment, Tenant, TenantKind, User
from server.auth.passwords import hash_password
from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditContext, AuditEvent, Outcome, audit_row
from server.scheduling.models import AvailabilityRule, Resource, ResourceKind
from tests.conftest import DEMO_PASSWORD, make_settings, seed

FHIR_JSON = "application/fhir+json"
# fhir.resources 8 models R4B (4.3.0) and STU3, not 4.0.1 itself; for every type served here R4B is
# the R4 definition unchanged, so a resource valid in R4B is valid in R4.
SERVED = {"Organization", "Practitioner", "PractitionerRole", "Patient", "AuditEvent", "HealthcareService",
          "Schedule", "Slot", "Appointment", "DocumentReference",
          "Encounter", "Condition", "MedicationRequest", "Consent"}  # the last four: clinics plugin (clinics/fhir/)
# Slots are computed per Schedule: a Slot search needs schedule=..., so "search everything" skips it.
SEARCHABLE_ALONE = SERVED - {"Slot"}


def validate(resource: dict[str, Any]) -> None:
    """Raise unless ``resource`` (and every entry, if a Bundle) is a valid FHIR resource."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for entry in resource.get("entry", []):
        validate(entry["resource"])


@dataclass
class World:
    """The demo (facility A, school) plus facility B with its own people, and a platform admin."""

    demo: Demo
    other: Tenant
    platform: Tenant
    users: dict[str, User] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def facility(self) -> Tenant:
        return self.demo.facility

    @property
    def school(self) -> Tenant:
        return self.demo.school


OTHER_PEOPLE = [
    ("other_admin", "quantri@khac.demo", "Admin Khác", Role.FACILITY_ADMIN, "other"),
    ("other_doctor", "bacsi@khac.demo", "BS. Đỗ Văn Khác", Role.DOCTOR, "other"),
    ("patient3", "benhnhan3@khac.demo", "Nguyễn Thị Ba", Role.PATIENT, "other"),
    ("platform_admin", "vanhanh@caunoi.demo", "Vận Hành", Role.PLATFORM_ADMIN, "platform"),
]


@cache
def demo_hash() -> str:
    return hash_password(DEMO_PASSWORD)  # hashing once keeps each test's set-up fast


async def build_world(client: TestClient, demo: Demo) -> World:
    sessions = client.app[SESSIONS]
    async with sessions.begin() as db:
        other = Tenant(kind=TenantKind.FACILITY, name="Trạm Y tế xã Khác", slug="tyt-khac")
        platform = Tenant(kind=TenantKind.PLATFORM, name="Cầu Nối", slug="platform")
        db.add_all([other, platform])
        await db.flush()
        world = World(demo=demo, other=other, platform=platform, users=dict(demo.users))
        tenants = {"other": other, "platform": platform}
        for handle, email, name, role, tenant in OTHER_PEOPLE:
            user = await create_user(db, email=email, display_name=name, password_hash=demo_hash())
            await assign_role(db, user, tenants[tenant], role)
            world.users[handle] = user
    async with sessions.begin() as db:
        for handle, user in world.users.items():
            world.keys[handle], _ = await create_api_key(db, user.email, f"test {handle}")
    return world


async def start_app(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str,
                    **settings: object) -> tuple[TestClient, World]:
    client = await aiohttp_client(create_app(make_settings(tmp_path, database_url, **settings)))
    demo = await seed(client.app)
    return client, await build_world(client, demo)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def role_assignment(client: TestClient, user: User, role: Role) -> RoleAssignment:
    async with client.app[SESSIONS]() as db:
        return (await db.execute(select(RoleAssignment).where(RoleAssignment.user_id == user.id,
                                                              RoleAssignment.role == role))).scalar_one()


async def add_audit_row(client: TestClient, at: datetime, *, action: str = "test.action",
                        outcome: Outcome = Outcome.SUCCESS, actor: User | None = None, role: str | None = None,
                        target_type: str | None = None, target_id: str | None = None,
                        tenant: Tenant | None = None, user_agent: str | None = None) -> AuditEvent:
    context = AuditContext(actor_id=actor.id if actor else None, actor_role=role, ip="192.0.2.7",
                           user_agent=user_agent, request_id="req-test-0001")
    row = audit_row(context, action, outcome, target_type=target_type, target_id=target_id,
                    tenant_id=tenant.id if tenant else None)
    row.at = at
    async with client.app[SESSIONS].begin() as db:
        db.add(row)
    return row


async def audit_rows(client: TestClient, **equal: object) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    for name, value in equal.items():
        query = query.where(getattr(AuditEvent, name) == value)
    async with client.app[SESSIONS]() as db:
        return list((await db.execute(query)).scalars().all())


async def fhir_get(client: TestClient, path: str, key: str | None = None, **kwargs: Any) -> tuple[int, Any]:
    """GET a /fhir/R4 path; checks the content type and validates the body, whatever the status."""
    headers = bearer(key) if key else {}
    response = await client.get(path if path.startswith("http") or path.startswith("/") else f"/fhir/R4/{path}",
                                headers=headers, **kwargs)
    assert response.content_type == FHIR_JSON, f"{path}: content type {response.content_type}"
    body = await response.json(content_type=None)
    validate(body)
    if response.status >= 400:
        assert body["resourceType"] == "OperationOutcome", body
    return response.status, body


async def fhir_post(client: TestClient, path: str, body: Any, key: str | None = None,
                    headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST to a /fhir/R4 path; checks the content type and validates the answer, whatever the status."""
    response = await client.post(path if path.startswith("/") else f"/fhir/R4/{path}", json=body,
                                 headers={**(bearer(key) if key else {}), **(headers or {}),
                                          "Content-Type": "application/fhir+json"})
    assert response.content_type == FHIR_JSON, f"{path}: content type {response.content_type}"
    answer = await response.json(content_type=None)
    validate(answer)
    if response.status >= 400:
        assert answer["resourceType"] == "OperationOutcome", answer
    return response.status, answer


async def open_resource(client: TestClient, tenant: Tenant, name: str, *, user: User | None = None,
                        kind: ResourceKind = ResourceKind.PRACTITIONER, capacity: int = 1) -> Resource:
    """A resource open every day 07:30–11:30 Vietnam time, in 30-minute slots, bookable right away."""
    async with client.app[SESSIONS].begin() as db:
        resource = Resource(tenant_id=tenant.id, kind=kind, name=name, user_id=user.id if user else None,
                            slot_minutes=30, min_notice_minutes=0, capacity=capacity)
        db.add(resource)
        await db.flush()
        db.add_all(AvailabilityRule(resource_id=resource.id, weekday=d, start_time=time(7, 30), end_time=time(11, 30))
                   for d in range(7))
    return resource


def book_body(slot: str, patient: str | None = None, comment: str | None = None) -> dict[str, object]:
    parameters: list[dict[str, object]] = [{"name": "slot", "valueReference": {"reference": f"Slot/{slot}"}}]
    if patient:
        parameters.append({"name": "patient", "valueReference": {"reference": f"Patient/{patient}"}})
    if comment:
        parameters.append({"name": "comment", "valueString": comment})
    return {"resourceType": "Parameters", "parameter": parameters}
