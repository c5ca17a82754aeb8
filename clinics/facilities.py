"""Facility profiles (level, codes, the telemedicine eligibility announcement), effective-dated
parents, and the Thông tư 30 eligibility check."""

from __future__ import annotations

from datetime import date

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.eligibility import ConditionList, InvalidCode
from clinics.models import FacilityLevel, FacilityParent, FacilityProfile
from server.auth.models import Role, Tenant, TenantKind
from server.auth.sessions import CurrentUser
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit, audit_row
from server.requestctx import USER, audit_context
from server.rooms.models import Room, RoomKind
from server.validation import parse_body

routes = web.RouteTableDef()
CLINICAL = frozenset({Role.DOCTOR, Role.NURSE})
STAFF = CLINICAL | {Role.FACILITY_ADMIN}
CONDITIONS = web.AppKey("clinics_conditions", ConditionList)


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: FacilityLevel
    facility_code: str | None = Field(default=None, pattern=r"^[0-9A-Z]{5}$")
    province_code: str | None = Field(default=None, pattern=r"^[0-9]{2,3}$")
    telemedicine_enabled: bool = False
    eligibility_reference: str = Field(default="", max_length=200)
    eligibility_date: date | None = None

    @model_validator(mode="after")
    def _announced(self) -> ProfileIn:
        if self.telemedicine_enabled and not (self.eligibility_reference and self.eligibility_date):
            raise ValueError("telemedicine needs the reference and date of the eligibility announcement "
                             "(Decree 96/2023, Art. 87)")
        return self


class ParentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parent_id: str = Field(max_length=36)
    valid_from: date


class EligibilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    icd10: str = Field(min_length=1, max_length=10)
    patient_id: str | None = Field(default=None, max_length=36)


def _user(request: web.Request) -> CurrentUser:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return user


async def _deny(request: web.Request, action: str, tenant_id: str) -> ApiError:
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type="facility",
                target_id=tenant_id[:64])
    return ApiError(404, "not_found", "no such facility")


def profile_json(profile: FacilityProfile | None) -> dict[str, object]:
    if profile is None:
        return {"level": None, "telemedicine_enabled": False}
    return {"level": profile.level.value, "facility_code": profile.facility_code,
            "province_code": profile.province_code, "telemedicine_enabled": profile.telemedicine_enabled,
            "eligibility_reference": profile.eligibility_reference,
            "eligibility_date": profile.eligibility_date.isoformat() if profile.eligibility_date else None}


@routes.get("/api/clinics/{tenant_id}/profile")
async def get_profile(request: web.Request) -> web.Response:
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not any(user.has_role(role, tenant_id) for role in STAFF):
        raise await _deny(request, "clinic.profile.read", tenant_id)
    async with request.app[SESSIONS]() as db:
        return web.json_response(profile_json(await db.get(FacilityProfile, tenant_id)))


@routes.put("/api/clinics/{tenant_id}/profile")
async def put_profile(request: web.Request) -> web.Response:
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not user.has_role(Role.FACILITY_ADMIN, tenant_id):
        raise await _deny(request, "clinic.profile.write", tenant_id)
    body = await parse_body(request, ProfileIn)
    async with request.app[SESSIONS].begin() as db:
        profile = await db.get(FacilityProfile, tenant_id) or FacilityProfile(tenant_id=tenant_id)
        for field, value in body.model_dump().items():
            setattr(profile, field, value)
        db.add(profile)
        db.add(audit_row(audit_context(request), "clinic.profile.write", Outcome.SUCCESS, target_type="facility",
                         target_id=tenant_id, tenant_id=tenant_id))
    return web.json_response(profile_json(profile))


async def parent_at(db: AsyncSession, child_id: str, day: date) -> str | None:
    """The facility ``child_id`` reported to on ``day`` (history stays true after a merger)."""
    return await db.scalar(select(FacilityParent.parent_id).where(
        FacilityParent.child_id == child_id, FacilityParent.valid_from <= day,
        or_(FacilityParent.valid_until.is_(None), FacilityParent.valid_until > day)))


