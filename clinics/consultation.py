"""Inter-facility consultation (hội chẩn, Thông tư 49/2017): a station asks a department of another
facility about one of its patients; the consulted facility accepts or declines, schedules a session
with a chair, a secretary and members from both facilities, in a room of its own.

Who sees what:
- the requesting facility's staff: everything (the patient is theirs);
- the consulted facility's doctors and administrators: the request's header (facility, department,
  urgency, reason) so they can accept, decline and schedule — never the patient's identity, history,
  findings, questions or attachments;
- the participants (any facility): everything, through this consultation only;
- anyone else (a third facility, the patient, a non-participating nurse): 404, audited.
The minutes (biên bản) live in clinics/consultation_minutes.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from aiohttp import BodyPartReader, web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.consent import active_consent
from clinics.facilities import STAFF
from clinics.models import (
    ConsentPurpose,
    Consultation,
    ConsultationParticipant,
    ConsultationQuestion,
    ConsultationRole,
    ConsultationStatus,
    Encounter,
    FacilityProfile,
    PatientProfile,
)
from server.auth.models import Role, RoleAssignment, Tenant, TenantKind, User
from server.auth.sessions import CurrentUser
from server.db.base import utcnow
from server.errors import ApiError
from server.keys import DOCUMENT_STORAGE, SESSIONS, SETTINGS
from server.records.audit import Outcome, audit, audit_row
from server.records.documents import service as documents
from server.records.documents.content import ContentRefused
from server.records.documents.models import Document, DocumentKind, DocumentVersion, SubjectType
from server.requestctx import USER, audit_context
from server.rooms.models import Room, RoomKind, RoomMember, RoomRole
from server.validation import parse_body

routes = web.RouteTableDef()
TRIAGE = (Role.FACILITY_ADMIN, Role.DOCTOR)  # who at the consulted facility handles incoming requests
CLINICIANS = (Role.DOCTOR, Role.NURSE)
OPEN_ROOM = (ConsultationStatus.SCHEDULED, ConsultationStatus.IN_SESSION, ConsultationStatus.CONCLUDED)
CLOSED = (ConsultationStatus.DECLINED, ConsultationStatus.SIGNED)
CONTEXT = "consultation"  # Document.context_type of the attachments


class ConsultationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    consulted_tenant_id: str = Field(max_length=36)
    department: str = Field(min_length=1, max_length=200)
    patient_id: str = Field(max_length=36)
    encounter_id: str | None = Field(default=None, max_length=36)
    urgency: Literal["routine", "urgent", "emergency"] = "routine"
    reason: str = Field(min_length=1, max_length=2000)
    history: str = Field(default="", max_length=10000)
    findings: str = Field(default="", max_length=10000)
    questions: list[str] = Field(min_length=1, max_length=20)

    @field_validator("questions")
    @classmethod
    def _questions(cls, value: list[str]) -> list[str]:
        value = [q.strip() for q in value]
        if any(not q or len(q) > 1000 for q in value):
            raise ValueError("each question has 1 to 1000 characters")
        return value


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheduled_start: AwareDatetime
    chair_id: str = Field(max_length=36)
    secretary_id: str = Field(max_length=36)
    member_ids: list[str] = Field(default_factory=list, max_length=20)


@dataclass(frozen=True, slots=True)
class Access:
    """What the current user may do with one consultation."""

    consultation: Consultation
    user: CurrentUser
    requesting_staff: bool
    triage: bool  # a doctor or administrator of the consulted facility
    participant: ConsultationParticipant | None

    @property
    def full(self) -> bool:
        """May see the patient's data: the requesting facility's staff and the participants."""
        return self.requesting_staff or self.participant is not None

    @property
    def role(self) -> ConsultationRole | None:
        return self.participant.role if self.participant else None


def current_user(request: web.Request) -> CurrentUser:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return user


def _staff(user: CurrentUser, tenant_id: str, roles: tuple[Role, ...] | frozenset[Role] = STAFF) -> bool:
    return any(user.has_role(role, tenant_id) for role in roles)


async def deny(request: web.Request, action: str, target_id: str) -> ApiError:
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type="consultation",
                target_id=target_id[:64])
    return ApiError(404, "not_found", "no such consultation")


async def access_to(request: web.Request, db: AsyncSession, action: str, *, full: bool = True,
                    lock: bool = False) -> Access:
    """The consultation in the URL and the user's standing in it; 404 (audited) for anyone who may not
    see it at all, or (``full``) may not see the patient's data."""
    user = current_user(request)
    consultation_id = request.match_info["consultation_id"]
    consultation = await db.get(Consultation, consultation_id, with_for_update=lock)
    if consultation is None:
        raise await deny(request, action, consultation_id)
    participant = await db.scalar(select(ConsultationParticipant).where(
        ConsultationParticipant.consultation_id == consultation.id, ConsultationParticipant.user_id == user.id))
    access = Access(consultation, user, _staff(user, consultation.tenant_id),
                    _staff(user, consultation.consulted_tenant_id, TRIAGE), participant)
    if not (access.full or (access.triage and not full)):
        raise await deny(request, action, consultation_id)
    return access


