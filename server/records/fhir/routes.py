"""The FHIR R4 routes: metadata, read and search. Read-only for now (other methods answer 405).

Every route takes any method, so that a wrong method reaches our handler and gets an OperationOutcome
405 rather than aiohttp's plain text; the same is why a catch-all answers unknown /fhir/ paths. The
handlers are exempt from the CSRF check because they never change anything.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.db.base import utcnow
from server.keys import SESSIONS, SETTINGS
from server.middlewares import csrf_exempt
from server.records.audit import AuditContext, Outcome, audit_row
from server.records.fhir.access import authenticate
from server.records.fhir.capability import capability_statement
from server.records.fhir.outcome import FhirError, bad_parameter, fhir_response, not_found, operation_outcome
from server.records.fhir.queries import Found
from server.records.fhir.search import ACCEPTED_FORMATS, SearchRequest, parse_search, searchset
from server.records.fhir.types import TYPES, ResourceType
from server.records.scope import Scope, scope_of
from server.requestctx import USER, audit_context

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
BASE = "/fhir/R4"
READ_METHODS = frozenset({"GET", "HEAD"})
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# Searches of these types audit one row per resource returned, so that "who saw this patient" has an answer.
PER_RESOURCE_AUDIT = frozenset({"Patient"})

FhirHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fhir_handler(handler: FhirHandler) -> FhirHandler:
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            if request.method not in READ_METHODS:
                raise FhirError(405, "not-supported", f"{request.method} is not supported: this API is read-only",
                                headers={"Allow": "GET"})
            return await handler(request)
        except FhirError as exc:
            return exc.response()
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return fhir_response(operation_outcome("exception", "internal error"), 500)

    return csrf_exempt(wrapped)


def base_url(request: web.Request) -> str:
    return request.app[SETTINGS].effective_public_url + BASE


def resource_type(request: web.Request) -> ResourceType:
    name = request.match_info["type"]
    if name not in TYPES:
        raise FhirError(404, "not-supported", f"resource type {name[:40]!r} is not served; see {BASE}/metadata")
    return TYPES[name]


async def write_audit(request: web.Request, rows: list[tuple[str, Outcome, str, str | None, str | None]]) -> None:
    """(action, outcome, target type, target id, tenant) rows, in one transaction."""
    context: AuditContext = audit_context(request)
    async with request.app[SESSIONS].begin() as db:
        for action, outcome, target_type, target_id, tenant_id in rows:
            db.add(audit_row(context, action, outcome, target_type=target_type, target_id=target_id,
                             tenant_id=tenant_id))


def home_tenant(request: web.Request) -> str | None:
    """The tenant a denial is filed under: the reader's own, so that their administrator sees it."""
    user = request[USER]
    return user.roles[0].tenant_id if user.roles else None


async def run_search(request: web.Request, rtype: ResourceType, scope: Scope, search: SearchRequest) -> Found:
    async with request.app[SESSIONS]() as db:
        return await rtype.search(db, scope, search, request.app[SETTINGS].timezone)


@routes.route("*", f"{BASE}/metadata")
@fhir_handler
async def metadata(request: web.Request) -> web.Response:
    # Public, as FHIR expects: it says what the server can do, nothing about anyone's data.
    return fhir_response(capability_statement(base_url(request), utcnow()))


@routes.route("*", BASE + "/{type}")
@fhir_handler
async def search_type(request: web.Request) -> web.Response:
    rtype = resource_type(request)
    scope = scope_of(await authenticate(request))
    if not rtype.allowed(scope):
        await write_audit(request, [("fhir.search", Outcome.DENIED, rtype.name, None, home_tenant(request))])
        raise FhirError(404, "not-found", f"{rtype.name} is not available to you")
    search = parse_search(request.query, rtype.param_names, rtype.repeatable)
    found = await run_search(request, rtype, scope, search)
    if rtype.name in PER_RESOURCE_AUDIT and found.page:
        rows = [("fhir.search", Outcome.SUCCESS, rtype.name, r["id"], tenant) for r, tenant in found.page]
    else:
        tenant = found.page[0][1] if len(found.page) == 1 else home_tenant(request)
        rows = [("fhir.search", Outcome.SUCCESS, rtype.name, None, tenant)]
    await write_audit(request, rows)
    return fhir_response(searchset(base_url(request), rtype.name, search, [r for r, _ in found.page], found.total))


@routes.route("*", BASE + "/{type}/{id}")
@fhir_handler
async def read(request: web.Request) -> web.Response:
    rtype = resource_type(request)
    scope = scope_of(await authenticate(request))
    resource_id = request.match_info["id"]
    for name in request.query:
        if name != "_format":
            raise bad_parameter(f"read takes no parameter {name[:40]!r}")
        if request.query[name] not in ACCEPTED_FORMATS:
            raise bad_parameter("only JSON is served (_format=json)")
    found = Found()
    if rtype.allowed(scope) and FHIR_ID.match(resource_id):
        one = SearchRequest(values={"_id": (resource_id,)}, count=1, offset=0, items=())
        found = await run_search(request, rtype, scope, one)
    if not found.page:
        await write_audit(request, [("fhir.read", Outcome.DENIED, rtype.name, resource_id[:64],
                                     home_tenant(request))])
        raise not_found(rtype.name, resource_id)
    resource, tenant = found.page[0]
    await write_audit(request, [("fhir.read", Outcome.SUCCESS, rtype.name, resource_id, tenant)])
    return fhir_response(resource)


@routes.route("*", "/fhir/{tail:.*}")
@fhir_handler
async def unknown(request: web.Request) -> web.Response:
    raise FhirError(404, "not-supported", f"nothing is served at {request.path[:100]}; the base is {BASE}/")
