"""A facility's departments and practitioners, managed by its administrator.

Adding a doctor or nurse creates their account without a password: they receive a one-time link
(server/auth/activation.py) by e-mail or SMS and choose it themselves — the administrator never knows
it. Someone who already has an account (a doctor working at two facilities) is linked, not duplicated.
Leaving the facility removes the role, never the person: records they signed keep their name.

Departments (khoa, phòng) are what another facility asks for in a hội chẩn, so staff of other
telemedicine facilities may list the active ones; everything else is for the facility's own staff.
"""

from __future__ import annotations

from typing import Any, Literal

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.facilities import STAFF
from clinics.invitations import e164
from clinics.models import Department, FacilityProfile, PractitionerProfile
from server.auth import activation
from server.auth.accounts import assign_role, create_user, normalise_email
from server.auth.models import Role, RoleAssignment, Tenant, TenantKind, User
from server.auth.sessions import CurrentUser
from server.errors import ApiError
from server.keys import NOTIFIERS, SESSIONS, SETTINGS, TRANSLATOR
from server.notify.base import Notification, Notifier, NotifyError
from server.records.audit import Outcome, audit, audit_row
from server.requestctx import USER, audit_context
from server.validation import parse_body

routes = web.RouteTableDef()
PRACTITIONER_ROLES = (Role.DOCTOR, Role.NURSE)
LICENCE = r"^[0-9A-Za-zĐđ][0-9A-Za-zĐđ/.\- ]{2,39}$"  # e.g. 000123/CT-CCHN; formats changed over the years


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    code: str = Field(default="", max_length=20)
    services: str = Field(default="", max_length=2000)


class DepartmentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    code: str | None = Field(default=None, max_length=20)
    services: str | None = Field(default=None, max_length=2000)
    active: bool | None = None


class PractitionerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, max_length=20, pattern=r"^\+?[0-9 ]+$")
    role: Literal["doctor", "nurse"]
    licence_number: str = Field(pattern=LICENCE)
    specialty: str = Field(default="", max_length=100)
    scope_of_practice: str = Field(default="", max_length=2000)
    department_id: str | None = Field(default=None, max_length=36)


class PractitionerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["doctor", "nurse"] | None = None
    licence_number: str | None = Field(default=None, pattern=LICENCE)
    specialty: str | None = Field(default=None, max_length=100)
    scope_of_practice: str | None = Field(default=None, max_length=2000)
    department_id: str | None = Field(default=None, max_length=36)
    active: bool | None = None


def _user(request: web.Request) -> CurrentUser:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return user


async def _deny(request: web.Request, action: str, target_type: str, target_id: str) -> ApiError:
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type=target_type,
                target_id=target_id[:64])
    return ApiError(404, "not_found", f"no such {target_type}")


async def _admin_of(request: web.Request, action: str) -> tuple[CurrentUser, str]:
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not user.has_role(Role.FACILITY_ADMIN, tenant_id):
        raise await _deny(request, action, "facility", tenant_id)
    return user, tenant_id


def is_clinic_staff_anywhere(user: CurrentUser) -> bool:
    return any(r.role in STAFF for r in user.roles)


def department_json(d: Department) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "code": d.code, "services": d.services, "active": d.active}


async def _department_of(db: AsyncSession, tenant_id: str, department_id: str | None) -> str | None:
    if department_id is None:
        return None
    found = await db.scalar(select(Department.id).where(Department.id == department_id,
                                                        Department.tenant_id == tenant_id, Department.active))
    if found is None:
        raise ApiError(422, "invalid_department", "not an active department of this facility")
    return found


@routes.get("/api/clinics/{tenant_id}/departments")
async def list_departments(request: web.Request) -> web.Response:
    """Staff see all their facility's departments; staff of other facilities see the active ones of a
    facility that offers telemedicine (to address a hội chẩn); anyone else 404."""
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    own = any(user.has_role(role, tenant_id) for role in STAFF)
    async with request.app[SESSIONS]() as db:
        profile = await db.get(FacilityProfile, tenant_id)
        if not own and not (is_clinic_staff_anywhere(user) and profile is not None and profile.telemedicine_enabled):
            raise await _deny(request, "clinic.department.list", "facility", tenant_id)
        query = select(Department).where(Department.tenant_id == tenant_id).order_by(Department.name)
        if not own:
            query = query.where(Department.active)
        departments = (await db.execute(query)).scalars().all()
    return web.json_response({"departments": [department_json(d) for d in departments]})


@routes.post("/api/clinics/{tenant_id}/departments")
async def create_department(request: web.Request) -> web.Response:
    _admin, tenant_id = await _admin_of(request, "clinic.department.create")
    body = await parse_body(request, DepartmentIn)
    try:
        async with request.app[SESSIONS].begin() as db:
            department = Department(tenant_id=tenant_id, name=body.name.strip(), code=body.code.strip(),
                                    services=body.services.strip())
            db.add(department)
            await db.flush()
            db.add(audit_row(audit_context(request), "clinic.department.create", Outcome.SUCCESS,
                             target_type="department", target_id=department.id, tenant_id=tenant_id))
    except IntegrityError:
        raise ApiError(409, "duplicate_department", "this facility already has a department of that name") from None
    return web.json_response(department_json(department), status=201)