def audit_success(request: web.Request, action: str, consultation: Consultation) -> object:
    # Recorded under the requesting facility: the patient's record is there.
    return audit_row(audit_context(request), action, Outcome.SUCCESS, target_type="consultation",
                     target_id=consultation.id, tenant_id=consultation.tenant_id)


async def _telemedicine_facility(db: AsyncSession, tenant_id: str) -> Tenant | None:
    tenant = await db.get(Tenant, tenant_id)
    profile = await db.get(FacilityProfile, tenant_id)
    if tenant is None or tenant.kind != TenantKind.FACILITY or profile is None or not profile.telemedicine_enabled:
        return None
    return tenant


@routes.get("/api/clinics/{tenant_id}/consultation-targets")
async def targets(request: web.Request) -> web.Response:
    """The facilities a station may ask: other health facilities that announced telemedicine."""
    user = current_user(request)
    tenant_id = request.match_info["tenant_id"]
    if not _staff(user, tenant_id):
        raise await deny(request, "clinic.consultation.targets", tenant_id)
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(select(Tenant).join(FacilityProfile, FacilityProfile.tenant_id == Tenant.id).where(
            Tenant.kind == TenantKind.FACILITY, Tenant.id != tenant_id, FacilityProfile.telemedicine_enabled)
            .order_by(Tenant.name))).scalars().all()
    return web.json_response({"facilities": [{"id": t.id, "name": t.name} for t in rows]})


@routes.post("/api/clinics/{tenant_id}/consultation-requests")
async def create_request(request: web.Request) -> web.Response:
    """A station asks another facility's department about one of its patients."""
    user = current_user(request)
    tenant_id = request.match_info["tenant_id"]
    if not _staff(user, tenant_id):
        raise await deny(request, "clinic.consultation.create", tenant_id)
    body = await parse_body(request, ConsultationIn)
    async with request.app[SESSIONS].begin() as db:
        if body.consulted_tenant_id == tenant_id or await _telemedicine_facility(db, body.consulted_tenant_id) is None:
            raise ApiError(422, "invalid_facility", "ask another health facility that offers remote consultation")
        if await db.scalar(select(PatientProfile.id).where(PatientProfile.user_id == body.patient_id,
                                                           PatientProfile.tenant_id == tenant_id)) is None:
            raise ApiError(422, "invalid_patient", "not a patient of this facility")
        if body.encounter_id is not None:
            encounter = await db.get(Encounter, body.encounter_id)
            if encounter is None or encounter.tenant_id != tenant_id or encounter.patient_id != body.patient_id:
                raise ApiError(422, "invalid_encounter", "not a visit of this patient at this facility")
        if await active_consent(db, tenant_id, body.patient_id, ConsentPurpose.DATA_SHARING_CONSULTATION) is None:
            raise ApiError(409, "consent_required",
                           "the patient has not agreed to share their data for a consultation")
        consultation = Consultation(
            tenant_id=tenant_id, consulted_tenant_id=body.consulted_tenant_id, department=body.department.strip(),
            patient_id=body.patient_id, encounter_id=body.encounter_id, urgency=body.urgency, reason=body.reason,
            history=body.history, findings=body.findings, requested_by=user.id)
        db.add(consultation)
        await db.flush()
        db.add_all(ConsultationQuestion(consultation_id=consultation.id, position=n, text=text)
                   for n, text in enumerate(body.questions, start=1))
        db.add(ConsultationParticipant(consultation_id=consultation.id, user_id=user.id, tenant_id=tenant_id,
                                       role=ConsultationRole.REQUESTER))
        db.add(audit_success(request, "clinic.consultation.create", consultation))
    return web.json_response({"id": consultation.id, "status": consultation.status.value}, status=201)


