"""The visit record: the guided steps (identity, consent, triage with escalation), a SOAP note,
ICD-10 diagnoses checked against Thông tư 30, a prescription (with the national e-prescription code)
and the follow-up. Stored as a versioned JSON document (server/records/documents), signed there.

Direct-to-patient remote visits block narcotic (n) and psychotropic (h) prescriptions: they need a
written commitment and a station's confirmation (../shared/domain/vn-telemedicine-rules.md §h).
"""

from __future__ import annotations

import json
from typing import Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select

from clinics.consent import active_consent
from clinics.eligibility import InvalidCode, icd10_key
from clinics.facilities import CONDITIONS
from clinics.models import ConsentPurpose, Encounter, EncounterStatus
from clinics.pdf import FontMissing, visit_record_pdf
from clinics.visits import is_staff, visit_of
from server.auth.models import Role, Tenant, User
from server.errors import ApiError
from server.keys import DOCUMENT_STORAGE, SESSIONS, SETTINGS
from server.records.audit import Outcome, audit, audit_row
from server.records.documents import service as documents
from server.records.documents.models import Document, DocumentKind, DocumentVersion, Signature, SubjectType
from server.requestctx import USER, audit_context
from server.validation import parse_body

routes = web.RouteTableDef()
E_PRESCRIPTION = r"^[0-9A-Za-z]{12}-[cnhy]$"  # 5-char facility code + 7-char code, "-", type letter


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Identification(_Part):
    checked: Literal[True]  # step 1 cannot be skipped
    method: Literal["cccd", "bhyt", "known_to_staff", "guardian"]


class Triage(_Part):
    urgency: Literal["routine", "urgent", "emergency"]
    escalation: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _escalated(self) -> Triage:
        if self.urgency != "routine" and not self.escalation:
            raise ValueError("an urgent or emergency case needs its escalation (referral, 115, transfer)")
        return self


class Soap(_Part):
    subjective: str = Field(default="", max_length=5000)
    objective: str = Field(default="", max_length=5000)
    assessment: str = Field(default="", max_length=5000)
    plan: str = Field(default="", max_length=5000)


class Diagnosis(_Part):
    icd10: str = Field(max_length=10)
    text: str = Field(default="", max_length=300)
    primary: bool = False

    @field_validator("icd10")
    @classmethod
    def _code(cls, value: str) -> str:
        try:
            key = icd10_key(value)
        except InvalidCode as exc:
            raise ValueError(str(exc)) from None
        return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


class Medication(_Part):
    medication: str = Field(min_length=1, max_length=200)
    dose: str = Field(min_length=1, max_length=100)
    frequency: str = Field(min_length=1, max_length=100)
    duration_days: int = Field(ge=1, le=365)
    instructions: str = Field(default="", max_length=500)


class Prescription(_Part):
    e_prescription_code: str | None = Field(default=None, pattern=E_PRESCRIPTION)
    items: list[Medication] = Field(default_factory=list, max_length=30)

    @field_validator("e_prescription_code")
    @classmethod
    def _not_controlled(cls, value: str | None) -> str | None:
        if value and value[-1] in "nh":
            raise ValueError("narcotic and psychotropic prescriptions are not issued in a remote visit")
        return value


class FollowUp(_Part):
    booking_id: str | None = Field(default=None, max_length=36)
    note: str = Field(default="", max_length=500)


class VisitRecordIn(_Part):
    identification: Identification
    consent_confirmed: Literal[True]
    triage: Triage
    soap: Soap
    diagnoses: list[Diagnosis] = Field(default_factory=list, max_length=10)
    prescription: Prescription | None = None
    follow_up: FollowUp | None = None


