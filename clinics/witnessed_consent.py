"""Consent taken by a nurse (or a doctor) on the patient's behalf, at a station without a patient device.

The nurse reads the current text to the patient (or to the parent or guardian of a minor) and records
the decision they heard or saw signed. It is still the patient's decision, with the same rules as the
patient's own path (clinics/consent.py): ``accepted`` must be stated, the text version must be the
current one, a minor is represented by a guardian and from age 7 gives their own assent. What changes
is the evidence: the record names the nurse as the one who recorded it (``decided_by``) and says that
it was witnessed (``decided_as`` "witness_patient" / "witness_guardian"); a witness statement (who
decided, by name, the method — spoken or a signed paper form —, the text's version and hash, the
witness) is stored as a consent document linked to the record and signed by the nurse; a scan of the
signed paper form can be added to it as evidence.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Literal

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.consent import TEXTS, active_consent, record_json, required_roles
from clinics.models import ConsentPurpose, ConsentRecord, Encounter, PatientProfile
from server.auth.models import Role, User
from server.auth.sessions import CurrentUser
from server.db.base import utcnow
from server.errors import ApiError
from server.keys import DOCUMENT_STORAGE, SESSIONS, SETTINGS
from server.records.audit import Outcome, audit, audit_row
from server.records.documents import service as documents
from server.records.documents.content import ContentRefused
from server.records.documents.models import Document, DocumentKind, SubjectType
from server.requestctx import LOCALE, USER, audit_context
from server.validation import parse_body

routes = web.RouteTableDef()
WITNESSES = (Role.NURSE, Role.DOCTOR)  # care staff who meet the patient; an administrator does not
WITNESSED = ("witness_patient", "witness_guardian")  # ConsentRecord.decided_as is String(16)
SCAN_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png"})
CONTEXT = "consent"  # Document.context_type of the statement and the scans


class WitnessedConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: ConsentPurpose
    text_version: int = Field(ge=1)
    language: str = Field(pattern=r"^(vi|en)$")
    accepted: bool  # required: a nurse who heard nothing records nothing
    decided_by: Literal["patient", "guardian"]
    decider_name: str = Field(min_length=1, max_length=200)
    method: Literal["verbal", "paper"]
    child_assent: bool | None = None


def witness_role(user: CurrentUser, tenant_id: str) -> Role | None:
    return next((role for role in WITNESSES if user.has_role(role, tenant_id)), None)


async def _encounter(request: web.Request, db: AsyncSession, action: str) -> tuple[CurrentUser, Encounter, Role]:
    """The visit in the URL and the caller's witnessing role: another facility → 404 (audited); the
    patient or an administrator of that facility → 403 (they know the visit, but cannot witness)."""
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    encounter_id = request.match_info["encounter_id"]
    encounter = await db.get(Encounter, encounter_id)
    sees = encounter is not None and (encounter.patient_id == user.id or any(
        r.tenant_id == encounter.tenant_id and r.role in (*WITNESSES, Role.FACILITY_ADMIN) for r in user.roles))
    if encounter is None or not sees:
        await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED,
                    target_type="encounter", target_id=encounter_id[:64])
        raise ApiError(404, "not_found", "no such visit")
    role = witness_role(user, encounter.tenant_id)
    if role is None:
        await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED,
                    target_type="encounter", target_id=encounter.id, tenant_id=encounter.tenant_id)
        raise ApiError(403, "forbidden", "only the clinic's nurses and doctors record a consent they witnessed")
    return user, encounter, role


async def _patient(db: AsyncSession, encounter: Encounter) -> tuple[User, PatientProfile | None]:
    patient = await db.get(User, encounter.patient_id)
    assert patient is not None  # the foreign key keeps it
    profile = await db.scalar(select(PatientProfile).where(
        PatientProfile.user_id == encounter.patient_id, PatientProfile.tenant_id == encounter.tenant_id))
    return patient, profile


@routes.get("/api/clinics/encounters/{encounter_id}/consent/witness")
async def witness_status(request: web.Request) -> web.Response:
    """What the nurse reads out and who must agree (``?language=`` picks the text's language)."""
    async with request.app[SESSIONS]() as db:
        _user, encounter, _role = await _encounter(request, db, "clinic.consent.read")
        patient, profile = await _patient(db, encounter)
        record = await active_consent(db, encounter.tenant_id, encounter.patient_id,
                                      ConsentPurpose.REMOTE_EXAMINATION)
    language = request.query.get("language") or request.get(LOCALE, "vi")
    text = request.app[TEXTS].get((ConsentPurpose.REMOTE_EXAMINATION, language))
    if text is None:
        raise ApiError(400, "invalid_language", "language: vi or en")
    needs_guardian, needs_child = required_roles(profile.birth_date, date.today()) if profile else (False, False)
    await audit(request.app[SESSIONS], audit_context(request), "clinic.consent.read", Outcome.SUCCESS,
                target_type="encounter", target_id=encounter.id, tenant_id=encounter.tenant_id)
    return web.json_response({
        "given": record is not None, "record": record_json(record) if record else None,
        "text": {"purpose": text.purpose.value, "version": text.version, "language": text.language,
                 "title": text.title, "body": text.body, "sha256": text.sha256},
        "patient_name": patient.display_name, "needs_guardian": needs_guardian, "needs_child_assent": needs_child,
        "guardian_name": profile.guardian_name if profile else None,
    })


@routes.post("/api/clinics/encounters/{encounter_id}/consent/witness")
async def record_witnessed(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:  # who may, before reading what they sent
        await _encounter(request, db, "clinic.consent.witness")
    body = await parse_body(request, WitnessedConsentIn)
    text = request.app[TEXTS].get((body.purpose, body.language))
    if text is None or text.version != body.text_version:
        raise ApiError(409, "text_changed", "the consent text has changed: read the current version out again")
    app = request.app
    async with app[SESSIONS].begin() as db:
        user, encounter, role = await _encounter(request, db, "clinic.consent.witness")
        _patient_user, profile = await _patient(db, encounter)
        needs_guardian, needs_child = required_roles(profile.birth_date, date.today()) if profile else (False, False)
        # The same rules as the patient's own path; a refusal is recorded whoever voices it.
        if body.accepted and needs_guardian and body.decided_by != "guardian":
            raise ApiError(422, "guardian_required", "a patient under 18 needs a parent's or guardian's consent")
        if body.accepted and not needs_guardian and body.decided_by != "patient":
            raise ApiError(422, "patient_decides", "an adult patient decides for themselves")
        if body.accepted and needs_child and body.child_assent is not True:
            raise ApiError(422, "child_assent_required", "from age 7 the child must agree too")
        context = audit_context(request)
        record = ConsentRecord(
            tenant_id=encounter.tenant_id, patient_id=encounter.patient_id, purpose=body.purpose,
            text_version=text.version, text_language=text.language, text_sha256=text.sha256,
            accepted=body.accepted, decided_by=user.id, decided_as=f"witness_{body.decided_by}",
            guardian_name=body.decider_name if body.decided_by == "guardian" else None,
            child_assent=body.child_assent if needs_child else None, ip=context.ip,
            user_agent=(context.user_agent or "")[:300] or None)
        db.add(record)
        await db.flush()
        statement = {
            "consent_id": record.id, "purpose": body.purpose.value, "accepted": body.accepted,
            "text_version": text.version, "text_language": text.language, "text_sha256": text.sha256,
            "decided_by": body.decided_by, "decider_name": body.decider_name, "method": body.method,
            "child_assent": record.child_assent, "witness_id": user.id, "witness_name": user.display_name,
            "witness_role": role.value, "encounter_id": encounter.id, "recorded_at": record.decided_at.isoformat(),
        }
        document = Document(tenant_id=encounter.tenant_id, kind=DocumentKind.CONSENT,
                            title="Biên bản ghi nhận ý kiến đồng ý (người làm chứng)",
                            subject_type=SubjectType.PATIENT, subject_id=encounter.patient_id,
                            context_type=CONTEXT, context_id=record.id, created_by=user.id)
        db.add(document)
        await db.flush()
        await documents.add_version(
            db, app[DOCUMENT_STORAGE], document, 1,
            documents.Content("application/json", json.dumps(statement, ensure_ascii=False).encode("utf-8")),
            author_id=user.id, max_bytes=app[SETTINGS].document_max_bytes)
        await documents.sign(db, document, 1, signer_id=user.id, role=role)  # the witness signs the statement
        db.add(audit_row(context, f"clinic.consent.{'accept' if body.accepted else 'refuse'}", Outcome.SUCCESS,
                         target_type="consent", target_id=record.id, tenant_id=encounter.tenant_id))
    return web.json_response({**record_json(record), "witnessed_by": user.id, "method": body.method,
                              "decider_name": body.decider_name, "statement_document_id": document.id}, status=201)


async def _read_scan(request: web.Request, max_bytes: int) -> documents.Content:
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "invalid_body", "send the scan as multipart/form-data with a 'file' part")
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            data.extend(chunk)
            if len(data) > max_bytes:
                raise ApiError(413, "content_refused", f"the file is larger than {max_bytes} bytes")
        content_type = part.headers.get("Content-Type", "application/octet-stream")
        if content_type not in SCAN_TYPES:
            raise ApiError(415, "content_refused", "a scan is a PDF, JPEG or PNG file")
        return documents.Content(content_type, bytes(data), part.filename)
    raise ApiError(400, "invalid_body", "a 'file' part is required")


@routes.post("/api/clinics/consents/{consent_id}/evidence")
async def add_scan(request: web.Request) -> web.Response:
    """The scan of a signed paper consent form, kept as a consent document linked to the record."""
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    consent_id = request.match_info["consent_id"]
    async with request.app[SESSIONS]() as db:
        record = await db.get(ConsentRecord, consent_id)
    role = witness_role(user, record.tenant_id) if record else None
    if record is None or role is None:
        # The patient does not add evidence to their own record: for them, too, there is nothing here.
        await audit(request.app[SESSIONS], audit_context(request), "clinic.consent.evidence", Outcome.DENIED,
                    target_type="consent", target_id=consent_id[:64])
        raise ApiError(404, "not_found", "no such consent")
    app = request.app
    content = await _read_scan(request, app[SETTINGS].document_max_bytes)
    async with app[SESSIONS].begin() as db:
        document = Document(tenant_id=record.tenant_id, kind=DocumentKind.CONSENT,
                            title="Phiếu đồng ý đã ký (bản quét)", subject_type=SubjectType.PATIENT,
                            subject_id=record.patient_id, context_type=CONTEXT, context_id=record.id,
                            created_by=user.id)
        db.add(document)
        await db.flush()
        try:
            version = await documents.add_version(db, app[DOCUMENT_STORAGE], document, 1, content,
                                                  author_id=user.id, max_bytes=app[SETTINGS].document_max_bytes)
        except ContentRefused as exc:
            raise ApiError(415, "content_refused", str(exc)) from None
        db.add(audit_row(audit_context(request), "clinic.consent.evidence", Outcome.SUCCESS, target_type="consent",
                         target_id=record.id, tenant_id=record.tenant_id))
    return web.json_response({"document_id": document.id, "consent_id": record.id, "sha256": version.sha256,
                              "content_type": version.content_type, "size": version.size,
                              "added_at": utcnow().isoformat()}, status=201)

