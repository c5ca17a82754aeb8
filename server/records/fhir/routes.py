"""The FHIR R4 routes: metadata, read, search, Appointment/$book and the bulk $export.

Every route takes any method, so that a wrong method reaches our handler and gets an OperationOutcome
405 rather than aiohttp's plain text; the same is why a catch-all answers unknown /fhir/ paths. The
handlers are exempt from the CSRF check: reads change nothing, and the routes that do change something
($book, $export and its DELETE) accept a bearer API key only, never a cookie, so a forged cross-site
request has no credentials to ride on.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from email.utils import formatdate

from aiohttp import web

from server.auth.sessions import CurrentUser
from server.db.base import utcnow
from server.keys import SESSIONS, SETTINGS
from server.middlewares import csrf_exempt
from server.records.audit import AuditContext, Outcome, audit_row
from server.records.fhir import export
from server.records.fhir.access import authenticate
from server.records.fhir.book import book
from server.records.fhir.capability import capability_statement
from server.records.fhir.outcome import (
    FhirError,
    bad_parameter,
    fhir_response,
    not_found,
    operation_outcome,
    unauthenticated,
)
from server.records.fhir.queries import Context, Found
from server.records.fhir.search import ACCEPTED_FORMATS, SearchRequest, parse_search, searchset
from server.records.fhir.types import ResourceType, served
from server.records.scope import Scope, scope_of
from server.requestctx import USER, audit_context

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
BASE = "/fhir/R4"
READ_METHODS = frozenset({"GET", "HEAD"})
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# Searches of these types audit one row per resource returned, so that "who saw this patient" has an answer.
PER_RESOURCE_AUDIT = frozenset({"Patient", "Appointment", "DocumentReference"})

FhirHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fhir_handler(handler: FhirHandler) -> FhirHandler:
    return fhir_methods(READ_METHODS)(handler)


def fhir_methods(methods: frozenset[str]) -> Callable[[FhirHandler], FhirHandler]:
    """Answer other methods with a 405 OperationOutcome, and every error with an OperationOutcome."""
    allow = ", ".join(sorted(methods - {"HEAD"}))

    def decorate(handler: FhirHandler) -> FhirHandler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                if request.method not in methods:
                    raise FhirError(405, "not-supported", f"{request.method} is not supported here",
                                    headers={"Allow": allow})
                return await handler(request)
            except FhirError as exc:
                return exc.response()
            except Exception:
                log.exception("unhandled error in %s %s", request.method, request.path)
                return fhir_response(operation_outcome("exception", "internal error"), 500)

        return csrf_exempt(wrapped)

    return decorate


async def authenticate_key(request: web.Request) -> CurrentUser:
    """A bearer API key and nothing else: for the routes that change something (see the module doc)."""
    if "Authorization" not in request.headers:
        raise unauthenticated("this operation needs Authorization: Bearer <API key>; a session cookie is not enough")
    return await authenticate(request)


def base_url(request: web.Request) -> str:
    return request.app[SETTINGS].effective_public_url + BASE


def resource_type(request: web.Request) -> ResourceType:
    name = request.match_info["type"]
    types = served(request.app)
    if name not in types:
        raise FhirError(404, "not-supported", f"resource type {name[:40]!r} is not served; see {BASE}/metadata")
    return types[name]


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
        settings = request.app[SETTINGS]
        return await rtype.search(db, scope, search, Context(settings.timezone, settings.effective_public_url))


@routes.route("*", f"{BASE}/metadata")
@fhir_handler
async def metadata(request: web.Request) -> web.Response:
    # Public, as FHIR expects: it says what the server can do, nothing about anyone's data.
    return fhir_response(capability_statement(base_url(request), utcnow(), served(request.app)))


@routes.route("*", f"{BASE}/Appointment/$book")
@fhir_methods(frozenset({"POST"}))
async def appointment_book(request: web.Request) -> web.Response:
    user = await authenticate_key(request)
    for name in request.query:
        if name != "_format" or request.query[name] not in ACCEPTED_FORMATS:
            raise bad_parameter(f"$book takes its input in the body, not {name[:40]!r}")
    created = await book(request, user, scope_of(user))
    return fhir_response(created, 201, headers={"Location": f"{base_url(request)}/Appointment/{created['id']}"})


EXPORT_PARAMS = frozenset({"_type", "_outputFormat"})
NDJSON_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})


def export_types(request: web.Request) -> list[str]:
    for name in request.query:
        if name not in EXPORT_PARAMS:
            raise bad_parameter(f"$export does not support {name[:40]!r}; it takes _type and _outputFormat")
        if len(request.query.getall(name)) > 1:
            raise bad_parameter(f"give {name} once; separate alternatives with commas")
    # An unencoded "+" in a query string arrives as a space: application/fhir ndjson is meant.
    if request.query.get("_outputFormat", "application/fhir+ndjson").replace(" ", "+") not in NDJSON_FORMATS:
        raise bad_parameter("_outputFormat: only application/fhir+ndjson is produced")
    exportable = export.exportable(request.app)
    if "_type" not in request.query:
        return exportable
    wanted = [t.strip() for t in request.query["_type"].split(",") if t.strip()]
    unknown = [t for t in wanted if t not in exportable]
    if not wanted or unknown:
        raise bad_parameter(f"_type: exportable types are {', '.join(exportable)}")
    return [t for t in exportable if t in wanted]


@routes.route("*", f"{BASE}/$export")
@fhir_methods(frozenset({"GET"}))  # not HEAD: a kick-off starts work
async def export_kickoff(request: web.Request) -> web.Response:
    user = await authenticate_key(request)
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise bad_parameter("$export is asynchronous: send Prefer: respond-async")
    types = export_types(request)
    scope = export.export_scope(scope_of(user))
    if scope is None:
        await write_audit(request, [("fhir.export", Outcome.DENIED, "export", None, home_tenant(request))])
        raise FhirError(403, "forbidden", "$export is for facility and school administrators")
    jobs = request.app[export.EXPORTS]
    if jobs.running_for(user.id):
        raise FhirError(429, "too-costly", "an export of yours is still running; wait for it or cancel it",
                        headers={"Retry-After": "10"})
    tenants = sorted(scope.tenants)
    query = f"?{request.query_string}" if request.query_string else ""
    job = jobs.create(user.id, tenants, types, f"{base_url(request)}/$export{query}")
    await write_audit(request, [("fhir.export", Outcome.SUCCESS, "export", job.id, t) for t in tenants])
    export.start(request.app, job, scope, audit_context(request))
    return fhir_response(operation_outcome("informational", "export started", severity="information"), 202,
                         headers={"Content-Location": f"{base_url(request)}/$export-status/{job.id}"})


async def own_job(request: web.Request, user: CurrentUser) -> export.Job:
    job = request.app[export.EXPORTS].load(request.match_info["job"])
    if job is None or job.owner != user.id:
        raise FhirError(404, "not-found", "no such export (finished exports are deleted after an hour)")
    return job


@routes.route("*", BASE + "/$export-status/{job}")
@fhir_methods(frozenset({"GET", "HEAD", "DELETE"}))
async def export_status(request: web.Request) -> web.Response:
    user = await authenticate_key(request)
    job = await own_job(request, user)
    jobs = request.app[export.EXPORTS]
    if request.method == "DELETE":
        jobs.delete(job.id)
        await write_audit(request, [("fhir.export.cancel", Outcome.SUCCESS, "export", job.id, job.tenants[0])])
        return fhir_response(operation_outcome("informational", "export deleted", severity="information"), 202)
    if job.status == "running":
        return fhir_response(operation_outcome("informational", f"in progress: {job.progress}",
                                               severity="information"), 202,
                             headers={"X-Progress": job.progress, "Retry-After": "2"})
    if job.status == "failed":
        raise FhirError(500, "exception", "the export failed; start another")
    expires = job.created + jobs.ttl
    manifest = {
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": True,
        "output": [{"type": o["type"], "url": f"{base_url(request)}/$export-file/{job.id}/{o['file']}",
                    "count": o["count"]} for o in job.output],
        "error": [],
    }
    return web.json_response(manifest, headers={
        "Cache-Control": "no-store",
        "Expires": formatdate(expires, usegmt=True)})


@routes.route("*", BASE + "/$export-file/{job}/{name}")
@fhir_methods(READ_METHODS)
async def export_file(request: web.Request) -> web.StreamResponse:
    user = await authenticate_key(request)
    job = await own_job(request, user)
    path = request.app[export.EXPORTS].file(job, request.match_info["name"])
    if path is None or job.status != "done":
        raise FhirError(404, "not-found", "no such file in this export")
    await write_audit(request, [("fhir.export.download", Outcome.SUCCESS, "export", job.id, t) for t in job.tenants])
    return web.FileResponse(path, headers={"Content-Type": "application/fhir+ndjson", "Cache-Control": "no-store"})


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
    if (rtype.name in PER_RESOURCE_AUDIT or rtype.audit_each) and found.page:
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
