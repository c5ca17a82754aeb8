"""Encounter (class VR): one per remote visit. Readers: the facility's care staff, and the patient
their own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.fhir.visit_records import visible_encounters
from clinics.models import Encounter, EncounterStatus
from server.records.fhir.queries import Context, Found, page, single
from server.records.fhir.search import SearchRequest
from server.records.scope import Scope

STATUS = {
    EncounterStatus.PLANNED: "planned",
    EncounterStatus.WAITING: "arrived",
    EncounterStatus.IN_PROGRESS: "in-progress",
    EncounterStatus.FINISHED: "finished",
    EncounterStatus.CANCELLED: "cancelled",
}
VR = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"}


def encounter_resource(e: Encounter) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter", "id": e.id, "status": STATUS[e.status], "class": VR,
        "subject": {"reference": f"Patient/{e.patient_id}"},
        "serviceProvider": {"reference": f"Organization/{e.tenant_id}"},
        "period": {"start": (e.admitted_at or e.scheduled_start).isoformat()},
    }
    if e.ended_at:
        resource["period"]["end"] = e.ended_at.isoformat()
    if e.practitioner_id:
        resource["participant"] = [{"individual": {"reference": f"Practitioner/{e.practitioner_id}"}}]
    if e.booking_id:
        resource["appointment"] = [{"reference": f"Appointment/{e.booking_id}"}]
    return resource


async def encounters(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    query = (select(Encounter).where(visible_encounters(scope, finished_for_patient=False))
             .order_by(Encounter.scheduled_start.desc(), Encounter.id))
    patient = single(search, "patient", ["Patient"]) or single(search, "subject", ["Patient"])
    if patient is not None:
        query = query.where(Encounter.patient_id == patient)
    ids = search.any_of("_id")
    if ids is not None:
        query = query.where(Encounter.id.in_(ids))
    statuses = search.any_of("status")
    rows = (await db.execute(query)).scalars().all()
    found = [(encounter_resource(e), e.tenant_id) for e in rows if statuses is None or STATUS[e.status] in statuses]
    return page(found, search)
