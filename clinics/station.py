"""A commune health station with one shared device: walk-ins and assisted mode.

Patients walk in without appointments. The nurse registers them (or finds them: clinics/patients.py),
opens a walk-in visit, takes their consent (clinics/witnessed_consent.py) and puts them in the queue;
the queue is in arrival order. Then the nurse runs the call on the patient's behalf on the station's
device: the **assisted session**.

An assisted session is the nurse's own membership, as a participant (the patient's side), of that one
visit's room. It is given when the session starts and taken away when it ends, and only one visit's
room at a time: starting another ends the previous one. A participant of a visit's room gets a room
token only while the visit is in progress (:func:`patient_side_in_call`), so the nurse holds no token
before the doctor admits the patient, none after the end, and none for any other visit.

"Next patient" ends the session with a form POST whose answer carries ``Clear-Site-Data: "cache",
"storage"`` and goes back to an empty station page; the page itself has already closed the call,
released the camera, emptied the document and the browser storage (docs/clinics.md, "Assisted mode").
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics import witnessed_consent
from clinics.consent import active_consent
from clinics.models import ConsentPurpose, Encounter, EncounterStatus, PatientProfile
from clinics.visits import ACTIVE, encounter_json, queue_position
from server.auth.models import Role, RoleAssignment, User
from server.auth.sessions import CurrentUser
from server.db.base import utcnow
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit, audit_row
from server.requestctx import USER, audit_context
from server.rooms.models import Room, RoomKind, RoomMember, RoomRole
from server.rooms.policy import ROOM_CHECKS
from server.validation import parse_body

routes = web.RouteTableDef()
STATION_STAFF = (Role.NURSE, Role.DOCTOR)
NO_STORE = "no-store"
# What "Next patient" asks the browser to forget for this origin: the HTTP cache (and with it the
# back/forward cache) and every storage API. Chromium honours it only in a secure context (https, or
# http on localhost / 127.0.0.1); over plain http on a LAN address it logs "Not supported for insecure
# origins" and does nothing — the page's own clean-up is then the only one, which is why it runs too.
CLEAR_SITE_DATA = '"cache", "storage"'


class WalkInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str = Field(max_length=36)
    practitioner_id: str = Field(max_length=36)


def _user(request: web.Request) -> CurrentUser:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return user


def station_staff(user: CurrentUser, tenant_id: str) -> bool:
    return any(user.has_role(role, tenant_id) for role in STATION_STAFF)


async def _deny(request: web.Request, action: str, target_type: str, target_id: str) -> ApiError:
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type=target_type,
                target_id=target_id[:64])
    return ApiError(404, "not_found", f"no such {target_type}")


async def _tenant_staff(request: web.Request, action: str) -> tuple[CurrentUser, str]:
    user = _user(request)
    tenant_id = request.match_info["tenant_id"]
    if not station_staff(user, tenant_id):
        raise await _deny(request, action, "facility", tenant_id)
    return user, tenant_id


async def _visit(request: web.Request, db: AsyncSession, action: str) -> tuple[CurrentUser, Encounter]:
    """The visit in the URL for a nurse or doctor of its facility; anyone else 404 (audited)."""
    user = _user(request)
    encounter_id = request.match_info["encounter_id"]
    encounter = await db.get(Encounter, encounter_id)
    if encounter is None or not station_staff(user, encounter.tenant_id):
        raise await _deny(request, action, "encounter", encounter_id)
    return user, encounter


@routes.get("/api/clinics/{tenant_id}/station")
async def station_state(request: web.Request) -> web.Response:
    """The station's queue (today's open visits, arrival order) and the doctors who can take them."""
    _staff, tenant_id = await _tenant_staff(request, "clinic.station.read")
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(
            select(Encounter, User.display_name).join(User, User.id == Encounter.patient_id).where(
                Encounter.tenant_id == tenant_id, Encounter.status.in_(ACTIVE),
                Encounter.scheduled_start < utcnow() + timedelta(hours=24))
            .order_by(Encounter.scheduled_start))).all()
        visits = []
        for encounter, name in rows:
            consent = await active_consent(db, tenant_id, encounter.patient_id, ConsentPurpose.REMOTE_EXAMINATION)
            visits.append({**encounter_json(encounter), "patient_name": name, "consent_given": consent is not None,
                           "position": await queue_position(db, encounter)})
        doctors = (await db.execute(
            select(User.id, User.display_name).join(RoleAssignment, RoleAssignment.user_id == User.id).where(
                RoleAssignment.tenant_id == tenant_id, RoleAssignment.role == Role.DOCTOR, User.is_active.is_(True))
            .order_by(User.display_name))).all()
    await audit(request.app[SESSIONS], audit_context(request), "clinic.station.read", Outcome.SUCCESS,
                target_type="facility", target_id=tenant_id, tenant_id=tenant_id)
    return web.json_response({"visits": visits, "doctors": [{"id": i, "name": n} for i, n in doctors]})


@routes.post("/api/clinics/{tenant_id}/station/walk-ins")
async def create_walk_in(request: web.Request) -> web.Response:
    """A walk-in visit: planned until the nurse has taken consent, then in the queue in arrival order
    (its start is the moment the patient walked in). The room has the doctor as host and the patient;
    the nurse joins it only for an assisted session."""
    user, tenant_id = await _tenant_staff(request, "clinic.encounter.create")
    body = await parse_body(request, WalkInIn)
    now = utcnow()
    async with request.app[SESSIONS].begin() as db:
        patient = await db.scalar(select(User).join(PatientProfile, PatientProfile.user_id == User.id).where(
            User.id == body.patient_id, PatientProfile.tenant_id == tenant_id))
        if patient is None:
            raise ApiError(422, "invalid_patient", "not a patient of this facility")
        if not await db.scalar(select(RoleAssignment.id).where(
                RoleAssignment.user_id == body.practitioner_id, RoleAssignment.tenant_id == tenant_id,
                RoleAssignment.role == Role.DOCTOR)):
            raise ApiError(422, "invalid_practitioner", "not a doctor of this facility")
        if await db.scalar(select(Encounter.id).where(
                Encounter.tenant_id == tenant_id, Encounter.patient_id == patient.id, Encounter.walk_in.is_(True),
                Encounter.status.in_(ACTIVE)).limit(1)):
            raise ApiError(409, "already_in_queue", "this patient already has an open walk-in visit")
        room = Room(tenant_id=tenant_id, kind=RoomKind.CONSULTATION, title=f"Khám từ xa · {patient.display_name}")
        db.add(room)
        await db.flush()
        db.add_all([RoomMember(room_id=room.id, user_id=patient.id, role=RoomRole.PARTICIPANT),
                    RoomMember(room_id=room.id, user_id=body.practitioner_id, role=RoomRole.HOST)])
        encounter = Encounter(tenant_id=tenant_id, patient_id=patient.id, practitioner_id=body.practitioner_id,
                              room_id=room.id, walk_in=True, scheduled_start=now, created_by=user.id,
                              status=EncounterStatus.PLANNED)
        db.add(encounter)
        await db.flush()
        db.add(audit_row(audit_context(request), "clinic.encounter.create", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=tenant_id))
    return web.json_response({**encounter_json(encounter, room), "patient_name": patient.display_name}, status=201)


async def _end_assisted(request: web.Request, db: AsyncSession, user_id: str, keep_room: str | None = None) -> None:
    """End the user's assisted sessions (their participant memberships of visit rooms), except in
    ``keep_room``; audited per visit."""
    rows = (await db.execute(
        select(RoomMember, Encounter).join(Encounter, Encounter.room_id == RoomMember.room_id).where(
            RoomMember.user_id == user_id, RoomMember.role == RoomRole.PARTICIPANT,
            Encounter.patient_id != user_id))).all()
    for member, encounter in rows:
        if member.room_id == keep_room:
            continue
        await db.execute(delete(RoomMember).where(RoomMember.id == member.id))
        db.add(audit_row(audit_context(request), "clinic.assist.end", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=encounter.tenant_id))


@routes.post("/api/clinics/encounters/{encounter_id}/assist")
async def start_assisted(request: web.Request) -> web.Response:
    """Start running this visit on the station's device: the nurse joins its room on the patient's
    side (any other assisted session of theirs ends); the answer names the page to open."""
    async with request.app[SESSIONS].begin() as db:
        user, encounter = await _visit(request, db, "clinic.assist.start")
        if encounter.status not in (EncounterStatus.WAITING, EncounterStatus.IN_PROGRESS):
            raise ApiError(409, "not_in_queue", "take the patient's consent and put them in the queue first")
        if encounter.practitioner_id == user.id or encounter.patient_id == user.id:
            raise ApiError(409, "own_visit", "you cannot assist in a visit you run as its practitioner")
        await _end_assisted(request, db, user.id, keep_room=encounter.room_id)
        member = await db.scalar(select(RoomMember).where(RoomMember.room_id == encounter.room_id,
                                                           RoomMember.user_id == user.id))
        if member is None:
            db.add(RoomMember(room_id=encounter.room_id, user_id=user.id, role=RoomRole.PARTICIPANT))
        else:
            # Also a host who created the visit elsewhere: on the patient's side for this session.
            member.role = RoomRole.PARTICIPANT
        db.add(audit_row(audit_context(request), "clinic.assist.start", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=encounter.tenant_id))
    return web.json_response({"encounter_id": encounter.id,
                              "url": f"/clinic/{encounter.tenant_id}/station/assist/{encounter.id}"}, status=201)


async def assisted_member(db: AsyncSession, encounter: Encounter, user_id: str) -> bool:
    return await db.scalar(select(RoomMember.id).where(
        RoomMember.room_id == encounter.room_id, RoomMember.user_id == user_id,
        RoomMember.role == RoomRole.PARTICIPANT)) is not None


@routes.post("/clinic/{tenant_id}/station/assist/{encounter_id}/finish")
async def finish_assisted(request: web.Request) -> web.StreamResponse:
    """"Next patient": end the assisted session (and the visit, if its call was on), then back to an
    empty station page, asking the browser to drop this origin's cache and storage on the way."""
    async with request.app[SESSIONS].begin() as db:
        user, encounter = await _visit(request, db, "clinic.assist.end")
        if encounter.tenant_id != request.match_info["tenant_id"]:
            raise await _deny(request, "clinic.assist.end", "encounter", encounter.id)
        if await assisted_member(db, encounter, user.id):
            await db.execute(delete(RoomMember).where(RoomMember.room_id == encounter.room_id,
                                                      RoomMember.user_id == user.id))
            db.add(audit_row(audit_context(request), "clinic.assist.end", Outcome.SUCCESS, target_type="encounter",
                             target_id=encounter.id, tenant_id=encounter.tenant_id))
        if encounter.status == EncounterStatus.IN_PROGRESS:
            # The patient leaves the device: their call is over. A patient still waiting keeps their place.
            encounter.status = EncounterStatus.FINISHED
            encounter.ended_at = utcnow()
            db.add(audit_row(audit_context(request), "clinic.encounter.end", Outcome.SUCCESS,
                             target_type="encounter", target_id=encounter.id, tenant_id=encounter.tenant_id))
    raise web.HTTPSeeOther(f"/clinic/{encounter.tenant_id}/station",
                           headers={"Clear-Site-Data": CLEAR_SITE_DATA, "Cache-Control": NO_STORE})


