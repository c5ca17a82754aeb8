"""The patient's visit page: pre-call check (camera, microphone, speaker, connection), then the
virtual waiting room, then the consultation room once the doctor admits them."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from clinics.models import Encounter
from server.keys import SESSIONS
from server.records.audit import Outcome, audit
from server.requestctx import USER, audit_context

routes = web.RouteTableDef()


@routes.get("/visit/{encounter_id}")
@aiohttp_jinja2.template("clinics/visit.html")
async def visit_page(request: web.Request) -> dict[str, object]:
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    encounter_id = request.match_info["encounter_id"]
    async with request.app[SESSIONS]() as db:
        encounter = await db.get(Encounter, encounter_id)
    if encounter is None or encounter.patient_id != user.id:
        await audit(request.app[SESSIONS], audit_context(request), "clinic.visit.view", Outcome.DENIED,
                    target_type="encounter", target_id=encounter_id[:64])
        raise web.HTTPNotFound()
    return {"encounter": encounter}


@routes.get("/clinic/{tenant_id}/dashboard")
@aiohttp_jinja2.template("clinics/dashboard.html")
async def dashboard_page(request: web.Request) -> dict[str, object]:
    """The doctor's day: today's visits, who is waiting (live), admit one or all."""
    from clinics.facilities import STAFF

    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    tenant_id = request.match_info["tenant_id"]
    if not any(user.has_role(role, tenant_id) for role in STAFF):
        await audit(request.app[SESSIONS], audit_context(request), "clinic.dashboard.view", Outcome.DENIED,
                    target_type="facility", target_id=tenant_id[:64])
        raise web.HTTPNotFound()
    return {"tenant_id": tenant_id}
