"""Pages of the visit record.

- ``/clinic/encounters/{id}/record``: the doctor's record page (the guided steps, SOAP, ICD-10 with the
  Thông tư 30 answer, prescription, follow-up booking, versions, signing, printing).
- ``/clinic/encounters/{id}/call``: the doctor's call with the same record beside it, so that the note
  is written while the patient is still on the line (side by side on a laptop, tabs on a phone).
- ``/visit/{id}/call``: the patient's call; it leaves for the summary when the doctor ends the visit.
- ``/visit/{id}/summary``: the patient's summary in plain words, large print.

The clinic's staff see the pages of their facility's visits, the patient the pages of their own; anyone
else gets 404, and the denial is audited (as is every page that shows health data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.consent import active_consent
from clinics.facilities import CONDITIONS
from clinics.models import ConsentPurpose, Encounter, EncounterStatus, PatientProfile
from clinics.patients import age_on
from clinics.visits import is_staff
from server.auth.models import Role, User
from server.auth.sessions import CurrentUser
from server.keys import SESSIONS, SETTINGS
from server.records.audit import Outcome, audit
from server.records.documents.models import Document, DocumentKind, DocumentVersion, Signature
from server.requestctx import USER, audit_context
from server.rooms.access import room_access
from server.rooms.models import Room
from server.scheduling.models import Booking, BookingStatus, Resource

routes = web.RouteTableDef()


async def _page_visit(request: web.Request, action: str, *, staff: bool, patient: bool
                      ) -> tuple[CurrentUser, Encounter]:
    """The visit in the URL for whom this page is meant; a login first, 404 (audited) for anyone else."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    encounter_id = request.match_info["encounter_id"]
    async with request.app[SESSIONS]() as db:
        encounter = await db.get(Encounter, encounter_id)
    allowed = encounter is not None and (
        (staff and is_staff(user, encounter.tenant_id)) or (patient and encounter.patient_id == user.id))
    if encounter is None or not allowed:
        await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type="encounter",
                    target_id=encounter_id[:64])
        raise web.HTTPNotFound()
    return user, encounter


async def _viewed(request: web.Request, action: str, encounter: Encounter) -> None:
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.SUCCESS, target_type="encounter",
                target_id=encounter.id, tenant_id=encounter.tenant_id)


def _local(request: web.Request, moment: datetime, zone: str | None = None) -> datetime:
    return moment.astimezone(ZoneInfo(zone or request.app[SETTINGS].timezone))


async def _record_form(request: web.Request, db: AsyncSession, user: CurrentUser, encounter: Encounter
                       ) -> dict[str, Any]:
    """What the record form shows from the server: the patient's identity to check and the consent on
    record (the patient's consent API is theirs alone, so the doctor's page carries it)."""
    patient = await db.get(User, encounter.patient_id)
    profile = await db.scalar(select(PatientProfile).where(PatientProfile.user_id == encounter.patient_id,
                                                           PatientProfile.tenant_id == encounter.tenant_id))
    consent = await active_consent(db, encounter.tenant_id, encounter.patient_id, ConsentPurpose.REMOTE_EXAMINATION)
    conditions = request.app[CONDITIONS]
    assert patient is not None
    return {
        "encounter": encounter,
        "patient": patient,
        "profile": profile,
        "age": age_on(profile.birth_date, date.today()) if profile else None,
        "consent": consent,
        "consent_at": _local(request, consent.decided_at) if consent else None,
        "visit_start": _local(request, encounter.scheduled_start),
        "timezone": request.app[SETTINGS].timezone,
        "can_write": user.has_role(Role.DOCTOR, encounter.tenant_id) or user.has_role(Role.NURSE, encounter.tenant_id),
        "list_info": {"verified": len(conditions.conditions), "total": conditions.rows_total,
                      "complete": conditions.complete, "version": conditions.version},
    }


@routes.get("/clinic/encounters/{encounter_id}/record")
@aiohttp_jinja2.template("clinics/record.html")
async def record_page(request: web.Request) -> dict[str, Any]:
    """The record alone: after the call, to finish, sign or print it; or in a tab of its own."""
    user, encounter = await _page_visit(request, "clinic.record.page", staff=True, patient=False)
    async with request.app[SESSIONS]() as db:
        context = await _record_form(request, db, user, encounter)
        room = await db.get(Room, encounter.room_id)
        in_call = room is not None and await room_access(db, user.id, room.name) is not None
    await _viewed(request, "clinic.record.page", encounter)
    return {**context, "view": "page", "may_join": in_call}


@routes.get("/clinic/encounters/{encounter_id}/call")
@aiohttp_jinja2.template("clinics/call.html")
async def doctor_call_page(request: web.Request) -> dict[str, Any]:
    """The call with the record beside it; only for staff who are members of the visit's room."""
    user, encounter = await _page_visit(request, "clinic.call.page", staff=True, patient=False)
    async with request.app[SESSIONS]() as db:
        room = await db.get(Room, encounter.room_id)
        access = await room_access(db, user.id, room.name) if room else None
        context = await _record_form(request, db, user, encounter)
    if access is None:
        await audit(request.app[SESSIONS], audit_context(request), "clinic.call.page", Outcome.DENIED,
                    target_type="encounter", target_id=encounter.id, tenant_id=encounter.tenant_id)
        raise web.HTTPNotFound()
    if encounter.status not in (EncounterStatus.WAITING, EncounterStatus.IN_PROGRESS, EncounterStatus.PLANNED):
        raise web.HTTPFound(f"/clinic/encounters/{encounter.id}/record")  # the call is over: the record only
    await _viewed(request, "clinic.call.page", encounter)
    return {**context, "view": "call", "may_join": True, "room": access[0], "grants": access[1]}