@routes.post("/api/clinics/{tenant_id}/parents")
async def set_parent(request: web.Request) -> web.Response:
    """From ``valid_from`` on, the facility reports to ``parent_id``; the previous link ends that day.
    Re-parenting follows provincial reorganisations, so only the platform administrator does it."""
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not user.has_role(Role.PLATFORM_ADMIN):
        raise await _deny(request, "clinic.parent.write", tenant_id)
    body = await parse_body(request, ParentIn)
    async with request.app[SESSIONS].begin() as db:
        for facility_id in (tenant_id, body.parent_id):
            tenant = await db.get(Tenant, facility_id)
            if tenant is None or tenant.kind != TenantKind.FACILITY or body.parent_id == tenant_id:
                raise ApiError(422, "invalid_parent", "both must be distinct health facilities")
        open_links = (await db.execute(select(FacilityParent).where(
            FacilityParent.child_id == tenant_id, FacilityParent.valid_until.is_(None)))).scalars().all()
        for link in open_links:
            if link.valid_from >= body.valid_from:
                raise ApiError(409, "overlapping_parent", "a later parent link already exists")
            link.valid_until = body.valid_from
        db.add(FacilityParent(child_id=tenant_id, parent_id=body.parent_id, valid_from=body.valid_from))
        db.add(audit_row(audit_context(request), "clinic.parent.write", Outcome.SUCCESS, target_type="facility",
                         target_id=tenant_id, tenant_id=tenant_id))
    return web.json_response({"child_id": tenant_id, "parent_id": body.parent_id,
                              "valid_from": body.valid_from.isoformat()}, status=201)


@routes.get("/api/clinics/{tenant_id}/parents")
async def list_parents(request: web.Request) -> web.Response:
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not (user.has_role(Role.PLATFORM_ADMIN) or any(user.has_role(r, tenant_id) for r in STAFF)):
        raise await _deny(request, "clinic.parent.read", tenant_id)
    try:
        day = date.fromisoformat(request.query["at"]) if "at" in request.query else date.today()
    except ValueError:
        raise ApiError(400, "invalid_date", "at is a date like 2025-07-01") from None
    async with request.app[SESSIONS]() as db:
        links = (await db.execute(select(FacilityParent).where(FacilityParent.child_id == tenant_id)
                                  .order_by(FacilityParent.valid_from))).scalars().all()
        current = await parent_at(db, tenant_id, day)
    return web.json_response({"at": day.isoformat(), "parent_id": current, "history": [
        {"parent_id": link.parent_id, "valid_from": link.valid_from.isoformat(),
         "valid_until": link.valid_until.isoformat() if link.valid_until else None} for link in links]})


@routes.post("/api/clinics/{tenant_id}/eligibility")
async def check_eligibility(request: web.Request) -> web.Response:
    """Thông tư 30/2023: may this diagnosis be treated remotely? The decision is audited."""
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not any(user.has_role(role, tenant_id) for role in CLINICAL):
        raise await _deny(request, "clinic.eligibility.check", tenant_id)
    body = await parse_body(request, EligibilityIn)
    try:
        decision = request.app[CONDITIONS].decide(body.icd10)
    except InvalidCode as exc:
        raise ApiError(400, "invalid_icd10", str(exc)) from None
    async with request.app[SESSIONS].begin() as db:
        db.add(audit_row(audit_context(request), f"clinic.eligibility.{decision.verdict.value}", Outcome.SUCCESS,
                         target_type="patient" if body.patient_id else "facility",
                         target_id=body.patient_id or tenant_id, tenant_id=tenant_id))
    conditions = request.app[CONDITIONS]
    return web.json_response({
        "code": decision.code, "verdict": decision.verdict.value,
        "condition": None if decision.condition is None else {
            "number": decision.condition.number, "specialty": decision.condition.specialty,
            "name": decision.condition.name},
        "list": {"title": conditions.title, "version": conditions.version, "complete": conditions.complete},
        # What the page offers when the answer is not "eligible".
        "alternatives": [] if decision.condition else ["referral", "in_person_booking"],
    })


async def telemedicine_allowed(db: AsyncSession, room: Room, user_id: str) -> str | None:
    """A room admission check (server.rooms.policy): consultations only in announced facilities."""
    if room.kind != RoomKind.CONSULTATION:
        return None
    profile = await db.get(FacilityProfile, room.tenant_id)
    if profile is None or not profile.telemedicine_enabled:
        return "telemedicine_not_enabled"
    return None