async def _names(db: AsyncSession, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return dict((await db.execute(select(User.id, User.display_name).where(User.id.in_(ids)))).all())


def header_json(c: Consultation, names: dict[str, str]) -> dict[str, object]:
    """What the consulted facility's triage sees before taking part: no patient data."""
    return {
        "id": c.id, "status": c.status.value, "urgency": c.urgency, "department": c.department,
        "reason": c.reason, "requesting_facility": {"id": c.tenant_id, "name": names.get(c.tenant_id, "")},
        "consulted_facility": {"id": c.consulted_tenant_id, "name": names.get(c.consulted_tenant_id, "")},
        "scheduled_start": c.scheduled_start.isoformat() if c.scheduled_start else None,
        "decline_reason": c.decline_reason, "created_at": c.created_at.isoformat(),
    }


async def _tenant_names(db: AsyncSession, *ids: str) -> dict[str, str]:
    return dict((await db.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(ids)))).all())


async def detail_json(db: AsyncSession, access: Access) -> dict[str, object]:
    c = access.consultation
    names = await _tenant_names(db, c.tenant_id, c.consulted_tenant_id)
    result = {**header_json(c, names), "full": access.full,
              "my_role": access.role.value if access.role else None,
              "may_triage": access.triage and c.status in (ConsultationStatus.REQUESTED, ConsultationStatus.ACCEPTED,
                                                           ConsultationStatus.SCHEDULED),
              "room": None}
    if not access.full:
        return result
    questions = (await db.execute(select(ConsultationQuestion).where(
        ConsultationQuestion.consultation_id == c.id).order_by(ConsultationQuestion.position))).scalars().all()
    participants = (await db.execute(select(ConsultationParticipant, User.display_name).join(
        User, User.id == ConsultationParticipant.user_id).where(
        ConsultationParticipant.consultation_id == c.id))).all()
    patient = (await db.execute(select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id)
                                .where(User.id == c.patient_id, PatientProfile.tenant_id == c.tenant_id))).first()
    attachments = (await db.execute(select(Document).where(
        Document.context_type == CONTEXT, Document.context_id == c.id, Document.kind == DocumentKind.ATTACHMENT)
        .order_by(Document.created_at))).scalars().all()
    room = await db.get(Room, c.room_id) if c.room_id and c.status in OPEN_ROOM else None
    record = None
    if c.encounter_id:
        note = await db.scalar(select(DocumentVersion.text).join(Document, Document.id == DocumentVersion.document_id)
                               .where(Document.context_type == "encounter", Document.context_id == c.encounter_id,
                                      Document.kind == DocumentKind.NOTE,
                                      DocumentVersion.version == Document.current_version))
        record = json.loads(note) if note else None
    result.update({
        "patient": None if patient is None else {
            "id": patient[0].id, "name": patient[0].display_name, "birth_date": patient[1].birth_date.isoformat(),
            "sex": patient[1].sex.value, "address": patient[1].address, "bhyt": patient[1].bhyt},
        "encounter_id": c.encounter_id, "visit_record": record, "history": c.history, "findings": c.findings,
        "questions": [{"id": q.id, "position": q.position, "text": q.text, "conclusion": q.conclusion}
                      for q in questions],
        "participants": [{"user_id": p.user_id, "name": name, "role": p.role.value,
                          "facility": names.get(p.tenant_id, "")} for p, name in participants],
        "attachments": [{"id": d.id, "title": d.title} for d in attachments],
        "room": room.name if room else None,
        "conclusion": c.conclusion, "diagnosis": {"icd10": c.diagnosis_icd10, "text": c.diagnosis_text},
        "management": c.management, "minutes_document_id": c.minutes_document_id,
    })
    return result


@routes.get("/api/clinics/consultation-requests/{consultation_id}")
async def read_request(request: web.Request) -> web.Response:
    async with request.app[SESSIONS].begin() as db:
        access = await access_to(request, db, "clinic.consultation.read", full=False)
        result = await detail_json(db, access)
        db.add(audit_success(request, "clinic.consultation.read", access.consultation))
    return web.json_response(result, headers={"Cache-Control": "no-store"})


