"""A patient's own visits, across the facilities that treat them: what is coming, what happened, and
the summary of each finished visit. Patients with an account see their history here; nobody sees
anyone else's (the query is keyed by the logged-in user, there is no id to guess)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import aliased

from clinics.models import Encounter, EncounterStatus
from clinics.visits import ACTIVE
from server.auth.models import Tenant, User
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit
from server.requestctx import USER, audit_context

routes = web.RouteTableDef()
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
HISTORY_LIMIT = 200


async def visits_of(request: web.Request, patient_id: str) -> list[dict[str, Any]]:
    doctor = aliased(User)
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(
            select(Encounter, Tenant.name, doctor.display_name)
            .join(Tenant, Tenant.id == Encounter.tenant_id)
            .outerjoin(doctor, doctor.id == Encounter.practitioner_id)
            .where(Encounter.patient_id == patient_id)
            .order_by(Encounter.scheduled_start.desc()).limit(HISTORY_LIMIT))).all()
    visits = []
    for encounter, facility, doctor_name in rows:
        when = encounter.scheduled_start.astimezone(LOCAL)
        visits.append({
            "id": encounter.id, "status": encounter.status.value, "facility": facility, "doctor": doctor_name,
            "scheduled_start": encounter.scheduled_start.isoformat(), "local_time": when.strftime("%H:%M %d/%m/%Y"),
            "upcoming": encounter.status in ACTIVE,
            "summary": f"/visit/{encounter.id}/summary" if encounter.status == EncounterStatus.FINISHED else None,
            "join": f"/visit/{encounter.id}" if encounter.status in ACTIVE else None,
        })
    await audit(request.app[SESSIONS], audit_context(request), "clinic.history.read", Outcome.SUCCESS,
                target_type="patient", target_id=patient_id)
    return visits


@routes.get("/api/clinics/my/visits")
async def my_visits(request: web.Request) -> web.Response:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return web.json_response({"visits": await visits_of(request, user.id)}, headers={"Cache-Control": "no-store"})


@routes.get("/my/visits")
@aiohttp_jinja2.template("clinics/history.html")
async def history_page(request: web.Request) -> dict[str, Any]:
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    visits = await visits_of(request, user.id)
    return {"upcoming": [v for v in visits if v["upcoming"]][::-1], "past": [v for v in visits if not v["upcoming"]]}