@routes.get("/clinic/{tenant_id}/station")
@aiohttp_jinja2.template("clinics/station.html")
async def station_page(request: web.Request) -> dict[str, object]:
    """The nurse's station: register or find a patient, walk-ins, consent, the queue, assisted calls."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    tenant_id = request.match_info["tenant_id"]
    if not station_staff(user, tenant_id):
        await audit(request.app[SESSIONS], audit_context(request), "clinic.station.view", Outcome.DENIED,
                    target_type="facility", target_id=tenant_id[:64])
        raise web.HTTPNotFound()
    return {"tenant_id": tenant_id}


@routes.get("/clinic/{tenant_id}/station/assist/{encounter_id}")
@aiohttp_jinja2.template("clinics/station_assist.html")
async def assisted_page(request: web.Request) -> dict[str, object]:
    """The patient's side of one visit on the station's device, during its assisted session only."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    tenant_id = request.match_info["tenant_id"]
    encounter_id = request.match_info["encounter_id"]
    async with request.app[SESSIONS]() as db:
        encounter = await db.get(Encounter, encounter_id)
        if encounter is None or encounter.tenant_id != tenant_id or not station_staff(user, tenant_id):
            await audit(request.app[SESSIONS], audit_context(request), "clinic.assist.view", Outcome.DENIED,
                        target_type="encounter", target_id=encounter_id[:64])
            raise web.HTTPNotFound()
        if encounter.status not in ACTIVE or not await assisted_member(db, encounter, user.id):
            # The session has ended (a Back press after "Next patient"): nothing of it is shown again.
            raise web.HTTPSeeOther(f"/clinic/{tenant_id}/station", headers={"Cache-Control": NO_STORE})
        patient = await db.get(User, encounter.patient_id)
    await audit(request.app[SESSIONS], audit_context(request), "clinic.assist.view", Outcome.SUCCESS,
                target_type="encounter", target_id=encounter.id, tenant_id=tenant_id)
    return {"tenant_id": tenant_id, "encounter": encounter, "patient_name": patient.display_name if patient else ""}


