"""Remote visits: create one (with a one-time join link for the patient), the virtual waiting room,
admission, the end of the visit. The patient's room token is refused until the doctor admits them.

Live state for the waiting room is polled (GET …/waiting) — cheap, works through any proxy and on
weak 3G where a dropped WebSocket would be re-established anyway.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics import invitations
from clinics.consent import active_consent
from clinics.facilities import STAFF as CLINIC_STAFF
from clinics.models import ConsentPurpose, Encounter, EncounterStatus, JoinLink, PatientProfile
from server.auth.accounts import create_user
from server.auth.models import Role, RoleAssignment, User
from server.auth.sessions import COOKIE, CurrentUser, create_session
from server.db.base import utcnow
from server.errors import ApiError
from server.keys import SESSIONS, SETTINGS, TRANSLATOR
from server.records.audit import AuditContext, Outcome, audit, audit_row
from server.requestctx import USER, audit_context
from server.rooms.models import Room, RoomKind, RoomMember, RoomRole
from server.validation import parse_body

routes = web.RouteTableDef()
LINK_VALID_AFTER_START = timedelta(hours=12)
ACTIVE = (EncounterStatus.PLANNED, EncounterStatus.WAITING, EncounterStatus.IN_PROGRESS)
GUEST_EMAIL_DOMAIN = "guests.caunoi.invalid"  # .invalid never resolves: nothing is sent there


class EncounterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str = Field(max_length=36)
    practitioner_id: str | None = Field(default=None, max_length=36)
    booking_id: str | None = Field(default=None, max_length=36)
    scheduled_start: AwareDatetime | None = None
    walk_in: bool = False
    # Send the join link by SMS / e-mail; by default yes, except to a walk-in who is already here.
    send_link: bool | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(request: web.Request) -> CurrentUser:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return user


def encounter_json(e: Encounter, room: Room | None = None) -> dict[str, object]:
    return {"id": e.id, "tenant_id": e.tenant_id, "patient_id": e.patient_id, "practitioner_id": e.practitioner_id,
            "status": e.status.value, "walk_in": e.walk_in, "scheduled_start": e.scheduled_start.isoformat(),
            "arrived_at": e.arrived_at.isoformat() if e.arrived_at else None,
            "admitted_at": e.admitted_at.isoformat() if e.admitted_at else None,
            "room": room.name if room else None}


async def _deny(request: web.Request, action: str, target_type: str, target_id: str) -> ApiError:
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type=target_type,
                target_id=target_id[:64])
    return ApiError(404, "not_found", f"no such {target_type}")


def is_staff(user: CurrentUser, tenant_id: str) -> bool:
    return any(user.has_role(role, tenant_id) for role in CLINIC_STAFF)


@routes.post("/api/clinics/{tenant_id}/encounters")
async def create_encounter(request: web.Request) -> web.Response:
    """A visit for a patient of this facility, its consultation room, and a one-time join link."""
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not is_staff(user, tenant_id):
        raise await _deny(request, "clinic.encounter.create", "facility", tenant_id)
    body = await parse_body(request, EncounterIn)
    now = utcnow()
    token = secrets.token_urlsafe(32)
    async with request.app[SESSIONS].begin() as db:
        patient = await db.scalar(select(User).join(PatientProfile, PatientProfile.user_id == User.id).where(
            User.id == body.patient_id, PatientProfile.tenant_id == tenant_id))
        if patient is None:
            raise ApiError(422, "invalid_patient", "not a patient of this facility")
        practitioner_id = body.practitioner_id or (user.id if user.has_role(Role.DOCTOR, tenant_id) else None)
        if practitioner_id and not await db.scalar(select(RoleAssignment.id).where(
                RoleAssignment.user_id == practitioner_id, RoleAssignment.tenant_id == tenant_id,
                RoleAssignment.role.in_([Role.DOCTOR, Role.NURSE]))):
            raise ApiError(422, "invalid_practitioner", "not a doctor or nurse of this facility")
        room = Room(tenant_id=tenant_id, kind=RoomKind.CONSULTATION, title=f"Khám từ xa · {patient.display_name}")
        db.add(room)
        await db.flush()
        members = {patient.id: RoomRole.PARTICIPANT, user.id: RoomRole.HOST}
        if practitioner_id:
            members[practitioner_id] = RoomRole.HOST
        db.add_all(RoomMember(room_id=room.id, user_id=uid, role=role) for uid, role in members.items())
        start = body.scheduled_start or now
        encounter = Encounter(tenant_id=tenant_id, patient_id=patient.id, practitioner_id=practitioner_id,
                              room_id=room.id, booking_id=body.booking_id, walk_in=body.walk_in,
                              scheduled_start=start, created_by=user.id,
                              status=EncounterStatus.WAITING if body.walk_in else EncounterStatus.PLANNED,
                              arrived_at=now if body.walk_in else None)
        db.add(encounter)
        await db.flush()
        db.add(JoinLink(encounter_id=encounter.id, token_hash=_digest(token),
                        expires_at=max(start, now) + LINK_VALID_AFTER_START))
        db.add(audit_row(audit_context(request), "clinic.encounter.create", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=tenant_id))
    link = f"{request.app[SETTINGS].effective_public_url}/join/{token}"
    send = body.send_link if body.send_link is not None else not body.walk_in
    sent_via = await invitations.send_link(request.app, audit_context(request), encounter, link) if send else []
    return web.json_response({**encounter_json(encounter, room), "join_link": link, "sent_via": sent_via}, status=201,
                             headers={"Cache-Control": "no-store"})


@routes.get("/join/{token}")
async def join(request: web.Request) -> web.StreamResponse:
    """Exchange a one-time link for a session of the patient, then go to the visit."""
    token = request.match_info["token"]
    context = audit_context(request)
    async with request.app[SESSIONS].begin() as db:
        link = await db.scalar(select(JoinLink).where(JoinLink.token_hash == _digest(token)).with_for_update())
        encounter = await db.get(Encounter, link.encounter_id) if link else None
        if link is None or encounter is None or link.used_at is not None or link.expires_at < utcnow() \
                or encounter.status not in ACTIVE:
            # In a transaction of its own: this one rolls back with the error.
            await audit(request.app[SESSIONS], context, "clinic.join_link", Outcome.DENIED, target_type="join_link")
            _ = request.app[TRANSLATOR].gettext
            raise web.HTTPGone(
                text=_("This link has expired or was already used. Please ask the clinic for a new one."))
        link.used_at = utcnow()
        who = link.guest_user_id or encounter.patient_id
        session_token, _session_id = await create_session(db, who, request.app[SETTINGS].session_ttl_seconds)
        db.add(audit_row(AuditContext(actor_id=who, actor_role=link.guest_role or "patient", ip=context.ip,
                                      user_agent=context.user_agent, request_id=context.request_id),
                         "clinic.join_link", Outcome.SUCCESS, target_type="encounter", target_id=encounter.id,
                         tenant_id=encounter.tenant_id))
        room = await db.get(Room, encounter.room_id)
    # A guest goes to the call (its token waits for admission); the patient to the pre-call check.
    response = web.HTTPFound(f"/rooms/{room.name}" if link.guest_user_id and room else f"/visit/{encounter.id}")
    response.set_cookie(COOKIE, session_token, httponly=True, samesite="Lax", path="/",
                        secure=request.app[SETTINGS].secure_cookies,
                        max_age=request.app[SETTINGS].session_ttl_seconds)
    raise response


async def visit_of(request: web.Request, action: str) -> Encounter:
    """The visit in the URL, for its clinic's staff or its patient; anyone else 404 (audited)."""
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    encounter_id = request.match_info["encounter_id"]
    async with request.app[SESSIONS]() as db:
        encounter = await db.get(Encounter, encounter_id)
    if encounter is None or not (is_staff(user, encounter.tenant_id) or encounter.patient_id == user.id):
        await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type="encounter",
                    target_id=encounter_id[:64])
        raise ApiError(404, "not_found", "no such visit")
    return encounter


