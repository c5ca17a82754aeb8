"""Clinic routes. For now: the consultation rooms of a facility, for its staff."""

from __future__ import annotations

from aiohttp import web

from server.auth.models import Role
from server.rooms.listing import tenant_rooms
from server.rooms.models import RoomKind

routes = web.RouteTableDef()
STAFF = (Role.FACILITY_ADMIN, Role.DOCTOR, Role.NURSE)


@routes.get("/api/clinics/{tenant_id}/consultations")
async def consultations(request: web.Request) -> web.Response:
    """The facility's consultation rooms; staff of that facility only (anyone else: 404, audited)."""
    rooms = await tenant_rooms(request, RoomKind.CONSULTATION, STAFF, "clinic.consultations.list")
    return web.json_response({"consultations": [{"room": r.name, "title": r.title} for r in rooms]})


def setup(app: web.Application) -> None:
    from clinics import (
        chat,
        consent,
        consultation_pages,
        facilities,
        history,
        invitations,
        pages,
        patients,
        record_pages,
        staff,
        visit_record,
        visits,
    )
    from clinics.eligibility import ConditionList
    from clinics.fhir import setup_fhir
    from clinics.settings import ClinicsSettings
    from server.rooms.policy import ROOM_CHECKS

    settings = ClinicsSettings()
    app[facilities.CONDITIONS] = ConditionList.load(settings.conditions_manifest)
    app[consent.TEXTS] = consent.load_texts(settings.consent_texts)
    app[ROOM_CHECKS].extend([facilities.telemedicine_allowed, visits.patient_admitted])
    app.router.add_routes(routes)
    app.router.add_routes(patients.routes)
    app.router.add_routes(facilities.routes)
    app.router.add_routes(visits.routes)
    app.router.add_routes(pages.routes)
    app.router.add_routes(consent.routes)
    app.router.add_routes(visit_record.routes)
    app.router.add_routes(chat.routes)
    from clinics import station  # walk-ins, consent taken as witness, assisted mode
    station.setup(app)
    app.router.add_routes(record_pages.routes)
    app.router.add_routes(invitations.routes)
    app.router.add_routes(history.routes)
    app.router.add_routes(staff.routes)
    setup_fhir(app)
    consultation_pages.setup_consultations(app)
