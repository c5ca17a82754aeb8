"""Patients of a facility: register (validated identifiers, a guardian for minors), search, read.

Staff of the facility (facility admin, doctors, nurses) register and read its patients; a patient
reads their own record; anyone else gets 404, and every read or write is audited.
"""

from __future__ import annotations

import secrets
from datetime import date

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from clinics.identifiers import InvalidIdentifier, parse_bhyt, parse_cccd
from clinics.models import PatientProfile, Sex
from server.auth.accounts import assign_role, create_user
from server.auth.models import Role, Tenant, User
from server.auth.sessions import CurrentUser
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit, audit_row
from server.requestctx import USER, audit_context
from server.validation import parse_body

routes = web.RouteTableDef()
STAFF = frozenset({Role.FACILITY_ADMIN, Role.DOCTOR, Role.NURSE})
ADULT_AGE = 18  # Luật KCB: patients under 18 are represented by a parent or guardian
NO_EMAIL_DOMAIN = "patients.caunoi.invalid"  # .invalid never resolves: nothing is ever sent there


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


class Guardian(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=8, max_length=20, pattern=r"^\+?[0-9 ]+$")
    relationship: str = Field(min_length=1, max_length=50)


class PatientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(min_length=1, max_length=200)
    birth_date: date
    sex: Sex
    phone: str | None = Field(default=None, max_length=20, pattern=r"^\+?[0-9 ]+$")
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    address: str = Field(default="", max_length=300)
    cccd: str | None = None
    bhyt: str | None = None
    guardian: Guardian | None = None

    @field_validator("birth_date")
    @classmethod
    def _past(cls, value: date) -> date:
        if value > date.today() or value.year < 1900:
            raise ValueError("the date of birth must be in the past")
        return value

    @field_validator("bhyt")
    @classmethod
    def _bhyt(cls, value: str | None) -> str | None:
        try:
            return parse_bhyt(value) if value else None
        except InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _cccd_and_guardian(self) -> PatientIn:
        if self.cccd:
            try:
                self.cccd = parse_cccd(self.cccd, birth_year=self.birth_date.year).number
            except InvalidIdentifier as exc:
                raise ValueError(f"cccd: {exc}") from None
        if age_on(self.birth_date, date.today()) < ADULT_AGE and self.guardian is None:
            raise ValueError("guardian: a patient under 18 needs a parent or guardian")
        return self


def patient_json(user: User, profile: PatientProfile) -> dict[str, object]:
    return {
        "id": user.id, "display_name": user.display_name, "birth_date": profile.birth_date.isoformat(),
        "sex": profile.sex.value, "phone": profile.phone, "address": profile.address, "cccd": profile.cccd,
        "bhyt": profile.bhyt, "guardian": None if profile.guardian_name is None else {
            "name": profile.guardian_name, "phone": profile.guardian_phone,
            "relationship": profile.guardian_relationship},
    }


def _staff_of(request: web.Request) -> tuple[CurrentUser, str]:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return user, request.match_info["tenant_id"]


async def _deny(request: web.Request, action: str, target_type: str, target_id: str) -> ApiError:
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type=target_type,
                target_id=target_id[:64])
    return ApiError(404, "not_found", f"no such {target_type}")


@routes.post("/api/clinics/{tenant_id}/patients")
async def register_patient(request: web.Request) -> web.Response:
    user, tenant_id = _staff_of(request)
    if not any(user.has_role(role, tenant_id) for role in STAFF):
        raise await _deny(request, "clinic.patient.create", "facility", tenant_id)
    body = await parse_body(request, PatientIn)
    async with request.app[SESSIONS].begin() as db:
        tenant = await db.get(Tenant, tenant_id)
        assert tenant is not None
        email = body.email or f"p-{secrets.token_hex(8)}@{NO_EMAIL_DOMAIN}"
        try:
            async with db.begin_nested():
                patient = await create_user(db, email=email, display_name=body.display_name)
                patient.phone = body.phone
                await assign_role(db, patient, tenant, Role.PATIENT)
                profile = PatientProfile(
                    user_id=patient.id, tenant_id=tenant_id, birth_date=body.birth_date, sex=body.sex,
                    phone=body.phone, address=body.address, cccd=body.cccd, bhyt=body.bhyt, created_by=user.id,
                    guardian_name=body.guardian.name if body.guardian else None,
                    guardian_phone=body.guardian.phone if body.guardian else None,
                    guardian_relationship=body.guardian.relationship if body.guardian else None,
                )
                db.add(profile)
                await db.flush()
        except IntegrityError:
            raise ApiError(409, "already_registered",
                           "a patient with this CCCD number or e-mail is already registered here") from None
        db.add(audit_row(audit_context(request), "clinic.patient.create", Outcome.SUCCESS, target_type="patient",
                         target_id=patient.id, tenant_id=tenant_id))
    return web.json_response(patient_json(patient, profile), status=201)


@routes.get("/api/clinics/{tenant_id}/patients")
async def search_patients(request: web.Request) -> web.Response:
    """Search by name, phone, CCCD or BHYT (``q``): how a station finds a returning patient."""
    user, tenant_id = _staff_of(request)
    if not any(user.has_role(role, tenant_id) for role in STAFF):
        raise await _deny(request, "clinic.patient.search", "facility", tenant_id)
    q = request.query.get("q", "").strip()[:100]
    query = select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id).where(
        PatientProfile.tenant_id == tenant_id)
    if q:
        like = f"%{q}%"
        query = query.where(or_(User.display_name.ilike(like), PatientProfile.phone.like(like),
                                PatientProfile.cccd == q.replace(" ", ""),
                                PatientProfile.bhyt == q.replace(" ", "").upper()))
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(query.order_by(User.display_name).limit(50))).all()
    await audit(request.app[SESSIONS], audit_context(request), "clinic.patient.search", Outcome.SUCCESS,
                target_type="facility", target_id=tenant_id, tenant_id=tenant_id)
    return web.json_response({"patients": [patient_json(u, p) for u, p in rows]})


@routes.get("/api/clinics/{tenant_id}/patients/{patient_id}")
async def read_patient(request: web.Request) -> web.Response:
    user, tenant_id = _staff_of(request)
    patient_id = request.match_info["patient_id"]
    allowed = any(user.has_role(role, tenant_id) for role in STAFF) or (
        patient_id == user.id and user.has_role(Role.PATIENT, tenant_id))
    async with request.app[SESSIONS]() as db:
        row = (await db.execute(select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id)
                                .where(PatientProfile.tenant_id == tenant_id, User.id == patient_id))).first()
    if row is None or not allowed:
        raise await _deny(request, "clinic.patient.read", "patient", patient_id)
    await audit(request.app[SESSIONS], audit_context(request), "clinic.patient.read", Outcome.SUCCESS,
                target_type="patient", target_id=patient_id, tenant_id=tenant_id)
    return web.json_response(patient_json(row[0], row[1]))