async def _encounter_for(request: web.Request, db: AsyncSession, user: CurrentUser, action: str) -> Encounter:
    encounter_id = request.match_info["encounter_id"]
    encounter = await db.get(Encounter, encounter_id)
    if encounter is None or not (is_staff(user, encounter.tenant_id) or encounter.patient_id == user.id):
        raise await _deny(request, action, "encounter", encounter_id)
    return encounter


async def queue_position(db: AsyncSession, encounter: Encounter) -> int:
    """1 for the first in line: waiting visits of the same practitioner (or facility), by start time."""
    if encounter.status != EncounterStatus.WAITING:
        return 0
    query = select(func.count()).select_from(Encounter).where(
        Encounter.tenant_id == encounter.tenant_id, Encounter.status == EncounterStatus.WAITING,
        Encounter.scheduled_start < encounter.scheduled_start)
    if encounter.practitioner_id:
        query = query.where(Encounter.practitioner_id == encounter.practitioner_id)
    return int(await db.scalar(query) or 0) + 1


async def practitioner_status(db: AsyncSession, encounter: Encounter) -> str:
    if encounter.practitioner_id is None:
        return "unknown"
    busy = await db.scalar(select(Encounter.id).where(
        Encounter.practitioner_id == encounter.practitioner_id, Encounter.status == EncounterStatus.IN_PROGRESS,
        Encounter.id != encounter.id).limit(1))
    return "in_another_visit" if busy else "available"


