"""The resource types the API serves: their searches and search parameters, in one table.

The CapabilityStatement is generated from this table, so it lists exactly what is implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.records.fhir import queries
from server.records.fhir.queries import Searcher
from server.records.scope import Scope


@dataclass(frozen=True)
class ResourceType:
    name: str
    search: Searcher
    params: dict[str, tuple[str, str]]
    """name -> (FHIR search parameter type, what it matches)."""
    repeatable: frozenset[str] = field(default_factory=frozenset)
    """Parameters that may be given more than once (all must hold)."""

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
]}
