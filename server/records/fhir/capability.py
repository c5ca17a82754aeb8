"""GET /fhir/R4/metadata: the CapabilityStatement, generated from the table of served types."""

from __future__ import annotations

from datetime import datetime

from server.records.fhir.resources import Resource, instant
from server.records.fhir.types import SYSTEM_OPERATIONS, Operation, ResourceType

FHIR_VERSION = "4.0.1"
SOFTWARE_VERSION = "0.1.0"


def _operations(operations: tuple[Operation, ...]) -> dict[str, list[dict[str, str]]]:
    if not operations:
        return {}
    return {"operation": [{"name": o.name, "definition": o.definition, "documentation": o.documentation}
                          for o in operations]}


def capability_statement(base_url: str, started: datetime, types: dict[str, ResourceType]) -> Resource:
    resources = [{
        "type": t.name,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [{"name": name, "type": kind, "documentation": doc}
                        for name, (kind, doc) in sorted(t.params.items())]
                       + [{"name": "_count", "type": "number", "documentation": "page size (at most 200)"}],
        **_operations(t.operations),
    } for t in types.values()]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(started),
        "kind": "instance",
        "software": {"name": "Cầu Nối", "version": SOFTWARE_VERSION},
        "implementation": {"description": "Cầu Nối FHIR R4 API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": ("Authenticate with a bearer API key (caunoi apikey) or a browser session (reads only; "
                              "$book and $export need the API key)."),
            "security": {"service": [{"text": "Bearer API key"}], "cors": False},
            "resource": resources,
            **_operations(SYSTEM_OPERATIONS),
        }],
    }