@routes.patch("/api/clinics/departments/{department_id}")
async def update_department(request: web.Request) -> web.Response:
    user = _user(request)
    department_id = request.match_info["department_id"]
    async with request.app[SESSIONS]() as db:
        department = await db.get(Department, department_id)
    if department is None or not user.has_role(Role.FACILITY_ADMIN, department.tenant_id):
        raise await _deny(request, "clinic.department.update", "department", department_id)
    body = await parse_body(request, DepartmentPatch)
    try:
        async with request.app[SESSIONS].begin() as db:
            department = await db.get(Department, department_id)
            assert department is not None
            for name, value in body.model_dump(exclude_none=True).items():
                setattr(department, name, value.strip() if isinstance(value, str) else value)
            db.add(audit_row(audit_context(request), "clinic.department.update", Outcome.SUCCESS,
                             target_type="department", target_id=department.id, tenant_id=department.tenant_id))
    except IntegrityError:
        raise ApiError(409, "duplicate_department", "this facility already has a department of that name") from None
    return web.json_response(department_json(department))


async def practitioners_of(db: AsyncSession, tenant_id: str) -> list[dict[str, Any]]:
    rows = (await db.execute(
        select(PractitionerProfile, User, Department.name)
        .join(User, User.id == PractitionerProfile.user_id)
        .outerjoin(Department, Department.id == PractitionerProfile.department_id)
        .where(PractitionerProfile.tenant_id == tenant_id).order_by(User.display_name))).all()
    roles = (await db.execute(select(RoleAssignment.user_id, RoleAssignment.role).where(
        RoleAssignment.tenant_id == tenant_id, RoleAssignment.role.in_(PRACTITIONER_ROLES)))).all()
    role_of = {user_id: role.value for user_id, role in roles}
    return [{"user_id": user.id, "name": user.display_name, "email": user.email, "phone": user.phone,
             "role": role_of.get(user.id), "active": user.id in role_of, "password_set": user.password_hash is not None,
             "licence_number": profile.licence_number, "specialty": profile.specialty,
             "scope_of_practice": profile.scope_of_practice, "department_id": profile.department_id,
             "department": department} for profile, user, department in rows]


@routes.get("/api/clinics/{tenant_id}/practitioners")
async def list_practitioners(request: web.Request) -> web.Response:
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not any(user.has_role(role, tenant_id) for role in STAFF):
        raise await _deny(request, "clinic.practitioner.list", "facility", tenant_id)
    async with request.app[SESSIONS]() as db:
        people = await practitioners_of(db, tenant_id)
    return web.json_response({"practitioners": people}, headers={"Cache-Control": "no-store"})


async def send_password_link(request: web.Request, user: User, facility: str, token: str) -> tuple[str, list[str]]:
    """Shown once to the administrator (to read out if no message arrives) and sent to the person."""
    app = request.app
    link = f"{app[SETTINGS].effective_public_url}{activation.LINK_PATH}{token}"
    _ = app[TRANSLATOR].gettext
    notification = Notification(
        subject=_("Your Cầu Nối account at {facility}").format(facility=facility),
        body=_("{facility} added you to Cầu Nối. Choose your password here (the link works once, for 3 days): "
               "{link}").format(facility=facility, link=link),
        email=user.email, phone=e164(user.phone))
    notifiers: list[Notifier] = app[NOTIFIERS]
    sent = []
    for notifier in notifiers:
        if not notifier.accepts(notification):
            continue
        try:
            await notifier.send(notification)
            sent.append(notifier.channel)
        except NotifyError:  # the administrator still has the link to pass on
            await audit(app[SESSIONS], audit_context(request), f"auth.password_link.send.{notifier.channel}",
                        Outcome.FAILURE, target_type="user", target_id=user.id)
    return link, sent


@routes.post("/api/clinics/{tenant_id}/practitioners")
async def add_practitioner(request: web.Request) -> web.Response:
    admin, tenant_id = await _admin_of(request, "clinic.practitioner.create")
    body = await parse_body(request, PractitionerIn)
    email = normalise_email(body.email)
    async with request.app[SESSIONS].begin() as db:
        tenant = await db.get(Tenant, tenant_id)
        if tenant is None or tenant.kind != TenantKind.FACILITY:
            raise ApiError(404, "not_found", "no such facility")
        department_id = await _department_of(db, tenant_id, body.department_id)
        user = await db.scalar(select(User).where(User.email == email))
        if user is not None and await db.scalar(select(PractitionerProfile.id).where(
                PractitionerProfile.user_id == user.id, PractitionerProfile.tenant_id == tenant_id)):
            raise ApiError(409, "already_registered", "this person is already on the facility's staff")
        existing = user is not None
        if user is None:
            user = await create_user(db, email=email, display_name=body.display_name.strip())
            user.phone = e164(body.phone)
        await assign_role(db, user, tenant, Role(body.role))
        db.add(PractitionerProfile(user_id=user.id, tenant_id=tenant_id, licence_number=body.licence_number.strip(),
                                   specialty=body.specialty.strip(), scope_of_practice=body.scope_of_practice.strip(),
                                   department_id=department_id))
        # Someone who already has a password logs in as before; a new account gets its link.
        token = None if existing and user.password_hash else await activation.issue(db, user.id, admin.id)
        db.add(audit_row(audit_context(request), "clinic.practitioner.create", Outcome.SUCCESS, target_type="user",
                         target_id=user.id, tenant_id=tenant_id))
        facility = tenant.name
    link, sent = await send_password_link(request, user, facility, token) if token else (None, [])
    return web.json_response({"user_id": user.id, "existing_account": existing, "password_link": link,
                              "sent_via": sent}, status=201, headers={"Cache-Control": "no-store"})