@routes.put("/api/clinics/encounters/{encounter_id}/record")
async def save_record(request: web.Request) -> web.Response:
    """Save the record (each save is a new version of one document); doctors and nurses only."""
    encounter = await visit_of(request, "clinic.record.write")
    user = request[USER]
    if not (user.has_role(Role.DOCTOR, encounter.tenant_id) or user.has_role(Role.NURSE, encounter.tenant_id)):
        raise ApiError(403, "forbidden", "only the doctor or nurse writes the visit record")
    body = await parse_body(request, VisitRecordIn)
    primary = next((d for d in body.diagnoses if d.primary), body.diagnoses[0] if body.diagnoses else None)
    decision = request.app[CONDITIONS].decide(primary.icd10) if primary else None
    content = json.dumps({**body.model_dump(), "eligibility": None if decision is None else {
        "code": decision.code, "verdict": decision.verdict.value, "list_version": decision.list_version}},
        ensure_ascii=False).encode("utf-8")
    app = request.app
    async with app[SESSIONS].begin() as db:
        if await active_consent(db, encounter.tenant_id, encounter.patient_id,
                                ConsentPurpose.REMOTE_EXAMINATION) is None:
            raise ApiError(409, "consent_required", "there is no consent on record for this remote examination")
        document = await db.scalar(select(Document).where(Document.context_type == "encounter",
                                                          Document.context_id == encounter.id,
                                                          Document.kind == DocumentKind.NOTE))
        if document is None:
            document = Document(tenant_id=encounter.tenant_id, kind=DocumentKind.NOTE, title="Phiếu khám từ xa",
                                subject_type=SubjectType.PATIENT, subject_id=encounter.patient_id,
                                context_type="encounter", context_id=encounter.id, created_by=user.id,
                                current_version=0)
            db.add(document)
            await db.flush()
        await documents.add_version(db, app[DOCUMENT_STORAGE], document, document.current_version + 1,
                                    documents.Content("application/json", content), author_id=user.id,
                                    max_bytes=app[SETTINGS].document_max_bytes)
        db.add(audit_row(audit_context(request), "clinic.record.write", Outcome.SUCCESS, target_type="document",
                         target_id=document.id, tenant_id=encounter.tenant_id))
        if decision is not None:
            db.add(audit_row(audit_context(request), f"clinic.eligibility.{decision.verdict.value}",
                             Outcome.SUCCESS, target_type="encounter", target_id=encounter.id,
                             tenant_id=encounter.tenant_id))
    return web.json_response({
        "document_id": document.id, "version": document.current_version,
        "eligibility": None if decision is None else {
            "verdict": decision.verdict.value,
            "warning": None if decision.condition else "not_on_the_list_offer_referral_or_in_person_visit"},
    })


async def current_record(request: web.Request, action: str) -> tuple[Encounter, Document, DocumentVersion]:
    """The visit's record as of its current version, under the reading rules: staff at any time,
    the patient once the visit has ended (409 before); 404 while there is none."""
    encounter = await visit_of(request, action)
    if not is_staff(request[USER], encounter.tenant_id) and encounter.status != EncounterStatus.FINISHED:
        raise ApiError(409, "visit_not_finished", "the summary is available after the visit")
    async with request.app[SESSIONS]() as db:
        document = await db.scalar(select(Document).where(Document.context_type == "encounter",
                                                          Document.context_id == encounter.id,
                                                          Document.kind == DocumentKind.NOTE))
        version = None if document is None else await db.scalar(select(DocumentVersion).where(
            DocumentVersion.document_id == document.id, DocumentVersion.version == document.current_version))
    if document is None or version is None or version.text is None:
        raise ApiError(404, "not_found", "no record yet")
    return encounter, document, version


@routes.get("/api/clinics/encounters/{encounter_id}/record")
async def read_record(request: web.Request) -> web.Response:
    """Staff read the record at any time; the patient reads it once the visit has ended."""
    encounter, document, version = await current_record(request, "clinic.record.read")
    assert version.text is not None
    await audit(request.app[SESSIONS], audit_context(request), "clinic.record.read", Outcome.SUCCESS,
                target_type="document", target_id=document.id, tenant_id=encounter.tenant_id)
    return web.json_response({"document_id": document.id, "version": version.version,
                              "record": json.loads(version.text)})


@routes.get("/api/clinics/encounters/{encounter_id}/record.pdf")
async def record_pdf(request: web.Request) -> web.Response:
    """The record to print: the same rules as reading it."""
    encounter, document, version = await current_record(request, "clinic.record.pdf")
    async with request.app[SESSIONS]() as db:
        signatures = (await db.execute(select(Signature, User.display_name).join(User, User.id == Signature.signer_id)
                                       .where(Signature.document_id == document.id,
                                              Signature.version == document.current_version))).all()
        tenant = await db.get(Tenant, encounter.tenant_id)
        patient = await db.get(User, encounter.patient_id)
        doctor = await db.get(User, encounter.practitioner_id) if encounter.practitioner_id else None
    assert version.text is not None and tenant and patient
    try:
        data = visit_record_pdf(json.loads(version.text), facility=tenant.name, patient=patient.display_name,
                                doctor=doctor.display_name if doctor else "", version=version.version,
                                when=encounter.scheduled_start.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
                                .strftime("%H:%M %d/%m/%Y"),
                                signatures=[f"{name} ({s.signer_role}) — {s.signed_at:%d/%m/%Y %H:%M} UTC"
                                            for s, name in signatures])
    except FontMissing as exc:
        raise ApiError(503, "font_missing", str(exc)) from None
    await audit(request.app[SESSIONS], audit_context(request), "clinic.record.pdf", Outcome.SUCCESS,
                target_type="document", target_id=document.id, tenant_id=encounter.tenant_id)
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="phieu-kham-{encounter.id[:8]}.pdf"', "Cache-Control": "no-store"})
