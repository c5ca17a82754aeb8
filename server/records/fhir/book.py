"""POST /fhir/R4/Appointment/$book: book a Slot through the same transaction as the scheduling API.

Input, as FHIR operations take it, a Parameters resource:
``slot`` (valueReference Slot/{id}, required), ``patient`` (valueReference Patient/{id}; default: the
caller), ``comment`` (valueString, optional). The seat is claimed by server.scheduling.service.claim_seat
in a transaction of its own, as POST /api/scheduling/resources/{id}/bookings does, so the database's
unique index — not this code — decides who gets a contested slot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from server.auth.models import RoleAssignment, Tenant
from server.auth.sessions import CurrentUser
from server.keys import SESSIONS
from server.records.audit import Outcome, audit_row
from server.records.fhir.appointments import appointment
from server.records.fhir.calendars import parse_slot_id
from server.records.fhir.outcome import FhirError, bad_parameter
from server.records.fhir.resources import Resource as Fhir
from server.records.fhir.search import strip_reference
from server.records.scope import Scope
from server.requestctx import audit_context
from server.scheduling import service
from server.scheduling.models import Resource
from server.scheduling.routes import STAFF, confirm_later

ACTION = "scheduling.booking.create"  # the scheduling API's action: one booking, one name in the log
MAX_BODY = 64 * 1024
JSON_TYPES = frozenset({"application/fhir+json", "application/json"})
# FHIR issue codes for the scheduling errors: taken is a conflict; not a slot at all is a business rule.
ISSUE_CODES = {409: "conflict", 422: "business-rule"}


@dataclass(frozen=True)
class BookRequest:
    resource_id: str
    start_epoch: int
    patient_id: str | None
    comment: str


def _value(parameter: dict[str, Any], field: str, name: str) -> Any:
    if set(parameter) != {"name", field}:
        raise bad_parameter(f"parameter {name} takes {field} only")
    return parameter[field]


def parse_book(body: Any) -> BookRequest:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad_parameter("send a Parameters resource with slot, and optionally patient and comment")
    if set(body) - {"resourceType", "parameter", "id", "meta"}:
        raise bad_parameter("Parameters has unexpected elements")
    given: dict[str, Any] = {}
    for parameter in body.get("parameter") or []:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name not in {"slot", "patient", "comment"}:
            raise bad_parameter(f"unknown parameter {str(name)[:40]!r}: slot, patient and comment are accepted")
        if name in given:
            raise bad_parameter(f"give {name} once")
        field = "valueString" if name == "comment" else "valueReference"
        given[name] = _value(parameter, field, name)
    slot_ref = given.get("slot")
    if not isinstance(slot_ref, dict) or not isinstance(slot_ref.get("reference"), str):
        raise bad_parameter("slot (valueReference to a Slot) is required")
    parsed = parse_slot_id(strip_reference(slot_ref["reference"], ["Slot"]))
    if parsed is None:
        raise bad_parameter("slot is not a Slot of this server (see Slot?schedule=...)")
    patient: str | None = None
    if "patient" in given:
        ref = given["patient"]
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            raise bad_parameter("patient is a valueReference to a Patient")
        patient = strip_reference(ref["reference"], ["Patient"])
    comment = given.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 2000:
        raise bad_parameter("comment is a string of at most 2000 characters")
    return BookRequest(parsed[0], int(parsed[1].timestamp()), patient, comment)


async def read_body(request: web.Request) -> Any:
    if request.content_type not in JSON_TYPES:
        raise FhirError(415, "not-supported", "send application/fhir+json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise FhirError(413, "too-costly", "the body is too large")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise FhirError(413, "too-costly", "the body is too large")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_parameter("the body is not valid JSON") from None


async def book(request: web.Request, user: CurrentUser, scope: Scope) -> Fhir:
    """Book; raises FhirError (404 when the slot's schedule or the patient is not the caller's to book)."""
    wanted = parse_book(await read_body(request))
    sessions = request.app[SESSIONS]
    context = audit_context(request)

    async def refuse(target_type: str, target_id: str, tenant: str | None) -> FhirError:
        async with sessions.begin() as db:
            db.add(audit_row(context, ACTION, Outcome.DENIED, target_type=target_type, target_id=target_id[:64],
                             tenant_id=tenant))
        return FhirError(404, "not-found", f"{target_type} {target_id[:64]} is not known")

    async with sessions() as db:
        resource = await db.get(Resource, wanted.resource_id)
        roles = scope.roles_in(resource.tenant_id) if resource else frozenset()
        if resource is None or not roles:
            raise await refuse("Slot", wanted.resource_id, None)
        subject = wanted.patient_id or user.id
        # The scheduling API's rule: staff book for anyone of the tenant; others only for themselves.
        if not (roles & STAFF or subject == user.id):
            raise await refuse("Patient", subject, resource.tenant_id)
        if subject != user.id and not await db.scalar(select(RoleAssignment.id).where(
                RoleAssignment.user_id == subject, RoleAssignment.tenant_id == resource.tenant_id)):
            raise await refuse("Patient", subject, resource.tenant_id)
        tenant = await db.get(Tenant, resource.tenant_id)
        assert tenant is not None
        try:
            slot = await service.check_slot(db, resource, datetime.fromtimestamp(wanted.start_epoch, UTC))
        except service.SchedulingError as exc:
            raise FhirError(exc.status, ISSUE_CODES.get(exc.status, "invalid"), str(exc)) from None
    # A fresh transaction whose first statement is the seat INSERT (see create_booking: on SQLite it
    # takes the write lock without a stale read snapshot, which would fail instead of waiting).
    async with sessions.begin() as db:
        try:
            booking = await service.claim_seat(db, resource, slot, subject_user_id=subject, actor_id=user.id,
                                               note=wanted.comment)
        except service.SchedulingError as exc:
            failure: service.SchedulingError | None = exc
            booking = None
        else:
            failure = None
        db.add(audit_row(context, ACTION, Outcome.SUCCESS if booking else Outcome.FAILURE, target_type="booking",
                         target_id=booking.id if booking else resource.id, tenant_id=resource.tenant_id))
    if booking is None:
        assert failure is not None
        raise FhirError(failure.status, ISSUE_CODES.get(failure.status, "invalid"), str(failure))
    confirm_later(request.app, booking, resource)
    return appointment(booking, resource, tenant.kind)