@routes.post("/api/clinics/encounters/{encounter_id}/arrive")
async def arrive(request: web.Request) -> web.Response:
    """The patient enters the waiting room (after the pre-call check and consent)."""
    user = _user(request)
    async with request.app[SESSIONS].begin() as db:
        encounter = await _encounter_for(request, db, user, "clinic.encounter.arrive")
        if await active_consent(db, encounter.tenant_id, encounter.patient_id,
                                ConsentPurpose.REMOTE_EXAMINATION) is None:
            raise ApiError(409, "consent_required", "consent to the remote examination is needed first")
        if encounter.status == EncounterStatus.PLANNED:
            encounter.status = EncounterStatus.WAITING
            encounter.arrived_at = utcnow()
        elif encounter.status not in (EncounterStatus.WAITING, EncounterStatus.IN_PROGRESS):
            raise ApiError(409, "visit_closed", "this visit has ended or was cancelled")
        db.add(audit_row(audit_context(request), "clinic.encounter.arrive", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=encounter.tenant_id))
        position = await queue_position(db, encounter)
    return web.json_response({**encounter_json(encounter), "position": position})


@routes.get("/api/clinics/encounters/{encounter_id}/waiting")
async def waiting(request: web.Request) -> web.Response:
    user = _user(request)
    async with request.app[SESSIONS]() as db:
        encounter = await _encounter_for(request, db, user, "clinic.encounter.read")
        room = await db.get(Room, encounter.room_id)
        position = await queue_position(db, encounter)
        doctor = await practitioner_status(db, encounter)
    admitted = encounter.status == EncounterStatus.IN_PROGRESS
    return web.json_response({**encounter_json(encounter, room if admitted else None), "position": position,
                              "practitioner_status": doctor})


@routes.get("/api/clinics/{tenant_id}/queue")
async def queue(request: web.Request) -> web.Response:
    """The doctor's dashboard: today's visits and who is waiting, in order."""
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not is_staff(user, tenant_id):
        raise await _deny(request, "clinic.queue.read", "facility", tenant_id)
    now = utcnow()
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(
            select(Encounter, User.display_name).join(User, User.id == Encounter.patient_id).where(
                Encounter.tenant_id == tenant_id, Encounter.status.in_(ACTIVE),
                Encounter.scheduled_start < now + timedelta(hours=24))
            .order_by(Encounter.scheduled_start))).all()
    await audit(request.app[SESSIONS], audit_context(request), "clinic.queue.read", Outcome.SUCCESS,
                target_type="facility", target_id=tenant_id, tenant_id=tenant_id)
    return web.json_response({"encounters": [{**encounter_json(e), "patient_name": name} for e, name in rows],
                              "waiting": sum(1 for e, _ in rows if e.status == EncounterStatus.WAITING)})


def _admit(encounter: Encounter, now: datetime) -> bool:
    if encounter.status != EncounterStatus.WAITING:
        return False
    encounter.status = EncounterStatus.IN_PROGRESS
    encounter.admitted_at = now
    return True


@routes.post("/api/clinics/encounters/{encounter_id}/admit")
async def admit(request: web.Request) -> web.Response:
    user = _user(request)
    async with request.app[SESSIONS].begin() as db:
        encounter = await _encounter_for(request, db, user, "clinic.encounter.admit")
        if not is_staff(user, encounter.tenant_id):
            raise ApiError(403, "forbidden", "only the clinic admits patients")
        if not _admit(encounter, utcnow()):
            raise ApiError(409, "not_waiting", "the patient is not in the waiting room")
        db.add(audit_row(audit_context(request), "clinic.encounter.admit", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=encounter.tenant_id))
    return web.json_response(encounter_json(encounter))


