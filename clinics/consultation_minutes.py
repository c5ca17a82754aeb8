"""The minutes of a hội chẩn (biên bản hội chẩn): the chair's conclusion on each question, the overall
conclusion (diagnosis, ICD-10 optional) and the management, kept as a versioned JSON document
(DocumentKind.MINUTES) in the patient's record at the requesting facility, linked to the encounter.

Each save by the chair is a new version; signatures bind one version, so a change after someone
signed needs signing again. Once the chair and the secretary have both signed the current version the
consultation is closed (status ``signed``) and the minutes no longer change.

The fields follow the form usually used for Thông tư 49/2017 Phụ lục I; the appendix itself has not
been verified (see docs/clinics.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.consultation import Access, access_to, audit_success
from clinics.eligibility import InvalidCode, icd10_key
from clinics.models import (
    Consultation,
    ConsultationParticipant,
    ConsultationQuestion,
    ConsultationRole,
    ConsultationStatus,
    PatientProfile,
)
from clinics.pdf import ROLE_VI, FontMissing, consultation_minutes_pdf
from server.auth.models import Role, Tenant, User
from server.db.base import utcnow
from server.errors import ApiError
from server.keys import DOCUMENT_STORAGE, SESSIONS, SETTINGS
from server.records.documents import service as documents
from server.records.documents.models import Document, DocumentKind, DocumentVersion, Signature, SubjectType
from server.validation import parse_body

routes = web.RouteTableDef()
TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MINUTES_TITLE = "Biên bản hội chẩn"
FORM_NOTE = "Mẫu theo các trường thường gặp của Phụ lục I Thông tư 49/2017/TT-BYT (chưa đối chiếu với văn bản gốc)"
WRITABLE = (ConsultationStatus.SCHEDULED, ConsultationStatus.IN_SESSION, ConsultationStatus.CONCLUDED)
SIGNER_ROLES = (Role.DOCTOR, Role.NURSE, Role.FACILITY_ADMIN)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question_id: str = Field(max_length=36)
    conclusion: str = Field(min_length=1, max_length=5000)


class ConclusionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: list[AnswerIn] = Field(min_length=1, max_length=20)
    conclusion: str = Field(min_length=1, max_length=5000)
    diagnosis_icd10: str | None = Field(default=None, max_length=10)
    diagnosis_text: str = Field(default="", max_length=300)
    management: str = Field(min_length=1, max_length=5000)

    @field_validator("diagnosis_icd10")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            key = icd10_key(value)
        except InvalidCode as exc:
            raise ValueError(str(exc)) from None
        return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)


def _local(when: datetime | None) -> str | None:
    return when.astimezone(TIMEZONE).strftime("%H:%M %d/%m/%Y") if when else None


async def minutes_content(db: AsyncSession, c: Consultation) -> dict[str, object]:
    """A snapshot of everything the minutes say, taken when the chair saves them."""
    tenants = dict((await db.execute(select(Tenant.id, Tenant.name).where(
        Tenant.id.in_((c.tenant_id, c.consulted_tenant_id))))).all())
    participants = (await db.execute(select(ConsultationParticipant, User.display_name).join(
        User, User.id == ConsultationParticipant.user_id).where(
        ConsultationParticipant.consultation_id == c.id))).all()
    people: list[dict[str, object]] = [
        {"user_id": p.user_id, "name": name, "role": p.role.value, "facility": tenants.get(p.tenant_id, "")}
              for p, name in participants]
    questions = (await db.execute(select(ConsultationQuestion).where(
        ConsultationQuestion.consultation_id == c.id).order_by(ConsultationQuestion.position))).scalars().all()
    patient = (await db.execute(select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id)
                                .where(User.id == c.patient_id, PatientProfile.tenant_id == c.tenant_id))).first()

    def one(role: ConsultationRole) -> dict[str, object] | None:
        return next((p for p in people if p["role"] == role.value), None)

    return {
        "form": FORM_NOTE, "consultation_id": c.id, "encounter_id": c.encounter_id,
        "requesting_facility": tenants.get(c.tenant_id, ""),
        "consulted_facility": tenants.get(c.consulted_tenant_id, ""),
        "department": c.department, "scheduled_start": _local(c.scheduled_start), "started_at": _local(c.started_at),
        "chair": one(ConsultationRole.CHAIR), "secretary": one(ConsultationRole.SECRETARY), "participants": people,
        "patient": None if patient is None else {
            "name": patient[0].display_name, "birth_date": patient[1].birth_date.strftime("%d/%m/%Y"),
            "sex": patient[1].sex.value, "address": patient[1].address, "bhyt": patient[1].bhyt},
        "urgency": c.urgency, "reason": c.reason, "history": c.history, "findings": c.findings,
        "questions": [{"position": q.position, "question": q.text, "conclusion": q.conclusion} for q in questions],
        "conclusion": c.conclusion, "diagnosis": {"icd10": c.diagnosis_icd10, "text": c.diagnosis_text},
        "management": c.management,
    }


@routes.put("/api/clinics/consultation-requests/{consultation_id}/conclusion")
async def conclude(request: web.Request) -> web.Response:
    """The chair answers every question and concludes; each save is a new version of the minutes."""
    app = request.app
    async with app[SESSIONS].begin() as db:
        access = await access_to(request, db, "clinic.consultation.conclude", lock=True)
        c = access.consultation
        if access.role != ConsultationRole.CHAIR:
            raise ApiError(403, "forbidden", "the chair records the conclusions")
        body = await parse_body(request, ConclusionIn)  # who may, before reading what they sent
        if c.status not in WRITABLE:
            raise ApiError(409, "wrong_status", f"the consultation is {c.status.value}")
        questions = {q.id: q for q in (await db.execute(select(ConsultationQuestion).where(
            ConsultationQuestion.consultation_id == c.id))).scalars().all()}
        answers = {a.question_id: a.conclusion.strip() for a in body.answers}
        if set(answers) - set(questions):
            raise ApiError(422, "invalid_question", "an answer names a question of another consultation")
        if missing := [q.position for q in questions.values() if not answers.get(q.id)]:
            raise ApiError(422, "unanswered_question",
                           f"every question needs its conclusion (missing: {', '.join(map(str, sorted(missing)))})")
        for question_id, text in answers.items():
            questions[question_id].conclusion = text
        c.conclusion, c.management = body.conclusion, body.management
        c.diagnosis_icd10, c.diagnosis_text = body.diagnosis_icd10, body.diagnosis_text or None
        c.status, c.concluded_at = ConsultationStatus.CONCLUDED, c.concluded_at or utcnow()
        if c.started_at is None:
            c.started_at = c.concluded_at
        await db.flush()
        content = json.dumps(await minutes_content(db, c), ensure_ascii=False).encode("utf-8")
        document = await db.get(Document, c.minutes_document_id) if c.minutes_document_id else None
        if document is None:
            # In the patient's record at the requesting facility, linked to the visit when there is one.
            document = Document(tenant_id=c.tenant_id, kind=DocumentKind.MINUTES, title=MINUTES_TITLE,
                                subject_type=SubjectType.PATIENT, subject_id=c.patient_id,
                                context_type="encounter" if c.encounter_id else "consultation",
                                context_id=c.encounter_id or c.id, created_by=access.user.id, current_version=0)
            db.add(document)
            await db.flush()
            c.minutes_document_id = document.id
        await documents.add_version(db, app[DOCUMENT_STORAGE], document, document.current_version + 1,
                                    documents.Content("application/json", content), author_id=access.user.id,
                                    max_bytes=app[SETTINGS].document_max_bytes)
        db.add(audit_success(request, "clinic.consultation.conclude", c))
    return web.json_response({"id": c.id, "status": c.status.value, "document_id": document.id,
                              "version": document.current_version})


async def _minutes(request: web.Request, db: AsyncSession, action: str, lock: bool = False
                   ) -> tuple[Access, Document, DocumentVersion]:
    access = await access_to(request, db, action, lock=lock)
    c = access.consultation
    document = await db.get(Document, c.minutes_document_id) if c.minutes_document_id else None
    version = None if document is None else await db.scalar(select(DocumentVersion).where(
        DocumentVersion.document_id == document.id, DocumentVersion.version == document.current_version))
    if document is None or version is None or version.text is None:
        raise ApiError(404, "not_found", "no minutes yet")
    return access, document, version


async def _signatures(db: AsyncSession, c: Consultation, document: Document) -> list[dict[str, object]]:
    roles = dict((await db.execute(select(ConsultationParticipant.user_id, ConsultationParticipant.role).where(
        ConsultationParticipant.consultation_id == c.id))).all())
    rows = (await db.execute(select(Signature, User.display_name).join(User, User.id == Signature.signer_id).where(
        Signature.document_id == document.id, Signature.version == document.current_version)
        .order_by(Signature.signed_at))).all()
    return [{"signer_id": s.signer_id, "name": name, "role": roles[s.signer_id].value if s.signer_id in roles else None,
             "signed_at": s.signed_at.isoformat(), "sha256": s.sha256} for s, name in rows]


@routes.get("/api/clinics/consultation-requests/{consultation_id}/minutes")
async def read_minutes(request: web.Request) -> web.Response:
    async with request.app[SESSIONS].begin() as db:
        access, document, version = await _minutes(request, db, "clinic.consultation.minutes.read")
        signatures = await _signatures(db, access.consultation, document)
        db.add(audit_success(request, "clinic.consultation.minutes.read", access.consultation))
    assert version.text is not None
    return web.json_response({"document_id": document.id, "version": version.version,
                              "status": access.consultation.status.value, "minutes": json.loads(version.text),
                              "signatures": signatures,
                              "signed_by_me": any(s["signer_id"] == access.user.id for s in signatures)},
                             headers={"Cache-Control": "no-store"})


@routes.post("/api/clinics/consultation-requests/{consultation_id}/minutes/sign")
async def sign_minutes(request: web.Request) -> web.Response:
    """A participant signs the current version; the chair's and the secretary's signatures close it."""
    async with request.app[SESSIONS].begin() as db:
        access, document, _version = await _minutes(request, db, "clinic.consultation.minutes.sign", lock=True)
        c = access.consultation
        if access.participant is None:
            raise ApiError(403, "forbidden", "the participants sign the minutes")
        body = await parse_body(request, SignIn)
        role = next((r for r in SIGNER_ROLES if access.user.has_role(r, access.participant.tenant_id)), None)
        if role is None:
            raise ApiError(403, "forbidden", "you no longer work at a facility of this consultation")
        try:
            await documents.sign(db, document, body.version, signer_id=access.user.id, role=role)
        except documents.DocumentError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        signatures = await _signatures(db, c, document)
        signed_by = {s["role"] for s in signatures}
        if {ConsultationRole.CHAIR.value, ConsultationRole.SECRETARY.value} <= signed_by \
                and c.status == ConsultationStatus.CONCLUDED:
            c.status, c.closed_at = ConsultationStatus.SIGNED, utcnow()
        db.add(audit_success(request, "clinic.consultation.minutes.sign", c))
    return web.json_response({"status": c.status.value, "version": body.version, "signatures": signatures},
                             status=201)


@routes.get("/api/clinics/consultation-requests/{consultation_id}/minutes.pdf")
async def minutes_pdf(request: web.Request) -> web.Response:
    async with request.app[SESSIONS].begin() as db:
        access, document, version = await _minutes(request, db, "clinic.consultation.minutes.pdf")
        signatures = await _signatures(db, access.consultation, document)
        db.add(audit_success(request, "clinic.consultation.minutes.pdf", access.consultation))
    assert version.text is not None
    try:
        data = consultation_minutes_pdf(json.loads(version.text), version=version.version, signatures=[
            f"{s['name']} ({ROLE_VI.get(str(s['role']), '')}) — {_local_iso(str(s['signed_at']))}"
            for s in signatures])
    except FontMissing as exc:
        raise ApiError(503, "font_missing", str(exc)) from None
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="bien-ban-hoi-chan-{access.consultation.id[:8]}.pdf"',
        "Cache-Control": "no-store"})


def _local_iso(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(TIMEZONE).strftime("%H:%M %d/%m/%Y")
