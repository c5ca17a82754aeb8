"""Pages for the hội chẩn: a facility's consultations (request one; the incoming ones) and one
consultation (the request, the call, the conclusions, the signatures, the PDF)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from clinics import consultation, consultation_minutes
from clinics.facilities import STAFF
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit
from server.requestctx import USER, audit_context
from server.rooms.policy import ROOM_CHECKS

routes = web.RouteTableDef()


@routes.get("/clinic/{tenant_id}/consultations")
@aiohttp_jinja2.template("clinics/consultations.html")
async def consultations_page(request: web.Request) -> dict[str, object]:
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    tenant_id = request.match_info["tenant_id"]
    if not any(user.has_role(role, tenant_id) for role in STAFF):
        await audit(request.app[SESSIONS], audit_context(request), "clinic.consultation.page", Outcome.DENIED,
                    target_type="facility", target_id=tenant_id[:64])
        raise web.HTTPNotFound()
    return {"tenant_id": tenant_id}


@routes.get("/consultation/{consultation_id}")
@aiohttp_jinja2.template("clinics/consultation.html")
async def consultation_page(request: web.Request) -> dict[str, object]:
    """The page itself carries no patient data: the script reads it through the audited API."""
    if request.get(USER) is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    async with request.app[SESSIONS]() as db:
        try:
            access = await consultation.access_to(request, db, "clinic.consultation.page", full=False)
        except ApiError as exc:  # the API's 404 (already audited) becomes the page's 404
            raise web.HTTPNotFound() from exc
    return {"consultation_id": access.consultation.id}


def setup_consultations(app: web.Application) -> None:
    app[ROOM_CHECKS].append(consultation.consultation_room_open)
    app.router.add_routes(consultation.routes)
    app.router.add_routes(consultation_minutes.routes)
    app.router.add_routes(routes)
