"""FHIR errors: every failure under /fhir/ is an OperationOutcome with a matching HTTP status."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

FHIR_JSON = "application/fhir+json"


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Answers name patients and who saw them: no proxy or browser cache may keep a copy.
    return web.Response(text=json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                        content_type=FHIR_JSON, charset="utf-8",
                        headers={"Cache-Control": "no-store", **(headers or {})})


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


class FhirError(Exception):
    """Raise from a FHIR handler. ``code`` is a FHIR issue type (invalid, login, not-found, ...)."""

    def __init__(self, status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.headers = headers

    def response(self) -> web.Response:
        return fhir_response(operation_outcome(self.code, self.diagnostics), self.status, self.headers)


def bad_parameter(diagnostics: str) -> FhirError:
    return FhirError(400, "invalid", diagnostics)


def not_found(resource_type: str, resource_id: str) -> FhirError:
    # The same answer for "does not exist" and "not yours": existence is not revealed.
    return FhirError(404, "not-found", f"{resource_type}/{resource_id[:64]} is not known")


def unauthenticated(diagnostics: str) -> FhirError:
    return FhirError(401, "login", diagnostics, headers={"WWW-Authenticate": 'Bearer realm="caunoi-fhir"'})