@routes.get("/visit/{encounter_id}/call")
@aiohttp_jinja2.template("clinics/patient_call.html")
async def patient_call_page(request: web.Request) -> dict[str, Any]:
    """The patient's call; it moves on to the summary by itself when the doctor ends the visit."""
    user, encounter = await _page_visit(request, "clinic.visit.view", staff=False, patient=True)
    if encounter.status == EncounterStatus.FINISHED:
        raise web.HTTPFound(f"/visit/{encounter.id}/summary")
    if encounter.status != EncounterStatus.IN_PROGRESS:
        raise web.HTTPFound(f"/visit/{encounter.id}")  # not admitted (yet): the waiting room
    async with request.app[SESSIONS]() as db:
        room = await db.get(Room, encounter.room_id)
        access = await room_access(db, user.id, room.name) if room else None
    if access is None:
        raise web.HTTPNotFound()
    return {"encounter": encounter, "room": access[0], "grants": access[1]}


@dataclass(frozen=True, slots=True)
class FollowUpTime:
    starts_at: datetime  # local time of the booked calendar
    cancelled: bool


async def _current_record(db: AsyncSession, encounter: Encounter
                          ) -> tuple[Document, DocumentVersion, list[str]] | None:
    """The record's current version and who signed it (names), or None when nothing was saved yet."""
    document = await db.scalar(select(Document).where(Document.context_type == "encounter",
                                                      Document.context_id == encounter.id,
                                                      Document.kind == DocumentKind.NOTE))
    if document is None:
        return None
    version = await db.scalar(select(DocumentVersion).where(DocumentVersion.document_id == document.id,
                                                            DocumentVersion.version == document.current_version))
    if version is None or version.text is None:
        return None
    signers = (await db.execute(select(User.display_name).join(Signature, Signature.signer_id == User.id).where(
        Signature.document_id == document.id, Signature.version == version.version))).scalars().all()
    return document, version, list(signers)


async def _follow_up_time(db: AsyncSession, encounter: Encounter, booking_id: str | None, default_zone: str
                          ) -> FollowUpTime | None:
    if not booking_id:
        return None
    booking = await db.get(Booking, booking_id)
    # Only a booking of this facility for this patient: the id comes from the record's JSON.
    if booking is None or booking.tenant_id != encounter.tenant_id or booking.subject_user_id != encounter.patient_id:
        return None
    resource = await db.get(Resource, booking.resource_id)
    zone = ZoneInfo(resource.timezone if resource else default_zone)
    return FollowUpTime(booking.starts_at.astimezone(zone), booking.status != BookingStatus.BOOKED)


@routes.get("/visit/{encounter_id}/summary")
@aiohttp_jinja2.template("clinics/summary.html")
async def summary_page(request: web.Request) -> dict[str, Any]:
    """What the patient takes home: the diagnosis in plain words, what to do, the medicines, the
    follow-up and the PDF. The patient sees it once the visit has ended; the clinic at any time."""
    user, encounter = await _page_visit(request, "clinic.summary.view", staff=True, patient=True)
    ready = encounter.status == EncounterStatus.FINISHED or is_staff(user, encounter.tenant_id)
    record: dict[str, Any] | None = None
    signers: list[str] = []
    version = 0
    follow_up: FollowUpTime | None = None
    async with request.app[SESSIONS]() as db:
        current = await _current_record(db, encounter) if ready else None
        if current is not None:
            _document, row, signers = current
            assert row.text is not None
            record, version = json.loads(row.text), row.version
            follow_up = await _follow_up_time(db, encounter, (record.get("follow_up") or {}).get("booking_id"),
                                              request.app[SETTINGS].timezone)
        doctor = await db.get(User, encounter.practitioner_id) if encounter.practitioner_id else None
    conditions = request.app[CONDITIONS]
    diagnoses = []
    for diagnosis in (record or {}).get("diagnoses", []):
        listed = conditions.decide(diagnosis["icd10"]).condition
        diagnoses.append({"code": diagnosis["icd10"], "primary": diagnosis.get("primary", False),
                          "name": diagnosis.get("text") or (listed.name if listed else "")})
    diagnoses.sort(key=lambda d: not d["primary"])
    await _viewed(request, "clinic.summary.view", encounter)
    return {"encounter": encounter, "ready": ready, "record": record, "version": version, "signers": signers,
            "diagnoses": diagnoses, "follow_up": follow_up, "doctor": doctor,
            "visit_start": _local(request, encounter.scheduled_start),
            "is_patient": encounter.patient_id == user.id}