@routes.get("/api/clinics/{tenant_id}/consultation-requests")
async def list_requests(request: web.Request) -> web.Response:
    """Outgoing (this facility asked) and incoming (this facility is asked) consultations. Incoming
    ones show the patient's name only to participants."""
    user = current_user(request)
    tenant_id = request.match_info["tenant_id"]
    if not _staff(user, tenant_id):
        raise await deny(request, "clinic.consultation.list", tenant_id)
    triage = _staff(user, tenant_id, TRIAGE)
    async with request.app[SESSIONS]() as db:
        mine = select(ConsultationParticipant.consultation_id).where(ConsultationParticipant.user_id == user.id)
        incoming_filter = Consultation.consulted_tenant_id == tenant_id
        if not triage:
            incoming_filter = incoming_filter & Consultation.id.in_(mine)
        rows = (await db.execute(select(Consultation, User.display_name).join(User, User.id == Consultation.patient_id)
                                 .where(or_(Consultation.tenant_id == tenant_id, incoming_filter))
                                 .order_by(Consultation.created_at.desc()).limit(200))).all()
        taking_part = set((await db.execute(mine)).scalars().all())
        names = await _tenant_names(db, *{c.tenant_id for c, _ in rows} | {c.consulted_tenant_id for c, _ in rows})
    await audit(request.app[SESSIONS], audit_context(request), "clinic.consultation.list", Outcome.SUCCESS,
                target_type="facility", target_id=tenant_id, tenant_id=tenant_id)

    def item(c: Consultation, patient: str) -> dict[str, object]:
        shown = c.tenant_id == tenant_id or c.id in taking_part
        return {**header_json(c, names), "patient_name": patient if shown else None,
                "participant": c.id in taking_part}

    return web.json_response({
        "outgoing": [item(c, n) for c, n in rows if c.tenant_id == tenant_id],
        "incoming": [item(c, n) for c, n in rows if c.consulted_tenant_id == tenant_id],
    })


async def _triage(request: web.Request, db: AsyncSession, action: str,
                  allowed: tuple[ConsultationStatus, ...]) -> Access:
    access = await access_to(request, db, action, full=False, lock=True)
    if not (access.triage or access.role == ConsultationRole.CHAIR):
        raise ApiError(403, "forbidden", "only the consulted facility's doctors and administrators do this")
    if access.consultation.status not in allowed:
        raise ApiError(409, "wrong_status", f"the consultation is {access.consultation.status.value}")
    return access


@routes.post("/api/clinics/consultation-requests/{consultation_id}/accept")
async def accept(request: web.Request) -> web.Response:
    async with request.app[SESSIONS].begin() as db:
        access = await _triage(request, db, "clinic.consultation.accept", (ConsultationStatus.REQUESTED,))
        c = access.consultation
        c.status, c.decided_by, c.decided_at = ConsultationStatus.ACCEPTED, access.user.id, utcnow()
        db.add(audit_success(request, "clinic.consultation.accept", c))
    return web.json_response({"id": c.id, "status": c.status.value})


@routes.post("/api/clinics/consultation-requests/{consultation_id}/decline")
async def decline(request: web.Request) -> web.Response:
    async with request.app[SESSIONS].begin() as db:
        access = await _triage(request, db, "clinic.consultation.decline", (ConsultationStatus.REQUESTED,))
        body = await parse_body(request, DeclineIn)  # who may, before reading what they sent
        c = access.consultation
        c.status, c.decided_by, c.decided_at = ConsultationStatus.DECLINED, access.user.id, utcnow()
        c.decline_reason = body.reason
        db.add(audit_success(request, "clinic.consultation.decline", c))
    return web.json_response({"id": c.id, "status": c.status.value})


async def _clinician_tenant(db: AsyncSession, c: Consultation, user_id: str,
                            roles: tuple[Role, ...] = CLINICIANS, tenants: tuple[str, ...] | None = None) -> str | None:
    """The facility (consulted first) in which the user is a clinician, among the two of this consultation."""
    found = set((await db.execute(select(RoleAssignment.tenant_id).where(
        RoleAssignment.user_id == user_id, RoleAssignment.role.in_(roles),
        RoleAssignment.tenant_id.in_(tenants or (c.consulted_tenant_id, c.tenant_id))))).scalars().all())
    for tenant_id in (c.consulted_tenant_id, c.tenant_id):
        if tenant_id in found:
            return tenant_id
    return None


