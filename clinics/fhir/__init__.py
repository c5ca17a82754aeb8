"""The clinics' resources in the FHIR API (docs/fhir.md). server/ never imports clinics/, so the plugin
registers its types (Encounter, Condition, MedicationRequest, Consent) and completes the server's
Organization with ``partOf`` through the hooks of server/records/fhir/types.py."""

from __future__ import annotations

from aiohttp import web

from clinics.consent import TEXTS
from clinics.fhir.condition import conditions
from clinics.fhir.consent import searcher as consent_searcher
from clinics.fhir.encounter import encounters
from clinics.fhir.medication_request import medication_requests
from clinics.fhir.organization import part_of
from server.records.fhir.types import ResourceType, amend, register

ID = {"_id": ("token", "the logical id")}
PATIENT = {"patient": ("reference", "the Patient")}
ENCOUNTER = {"encounter": ("reference", "the Encounter (remote visit) it was recorded in")}


def setup_fhir(app: web.Application) -> None:
    register(app, ResourceType("Encounter", encounters, {
        **ID, **PATIENT,
        "subject": ("reference", "the Patient"),
        "status": ("token", "planned, arrived, in-progress, finished, cancelled")}, audit_each=True))
    register(app, ResourceType("Condition", conditions, {
        **ID, **PATIENT, **ENCOUNTER,
        "code": ("token", "the ICD-10 code (E11.9 or http://hl7.org/fhir/sid/icd-10|E11.9)")}, audit_each=True))
    register(app, ResourceType("MedicationRequest", medication_requests, {
        **ID, **PATIENT, **ENCOUNTER}, audit_each=True))
    register(app, ResourceType("Consent", consent_searcher(app[TEXTS]), {
        **ID, **PATIENT,
        "status": ("token", "active, inactive (withdrawn) or rejected (refused)")}, audit_each=True))
    amend(app, "Organization", part_of)