@routes.post("/api/clinics/{tenant_id}/admit-all")
async def admit_all(request: web.Request) -> web.Response:
    """Admit everyone waiting for this practitioner (a family, a group visit)."""
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not is_staff(user, tenant_id):
        raise await _deny(request, "clinic.encounter.admit", "facility", tenant_id)
    now = utcnow()
    async with request.app[SESSIONS].begin() as db:
        waiting_now = (await db.execute(select(Encounter).where(
            Encounter.tenant_id == tenant_id, Encounter.status == EncounterStatus.WAITING,
            (Encounter.practitioner_id == user.id) | Encounter.practitioner_id.is_(None)))).scalars().all()
        for encounter in waiting_now:
            _admit(encounter, now)
            db.add(audit_row(audit_context(request), "clinic.encounter.admit", Outcome.SUCCESS,
                             target_type="encounter", target_id=encounter.id, tenant_id=tenant_id))
    return web.json_response({"admitted": [e.id for e in waiting_now]})


@routes.post("/api/clinics/encounters/{encounter_id}/end")
async def end(request: web.Request) -> web.Response:
    user = _user(request)
    async with request.app[SESSIONS].begin() as db:
        encounter = await _encounter_for(request, db, user, "clinic.encounter.end")
        if not is_staff(user, encounter.tenant_id):
            raise ApiError(403, "forbidden", "only the clinic ends a visit")
        if encounter.status not in ACTIVE:
            raise ApiError(409, "visit_closed", "this visit has already ended")
        encounter.status = EncounterStatus.FINISHED
        encounter.ended_at = utcnow()
        db.add(audit_row(audit_context(request), "clinic.encounter.end", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=encounter.tenant_id))
    return web.json_response(encounter_json(encounter))


async def patient_admitted(db: AsyncSession, room: Room, user_id: str) -> str | None:
    """Room admission check: in a visit's room the patient and invited guests get a token only while
    the visit is in progress (admitted); the clinic's staff at any time."""
    encounter = await db.scalar(select(Encounter).where(Encounter.room_id == room.id))
    if encounter is None:
        return None
    guest = await db.scalar(select(JoinLink.id).where(JoinLink.encounter_id == encounter.id,
                                                      JoinLink.guest_user_id == user_id).limit(1))
    if encounter.patient_id != user_id and guest is None:
        return None
    return None if encounter.status == EncounterStatus.IN_PROGRESS else "not_admitted"


class GuestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Literal["family", "interpreter", "specialist"]
    phone: str | None = Field(default=None, max_length=20, pattern=r"^\+?[0-9 ]+$")


@routes.post("/api/clinics/encounters/{encounter_id}/guests")
async def invite_guest(request: web.Request) -> web.Response:
    """A third party with a link of their own: a relative, an interpreter, a specialist elsewhere."""
    user = _user(request)
    async with request.app[SESSIONS]() as db:  # who may, before reading what they sent
        encounter = await _encounter_for(request, db, user, "clinic.guest.invite")
    if not is_staff(user, encounter.tenant_id):
        raise ApiError(403, "forbidden", "only the clinic invites guests")
    body = await parse_body(request, GuestIn)
    token = secrets.token_urlsafe(32)
    async with request.app[SESSIONS].begin() as db:
        encounter = await _encounter_for(request, db, user, "clinic.guest.invite")
        if encounter.status not in ACTIVE:
            raise ApiError(409, "visit_closed", "this visit has ended")
        guest = await create_user(db, email=f"g-{secrets.token_hex(8)}@{GUEST_EMAIL_DOMAIN}",
                                  display_name=f"{body.name} ({body.role})")
        guest.phone = body.phone
        db.add(RoomMember(room_id=encounter.room_id, user_id=guest.id, role=RoomRole.PARTICIPANT))
        db.add(JoinLink(encounter_id=encounter.id, token_hash=_digest(token), guest_user_id=guest.id,
                        guest_role=body.role, expires_at=utcnow() + LINK_VALID_AFTER_START))
        db.add(audit_row(audit_context(request), "clinic.guest.invite", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=encounter.tenant_id))
    link = f"{request.app[SETTINGS].effective_public_url}/join/{token}"
    sent_via = await invitations.send_guest_link(request.app, audit_context(request), encounter, body.phone, link)
    return web.json_response({"guest_id": guest.id, "name": guest.display_name, "join_link": link,
                              "sent_via": sent_via}, status=201,
                             headers={"Cache-Control": "no-store"})