async def patient_side_in_call(db: AsyncSession, room: Room, user_id: str) -> str | None:
    """Room admission check: in a visit's room everyone on the patient's side (its participants: the
    patient, invited guests, a nurse running an assisted session) gets a token only while the visit is
    in progress; its hosts (the doctor) at any time."""
    encounter = await db.scalar(select(Encounter).where(Encounter.room_id == room.id))
    if encounter is None or encounter.status == EncounterStatus.IN_PROGRESS:
        return None
    role = await db.scalar(select(RoomMember.role).where(RoomMember.room_id == room.id,
                                                         RoomMember.user_id == user_id))
    return "not_admitted" if role == RoomRole.PARTICIPANT else None


NO_STORE_PREFIXES = ("/api/clinics/", "/clinic/")


async def no_store(request: web.Request, response: web.StreamResponse) -> None:
    """Nothing a clinic answers is kept in a browser's cache: on a shared station device the next
    patient would find the previous one's data there (pages are no-store already; this adds the API)."""
    if request.path.startswith(NO_STORE_PREFIXES):
        response.headers.setdefault("Cache-Control", NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
    app.router.add_routes(witnessed_consent.routes)
    app[ROOM_CHECKS].append(patient_side_in_call)
    app.on_response_prepare.append(no_store)
