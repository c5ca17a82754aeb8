"""Builders: our models as FHIR R4 resources (plain dicts, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from server.auth.models import Role, RoleAssignment, Tenant, TenantKind, User
from server.records.audit import AuditEvent, Outcome

Resource = dict[str, Any]

# Our own code systems, for what no standard one says (tenant slugs, our action names).
TENANT_SYSTEM = "urn:caunoi:tenant"
ACTION_SYSTEM = "urn:caunoi:audit-action"
USER_SYSTEM = "urn:caunoi:user"
ORG_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"
AUDIT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
SOURCE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/security-source-type"

ORG_TYPES: dict[TenantKind, tuple[str, str]] = {
    TenantKind.FACILITY: ("prov", "Healthcare Provider"),
    TenantKind.SCHOOL: ("edu", "Educational Institute"),
}
# practitioner-role has codes for all three of our practitioner roles.
ROLE_CODES: dict[Role, tuple[str, str]] = {
    Role.DOCTOR: ("doctor", "Doctor"),
    Role.NURSE: ("nurse", "Nurse"),
    Role.TEACHER: ("teacher", "Teacher"),
}
# AuditEvent.outcome: 0 success, 4 minor failure (refused, nothing happened), 8 serious failure.
OUTCOME_CODES: dict[Outcome, str] = {Outcome.SUCCESS: "0", Outcome.DENIED: "4", Outcome.FAILURE: "8"}
FHIR_TARGETS = frozenset({"Organization", "Practitioner", "PractitionerRole", "Patient", "AuditEvent"})


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reference(resource_type: str, resource_id: str, display: str | None = None) -> dict[str, str]:
    ref = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        ref["display"] = display
    return ref


def organization(tenant: Tenant) -> Resource:
    code, display = ORG_TYPES[tenant.kind]
    return {
        "resourceType": "Organization",
        "id": tenant.id,
        "identifier": [{"system": TENANT_SYSTEM, "value": tenant.slug}],
        "active": True,
        "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": code, "display": display}],
                  "text": tenant.kind.value}],
        "name": tenant.name,
    }


def _person(user: User) -> Resource:
    person: Resource = {
        "id": user.id,
        "active": user.is_active,
        "name": [{"text": user.display_name}],
        "telecom": [{"system": "email", "value": user.email, "use": "work"}],
    }
    return person


def practitioner(user: User) -> Resource:
    return {"resourceType": "Practitioner", **_person(user)}


def practitioner_role(assignment: RoleAssignment, user: User) -> Resource:
    code, display = ROLE_CODES[assignment.role]
    return {
        "resourceType": "PractitionerRole",
        "id": assignment.id,
        "active": user.is_active,
        "practitioner": reference("Practitioner", user.id, user.display_name),
        "organization": reference("Organization", assignment.tenant_id),
        "code": [{"coding": [{"system": ROLE_SYSTEM, "code": code, "display": display}]}],
    }


def patient(user: User, facility_ids: Iterable[str]) -> Resource:
    resource: Resource = {"resourceType": "Patient", **_person(user)}
    resource["telecom"][0]["use"] = "home"
    facilities = sorted(facility_ids)
    if facilities:
        # FHIR allows one managing organization; a patient of several facilities shows the first.
        resource["managingOrganization"] = reference("Organization", facilities[0])
    if user.locale:
        resource["communication"] = [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": user.locale}]},
                                      "preferred": True}]
    return resource


def _audit_type(action: str) -> dict[str, str]:
    if action.startswith("fhir."):
        return {"system": AUDIT_TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation"}
    if action.startswith("auth."):
        return {"system": DICOM_SYSTEM, "code": "110114", "display": "User Authentication"}
    return {"system": DICOM_SYSTEM, "code": "110100", "display": "Application Activity"}


def _audit_action(action: str) -> str:
    # FHIR's CRUDE: a read is R, a search (and everything else we log) is E, "execute".
    return "R" if action.endswith(".read") else "E"


def _who(actor_id: str, actor_role: str | None) -> dict[str, Any]:
    if actor_role == Role.PATIENT.value:
        return reference("Patient", actor_id)
    if actor_role in {r.value for r in ROLE_CODES}:
        return reference("Practitioner", actor_id)
    return {"identifier": {"system": USER_SYSTEM, "value": actor_id}}


def audit_event(row: AuditEvent) -> Resource:
    agent: dict[str, Any] = {"requestor": True}
    if row.actor_id:
        agent["who"] = _who(row.actor_id, row.actor_role)
    if row.actor_role:
        agent["role"] = [{"text": row.actor_role}]
    if row.ip:
        agent["network"] = {"address": row.ip, "type": "2"}  # 2: IP address
    source: dict[str, Any] = {
        "observer": {"display": "Cầu Nối"},
        "type": [{"system": SOURCE_TYPE_SYSTEM, "code": "4", "display": "Application Server"}],
    }
    if row.tenant_id:
        source["site"] = row.tenant_id
    resource: Resource = {
        "resourceType": "AuditEvent",
        "id": row.id,
        "type": _audit_type(row.action),
        "subtype": [{"system": ACTION_SYSTEM, "code": row.action}],
        "action": _audit_action(row.action),
        "recorded": instant(row.at),
        "outcome": OUTCOME_CODES[row.outcome],
        "outcomeDesc": row.outcome.value,
        "agent": [agent],
        "source": source,
    }
    entities: list[dict[str, Any]] = []
    if row.target_id:
        what = (reference(row.target_type, row.target_id) if row.target_type in FHIR_TARGETS
                else {"identifier": {"system": f"urn:caunoi:{row.target_type or 'target'}", "value": row.target_id}})
        entities.append({"what": what})
    if row.request_id:
        entities.append({"what": {"identifier": {"system": "urn:caunoi:request-id", "value": row.request_id}},
                         "description": "request id"})
    if entities:
        resource["entity"] = entities
    return resource