async def _practitioner(request: web.Request, db: AsyncSession, tenant_id: str, action: str) -> PractitionerProfile:
    user_id = request.match_info["user_id"]
    profile = await db.scalar(select(PractitionerProfile).where(PractitionerProfile.user_id == user_id,
                                                                PractitionerProfile.tenant_id == tenant_id))
    if profile is None:
        raise await _deny(request, action, "practitioner", user_id)
    return profile


@routes.patch("/api/clinics/{tenant_id}/practitioners/{user_id}")
async def update_practitioner(request: web.Request) -> web.Response:
    """Licence, specialty, scope, department, role; ``active: false`` when someone leaves the facility
    (their role goes, their profile and signatures stay), ``true`` when they come back."""
    _admin, tenant_id = await _admin_of(request, "clinic.practitioner.update")
    body = await parse_body(request, PractitionerPatch)
    async with request.app[SESSIONS].begin() as db:
        profile = await _practitioner(request, db, tenant_id, "clinic.practitioner.update")
        changes = body.model_dump(exclude_unset=True)
        if "department_id" in changes:
            profile.department_id = await _department_of(db, tenant_id, body.department_id)
        for name in ("licence_number", "specialty", "scope_of_practice"):
            if changes.get(name) is not None:
                setattr(profile, name, changes[name].strip())
        current = await db.scalar(select(RoleAssignment.role).where(
            RoleAssignment.user_id == profile.user_id, RoleAssignment.tenant_id == tenant_id,
            RoleAssignment.role.in_(PRACTITIONER_ROLES)))
        active = body.active if body.active is not None else current is not None
        target = (Role(body.role) if body.role else current) if active else None
        if active and target is None:
            raise ApiError(422, "role_required", "say in which role they come back (doctor or nurse)")
        if target != current:
            await db.execute(delete(RoleAssignment).where(
                RoleAssignment.user_id == profile.user_id, RoleAssignment.tenant_id == tenant_id,
                RoleAssignment.role.in_(PRACTITIONER_ROLES)))
            if target is not None:
                db.add(RoleAssignment(user_id=profile.user_id, tenant_id=tenant_id, role=target))
        db.add(audit_row(audit_context(request), "clinic.practitioner.update", Outcome.SUCCESS, target_type="user",
                         target_id=profile.user_id, tenant_id=tenant_id))
    async with request.app[SESSIONS]() as db:
        person = next(p for p in await practitioners_of(db, tenant_id) if p["user_id"] == profile.user_id)
    return web.json_response(person)


@routes.post("/api/clinics/{tenant_id}/practitioners/{user_id}/password-link")
async def new_password_link(request: web.Request) -> web.Response:
    """A new one-time link (the first was lost, or the password forgotten); earlier links stop working."""
    admin, tenant_id = await _admin_of(request, "clinic.practitioner.password_link")
    async with request.app[SESSIONS].begin() as db:
        profile = await _practitioner(request, db, tenant_id, "clinic.practitioner.password_link")
        user = await db.get(User, profile.user_id)
        tenant = await db.get(Tenant, tenant_id)
        assert user is not None and tenant is not None
        token = await activation.issue(db, user.id, admin.id)
        db.add(audit_row(audit_context(request), "clinic.practitioner.password_link", Outcome.SUCCESS,
                         target_type="user", target_id=user.id, tenant_id=tenant_id))
    link, sent = await send_password_link(request, user, tenant.name, token)
    return web.json_response({"password_link": link, "sent_via": sent}, status=201,
                             headers={"Cache-Control": "no-store"})


@routes.get("/clinic/{tenant_id}/staff")
@aiohttp_jinja2.template("clinics/staff.html")
async def staff_page(request: web.Request) -> dict[str, object]:
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    tenant_id = request.match_info["tenant_id"]
    if not user.has_role(Role.FACILITY_ADMIN, tenant_id):
        await _deny(request, "clinic.staff.view", "facility", tenant_id)
        raise web.HTTPNotFound()
    async with request.app[SESSIONS]() as db:
        tenant = await db.get(Tenant, tenant_id)
    return {"tenant_id": tenant_id, "facility": tenant.name if tenant else ""}
