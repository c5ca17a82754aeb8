"""Consent (Luật 91/2025 on personal data): explicit, per purpose, withdrawable, provable.

- Explicit: the request must say ``accepted: true`` for the exact text version shown; silence,
  pre-ticked boxes or a missing answer are never consent.
- A patient under 18 is represented by a parent or guardian; from age 7 the child's own assent is
  required as well (Luật 91 Đ24 k2).
- Every decision is a record with its evidence (text version and hash, who, as whom, when, from
  where); withdrawal is recorded, never a deletion. Texts ship as a replaceable data file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.models import ConsentPurpose, ConsentRecord, Encounter, PatientProfile
from clinics.patients import ADULT_AGE, age_on
from server.db.base import utcnow
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit, audit_row
from server.requestctx import LOCALE, USER, audit_context
from server.validation import parse_body

routes = web.RouteTableDef()
TEXTS_FILE = Path(__file__).parent / "data" / "consent-texts.json"
CHILD_ASSENT_AGE = 7


@dataclass(frozen=True, slots=True)
class ConsentText:
    purpose: ConsentPurpose
    version: int
    language: str
    title: str
    body: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()


def load_texts(path: Path = TEXTS_FILE) -> dict[tuple[ConsentPurpose, str], ConsentText]:
    """The newest version of each purpose in each language."""
    result: dict[tuple[ConsentPurpose, str], ConsentText] = {}
    for item in json.loads(path.read_text(encoding="utf-8"))["texts"]:
        text = ConsentText(ConsentPurpose(item["purpose"]), int(item["version"]), item["language"], item["title"],
                           item["body"])
        key = (text.purpose, text.language)
        if key not in result or result[key].version < text.version:
            result[key] = text
    return result


TEXTS = web.AppKey("consent_texts", dict[tuple[ConsentPurpose, str], ConsentText])


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: ConsentPurpose
    text_version: int = Field(ge=1)
    language: str = Field(pattern=r"^(vi|en)$")
    accepted: bool
    guardian_name: str | None = Field(default=None, max_length=200)
    child_assent: bool | None = None


def required_roles(birth: date, today: date) -> tuple[bool, bool]:
    """(needs a guardian, needs the child's own assent) for a patient born on ``birth``."""
    age = age_on(birth, today)
    return age < ADULT_AGE, CHILD_ASSENT_AGE <= age < ADULT_AGE


async def active_consent(db: AsyncSession, tenant_id: str, patient_id: str, purpose: ConsentPurpose
                         ) -> ConsentRecord | None:
    """The latest decision for this purpose if it is an acceptance that has not been withdrawn."""
    latest = await db.scalar(select(ConsentRecord).where(
        ConsentRecord.tenant_id == tenant_id, ConsentRecord.patient_id == patient_id,
        ConsentRecord.purpose == purpose).order_by(ConsentRecord.decided_at.desc()).limit(1))
    if latest is None or not latest.accepted or latest.withdrawn_at is not None:
        return None
    return latest


def record_json(record: ConsentRecord) -> dict[str, object]:
    return {"id": record.id, "purpose": record.purpose.value, "accepted": record.accepted,
            "text_version": record.text_version, "text_language": record.text_language,
            "text_sha256": record.text_sha256, "decided_as": record.decided_as,
            "guardian_name": record.guardian_name, "child_assent": record.child_assent,
            "decided_at": record.decided_at.isoformat(),
            "withdrawn_at": record.withdrawn_at.isoformat() if record.withdrawn_at else None}


async def _own_encounter(request: web.Request, db: AsyncSession) -> Encounter:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    encounter_id = request.match_info["encounter_id"]
    encounter = await db.get(Encounter, encounter_id)
    if encounter is None or encounter.patient_id != user.id:
        await audit(request.app[SESSIONS], audit_context(request), "clinic.consent", Outcome.DENIED,
                    target_type="encounter", target_id=encounter_id[:64])
        raise ApiError(404, "not_found", "no such visit")
    return encounter


@routes.get("/api/clinics/encounters/{encounter_id}/consent")
async def consent_status(request: web.Request) -> web.Response:
    """What this visit still needs: the text to show and who must agree."""
    async with request.app[SESSIONS]() as db:
        encounter = await _own_encounter(request, db)
        profile = await db.scalar(select(PatientProfile).where(
            PatientProfile.user_id == encounter.patient_id, PatientProfile.tenant_id == encounter.tenant_id))
        record = await active_consent(db, encounter.tenant_id, encounter.patient_id,
                                      ConsentPurpose.REMOTE_EXAMINATION)
    needs_guardian, needs_child = required_roles(profile.birth_date, date.today()) if profile else (False, False)
    language = request.get(LOCALE, "vi")
    text = request.app[TEXTS][(ConsentPurpose.REMOTE_EXAMINATION, language)]
    return web.json_response({
        "given": record is not None, "record": record_json(record) if record else None,
        "text": {"purpose": text.purpose.value, "version": text.version, "language": text.language,
                 "title": text.title, "body": text.body, "sha256": text.sha256},
        "needs_guardian": needs_guardian, "needs_child_assent": needs_child,
        "guardian_name": profile.guardian_name if profile else None,
    })


@routes.post("/api/clinics/encounters/{encounter_id}/consent")
async def give_consent(request: web.Request) -> web.Response:
    body = await parse_body(request, ConsentIn)
    text = request.app[TEXTS].get((body.purpose, body.language))
    if text is None or text.version != body.text_version:
        raise ApiError(409, "text_changed", "the consent text has changed: read the current version and decide again")
    async with request.app[SESSIONS].begin() as db:
        encounter = await _own_encounter(request, db)
        profile = await db.scalar(select(PatientProfile).where(
            PatientProfile.user_id == encounter.patient_id, PatientProfile.tenant_id == encounter.tenant_id))
        needs_guardian, needs_child = required_roles(profile.birth_date, date.today()) if profile else (False, False)
        if body.accepted and needs_guardian and not body.guardian_name:
            raise ApiError(422, "guardian_required", "a patient under 18 needs a parent's or guardian's consent")
        if body.accepted and needs_child and body.child_assent is not True:
            raise ApiError(422, "child_assent_required", "from age 7 the child must agree too")
        context = audit_context(request)
        record = ConsentRecord(
            tenant_id=encounter.tenant_id, patient_id=encounter.patient_id, purpose=body.purpose,
            text_version=text.version, text_language=text.language, text_sha256=text.sha256,
            accepted=body.accepted, decided_by=request[USER].id,
            decided_as="guardian" if needs_guardian else "patient", guardian_name=body.guardian_name,
            child_assent=body.child_assent if needs_child else None, ip=context.ip,
            user_agent=(context.user_agent or "")[:300] or None)
        db.add(record)
        await db.flush()
        db.add(audit_row(context, f"clinic.consent.{'accept' if body.accepted else 'refuse'}", Outcome.SUCCESS,
                         target_type="consent", target_id=record.id, tenant_id=encounter.tenant_id))
    return web.json_response(record_json(record), status=201)


@routes.post("/api/clinics/consents/{consent_id}/withdraw")
async def withdraw(request: web.Request) -> web.Response:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    consent_id = request.match_info["consent_id"]
    async with request.app[SESSIONS].begin() as db:
        record = await db.get(ConsentRecord, consent_id)
        if record is None or record.patient_id != user.id:
            # Audited in its own transaction: this one rolls back with the error.
            await audit(request.app[SESSIONS], audit_context(request), "clinic.consent.withdraw", Outcome.DENIED,
                        target_type="consent", target_id=consent_id[:64])
            raise ApiError(404, "not_found", "no such consent")
        if record.withdrawn_at is None:
            record.withdrawn_at = utcnow()
            record.withdrawn_by = user.id
        db.add(audit_row(audit_context(request), "clinic.consent.withdraw", Outcome.SUCCESS,
                         target_type="consent", target_id=record.id, tenant_id=record.tenant_id))
    return web.json_response(record_json(record))