@routes.post("/api/clinics/consultation-requests/{consultation_id}/schedule")
async def schedule(request: web.Request) -> web.Response:
    """Set the time and the participants (again, to reschedule); the room's members follow."""
    async with request.app[SESSIONS].begin() as db:
        access = await _triage(request, db, "clinic.consultation.schedule",
                               (ConsultationStatus.ACCEPTED, ConsultationStatus.SCHEDULED))
        body = await parse_body(request, ScheduleIn)
        c = access.consultation
        chosen: dict[str, tuple[str, ConsultationRole]] = {}
        chair_tenant = await _clinician_tenant(db, c, body.chair_id, (Role.DOCTOR,), (c.consulted_tenant_id,))
        if chair_tenant is None:
            raise ApiError(422, "invalid_chair", "the chair is a doctor of the consulted facility")
        chosen[body.chair_id] = (chair_tenant, ConsultationRole.CHAIR)
        secretary_tenant = await _clinician_tenant(db, c, body.secretary_id)
        if secretary_tenant is None or body.secretary_id in chosen:
            raise ApiError(422, "invalid_secretary",
                           "the secretary is another doctor or nurse of one of the two facilities")
        chosen[body.secretary_id] = (secretary_tenant, ConsultationRole.SECRETARY)
        for member_id in body.member_ids:
            if member_id in chosen:
                continue
            member_tenant = await _clinician_tenant(db, c, member_id)
            if member_tenant is None:
                raise ApiError(422, "invalid_member", "members are doctors or nurses of the two facilities")
            chosen[member_id] = (member_tenant, ConsultationRole.MEMBER)
        requester = c.requested_by
        if requester and requester not in chosen:
            chosen[requester] = (c.tenant_id, ConsultationRole.REQUESTER)
        await db.execute(delete(ConsultationParticipant).where(ConsultationParticipant.consultation_id == c.id))
        db.add_all(ConsultationParticipant(consultation_id=c.id, user_id=uid, tenant_id=tenant, role=role)
                   for uid, (tenant, role) in chosen.items())
        if c.room_id is None:
            # No patient name in the title: room lists are shown to all of a facility's staff.
            room = Room(tenant_id=c.consulted_tenant_id, kind=RoomKind.MEETING, title=f"Hội chẩn · {c.department}")
            db.add(room)
            await db.flush()
            c.room_id = room.id
        await db.execute(delete(RoomMember).where(RoomMember.room_id == c.room_id))
        db.add_all(RoomMember(room_id=c.room_id, user_id=uid,
                              role=RoomRole.HOST if role == ConsultationRole.CHAIR else RoomRole.PARTICIPANT)
                   for uid, (_tenant, role) in chosen.items())
        c.status, c.scheduled_start = ConsultationStatus.SCHEDULED, body.scheduled_start
        db.add(audit_success(request, "clinic.consultation.schedule", c))
    return web.json_response({"id": c.id, "status": c.status.value,
                              "scheduled_start": body.scheduled_start.isoformat()})


@routes.post("/api/clinics/consultation-requests/{consultation_id}/start")
async def start(request: web.Request) -> web.Response:
    """The chair or the secretary opens the session."""
    async with request.app[SESSIONS].begin() as db:
        access = await access_to(request, db, "clinic.consultation.start", lock=True)
        c = access.consultation
        if access.role not in (ConsultationRole.CHAIR, ConsultationRole.SECRETARY):
            raise ApiError(403, "forbidden", "the chair or the secretary opens the session")
        if c.status != ConsultationStatus.SCHEDULED:
            raise ApiError(409, "wrong_status", f"the consultation is {c.status.value}")
        c.status, c.started_at = ConsultationStatus.IN_SESSION, utcnow()
        db.add(audit_success(request, "clinic.consultation.start", c))
    return web.json_response({"id": c.id, "status": c.status.value})


