"""The resource types the API serves: their searches and search parameters, in one table.

The CapabilityStatement is generated from this table, so it lists exactly what is implemented.
A plugin adds a type of its own with ``register`` (server/ never imports the plugins, so a type built
on a plugin's models, such as the clinics' Encounter, is registered by that plugin).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server.records.fhir import appointments, calendars, documents, queries
from server.records.fhir.queries import Context, Found, Searcher
from server.records.fhir.resources import Resource
from server.records.fhir.search import SearchRequest
from server.records.scope import Scope


@dataclass(frozen=True)
class Operation:
    name: str
    definition: str
    """The canonical URL of what it follows (ours where no published definition matches)."""
    documentation: str


BOOK = Operation("book", "urn:caunoi:fhir:OperationDefinition/appointment-book",
                 "POST a Parameters resource (slot, patient, comment) with a bearer API key; "
                 "201 with the Appointment, 409 when the slot was taken")
EXPORT = Operation("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                   "Bulk Data export of the tenants you administer (Prefer: respond-async, bearer API key)")
# Operations on the whole server (GET /fhir/R4/$name).
SYSTEM_OPERATIONS = (EXPORT,)


@dataclass(frozen=True)
class ResourceType:
    name: str
    search: Searcher
    params: dict[str, tuple[str, str]]
    """name -> (FHIR search parameter type, what it matches)."""
    repeatable: frozenset[str] = field(default_factory=frozenset)
    """Parameters that may be given more than once (all must hold)."""
    operations: tuple[Operation, ...] = ()
    """Type-level operations (POST /fhir/R4/{type}/$name)."""
    audit_each: bool = False
    """A search audits one row per resource returned (health data: "who saw this patient's ...")."""

    def allowed(self, scope: Scope) -> bool:
        """May this reader use the type at all? Only AuditEvent is restricted (to administrators)."""
        return self.name != "AuditEvent" or scope.may_read_audit

    @property
    def param_names(self) -> frozenset[str]:
        return frozenset(self.params)


ID = {"_id": ("token", "the logical id")}
NAME = {"name": ("string", "a word of the name starts with this (case and accent insensitive)")}

TYPES: dict[str, ResourceType] = {t.name: t for t in [
    ResourceType("Organization", queries.organizations, {
        **ID, **NAME, "type": ("token", "prov (health facility) or edu (school)")}),
    ResourceType("Practitioner", queries.practitioners, {**ID, **NAME}),
    ResourceType("PractitionerRole", queries.practitioner_roles, {
        **ID,
        "practitioner": ("reference", "the Practitioner"),
        "organization": ("reference", "the Organization"),
        "role": ("token", "doctor, nurse or teacher")}),
    ResourceType("Patient", queries.patients, {
        **ID, **NAME, "organization": ("reference", "a facility the person is a patient of")}),
    ResourceType("AuditEvent", queries.audit_events, {
        **ID,
        "agent": ("reference", "who acted (user id)"),
        "entity": ("reference", "what was acted on (id)"),
        "patient": ("reference", "the Patient acted on"),
        "date": ("date", "when it was recorded; eq, ge, le, gt, lt; repeat for a range"),
        "subtype": ("token", "our action name, e.g. fhir.read, auth.login"),
        "outcome": ("token", "0 success, 4 denied, 8 failure")}, repeatable=frozenset({"date"})),
    ResourceType("HealthcareService", calendars.healthcare_services, {
        **ID, **NAME,
        "organization": ("reference", "the Organization offering it"),
        "service-category": ("token", "practitioner, teacher, class, room or service"),
        "active": ("token", "true or false")}),
    ResourceType("Schedule", calendars.schedules, {
        **ID,
        "actor": ("reference", "the HealthcareService or the Practitioner"),
        "active": ("token", "true or false")}),
    ResourceType("Slot", calendars.slots, {
        **ID,
        "schedule": ("reference", "the Schedule (required unless _id is given)"),
        "start": ("date", "when the slot starts; ge, le, gt, lt; repeat for a range (default: the next 7 days, "
                          "at most 62)"),
        "status": ("token", "free or busy")}, repeatable=frozenset({"start"})),
    ResourceType("Appointment", appointments.appointments, {
        **ID,
        "patient": ("reference", "the Patient it is for"),
        "actor": ("reference", "a participant: Patient, Practitioner or HealthcareService"),
        "date": ("date", "when it starts; eq, ge, le, gt, lt; repeat for a range"),
        "status": ("token", "booked or cancelled")}, repeatable=frozenset({"date"}), operations=(BOOK,)),
    ResourceType("DocumentReference", documents.document_references, {
        **ID,
        "patient": ("reference", "the Patient it is about"),
        "subject": ("reference", "what it is about: a Patient, or the id of a student or a class"),
        "type": ("token", "note, minutes, report, prescription, consent or attachment"),
        "date": ("date", "when it was created; eq, ge, le, gt, lt; repeat for a range")},
        repeatable=frozenset({"date"})),
]}

PLUGIN_TYPES = web.AppKey("fhir_plugin_types", dict[str, ResourceType])
Amender = Callable[[AsyncSession, Context, list[Resource]], Awaitable[None]]
"""Adds a plugin's data to resources a search built, in place (the clinics' Organization.partOf)."""
AMENDERS = web.AppKey("fhir_amenders", dict[str, tuple[Amender, ...]])


def register(app: web.Application, rtype: ResourceType) -> None:
    """Serve one more type (call from a plugin's setup): read, search, CapabilityStatement, $export."""
    if rtype.name in TYPES:
        raise ValueError(f"FHIR type {rtype.name} is already served")
    app[PLUGIN_TYPES] = {**_plugin_types(app), rtype.name: rtype}


def amend(app: web.Application, type_name: str, amender: Amender) -> None:
    """Let a plugin complete a type it does not build (call from its setup): every read, search and
    export of the type passes its resources through ``amender``, with the search's database session."""
    if type_name not in served(app):
        raise ValueError(f"FHIR type {type_name} is not served")
    amenders = app.get(AMENDERS) or {}
    app[AMENDERS] = {**amenders, type_name: (*amenders.get(type_name, ()), amender)}


def served(app: web.Application) -> dict[str, ResourceType]:
    """Every type this app serves: ours, then the plugins', each with its plugins' amenders applied."""
    amenders = app.get(AMENDERS) or {}
    return {name: _amended(t, amenders[name]) if name in amenders else t
            for name, t in {**TYPES, **_plugin_types(app)}.items()}


def _amended(rtype: ResourceType, amenders: tuple[Amender, ...]) -> ResourceType:
    async def search(db: AsyncSession, scope: Scope, request: SearchRequest, ctx: Context) -> Found:
        found = await rtype.search(db, scope, request, ctx)
        resources = [resource for resource, _ in found.page]
        for amender in amenders:
            await amender(db, ctx, resources)
        return found

    return replace(rtype, search=search)


def _plugin_types(app: web.Application) -> dict[str, ResourceType]:
    return app.get(PLUGIN_TYPES) or {}