@routes.get("/api/clinics/consultation-requests/{consultation_id}/people")
async def people(request: web.Request) -> web.Response:
    """Doctors and nurses of both facilities, to choose the chair, the secretary and the members."""
    async with request.app[SESSIONS]() as db:
        access = await access_to(request, db, "clinic.consultation.people", full=False)
        c = access.consultation
        rows = (await db.execute(select(User.id, User.display_name, RoleAssignment.role, RoleAssignment.tenant_id)
                                 .join(RoleAssignment, RoleAssignment.user_id == User.id)
                                 .where(RoleAssignment.role.in_(CLINICIANS),
                                        RoleAssignment.tenant_id.in_((c.tenant_id, c.consulted_tenant_id)))
                                 .order_by(User.display_name))).all()
        names = await _tenant_names(db, c.tenant_id, c.consulted_tenant_id)
    return web.json_response({"people": [{"id": uid, "name": name, "role": role.value, "facility": names[tid],
                                          "consulted": tid == c.consulted_tenant_id}
                                         for uid, name, role, tid in rows]})


@routes.post("/api/clinics/consultation-requests/{consultation_id}/attachments")
async def add_attachment(request: web.Request) -> web.Response:
    """An image or a PDF for the consulted doctors (multipart: ``file``); the documents module's type
    and size limits apply. Stored in the patient's record at the requesting facility."""
    async with request.app[SESSIONS]() as db:
        access = await access_to(request, db, "clinic.consultation.attach")
    c = access.consultation
    if not access.requesting_staff:
        raise ApiError(403, "forbidden", "the requesting facility attaches the patient's data")
    if c.status in CLOSED:
        raise ApiError(409, "wrong_status", f"the consultation is {c.status.value}")
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415, "invalid_body", "send the file as multipart/form-data with a 'file' part")
    content: documents.Content | None = None
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "file":
            content = documents.Content(part.headers.get("Content-Type", "application/octet-stream"),
                                        bytes(await part.read()), part.filename)
    if content is None:
        raise ApiError(400, "invalid_body", "multipart needs a 'file' part")
    app = request.app
    async with app[SESSIONS].begin() as db:
        document = Document(tenant_id=c.tenant_id, kind=DocumentKind.ATTACHMENT,
                            title=(content.filename or "Tệp đính kèm")[:200], subject_type=SubjectType.PATIENT,
                            subject_id=c.patient_id, context_type=CONTEXT, context_id=c.id,
                            created_by=access.user.id, current_version=0)
        db.add(document)
        await db.flush()
        try:
            await documents.add_version(db, app[DOCUMENT_STORAGE], document, 1, content, author_id=access.user.id,
                                        max_bytes=app[SETTINGS].document_max_bytes)
        except ContentRefused as exc:
            raise ApiError(413 if "larger" in str(exc) else 415, "content_refused", str(exc)) from None
        db.add(audit_success(request, "clinic.consultation.attach", c))
    return web.json_response({"id": document.id, "title": document.title}, status=201)


@routes.get("/api/clinics/consultation-requests/{consultation_id}/attachments/{document_id}")
async def read_attachment(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        access = await access_to(request, db, "clinic.consultation.attachment.read")
        document = await db.scalar(select(Document).where(
            Document.id == request.match_info["document_id"], Document.context_type == CONTEXT,
            Document.context_id == access.consultation.id))
        version = None if document is None else await db.scalar(select(DocumentVersion).where(
            DocumentVersion.document_id == document.id, DocumentVersion.version == document.current_version))
    if document is None or version is None:
        raise await deny(request, "clinic.consultation.attachment.read", request.match_info["document_id"])
    data = await documents.read_content(request.app[DOCUMENT_STORAGE], version)
    await audit(request.app[SESSIONS], audit_context(request), "clinic.consultation.attachment.read",
                Outcome.SUCCESS, target_type="document", target_id=document.id, tenant_id=document.tenant_id)
    # A download in a sandbox: a stored file must never run as our page.
    return web.Response(body=data, content_type=version.content_type, headers={
        "Content-Disposition": f'attachment; filename="attachment-{document.id[:8]}"',
        "Content-Security-Policy": "sandbox", "Cache-Control": "private, no-store"})


async def consultation_room_open(db: AsyncSession, room: Room, user_id: str) -> str | None:
    """Room admission check: a consultation's room opens once it is scheduled and closes with the
    signed minutes (or a decline). Membership (the participants) is checked by the room itself."""
    status = await db.scalar(select(Consultation.status).where(Consultation.room_id == room.id))
    if status is None or status in OPEN_ROOM:
        return None
    return "consultation_not_open"

