"""The audit log for administrators: GET /admin/audit (search, paged) and GET /admin/audit.csv (export).

Facility and school administrators see their own tenants' rows, the platform administrator all rows;
everyone else gets 404, audited like every other denial. Looking at the log is itself audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.accounts import normalise_email
from server.auth.models import Tenant, User
from server.auth.sessions import CurrentUser
from server.keys import SESSIONS, SETTINGS, TRANSLATOR
from server.records.audit import AuditEvent, Outcome, audit
from server.records.audit_search import AuditFilter, audit_query, search_audit
from server.records.dates import InvalidDate, parse_interval
from server.records.scope import scope_of
from server.requestctx import USER, audit_context
from web.pages import login_redirect

routes = web.RouteTableDef()
PAGE_SIZE = 50
EXPORT_BATCH = 500
FIELDS = ("actor", "target", "date_from", "date_to", "action", "outcome")
CSV_COLUMNS = ("time_utc", "actor_id", "actor_role", "action", "target_type", "target_id", "tenant_id", "outcome",
               "ip", "user_agent", "request_id")
NO_SUCH_USER = "-"  # an actor id no row has: an unknown e-mail matches nothing


@dataclass(frozen=True)
class Query:
    form: dict[str, str]
    filter: AuditFilter
    page: int
    error: str | None


async def admin_scope(request: web.Request, action: str) -> tuple[CurrentUser, frozenset[str] | None]:
    """The administrator and the tenants whose rows they see; 404 (audited) for anyone else."""
    user = request.get(USER)
    if user is None:
        raise login_redirect(request)
    scope = scope_of(user)
    if not scope.may_read_audit:
        await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED, target_type="audit_log")
        raise web.HTTPNotFound()
    return user, scope.audit


async def person(db: AsyncSession, value: str) -> str | None:
    """An id as given, or the id of the user with this e-mail: administrators know people by e-mail,
    the log by id. An unknown e-mail matches nothing."""
    if not value:
        return None
    if "@" not in value:
        return value
    found = (await db.execute(select(User.id).where(User.email == normalise_email(value)))).scalar_one_or_none()
    return found or NO_SUCH_USER


async def parse_query(request: web.Request, db: AsyncSession) -> Query:
    _ = request.app[TRANSLATOR].gettext
    form = {name: request.query.get(name, "").strip()[:254] for name in FIELDS}
    zone = request.app[SETTINGS].timezone
    error = None
    not_before = before = None
    try:
        if form["date_from"]:
            not_before = parse_interval(form["date_from"], zone).start
        if form["date_to"]:
            before = parse_interval(form["date_to"], zone).end  # "to 26 November" includes that day
    except InvalidDate:
        error = _("Dates are written YYYY-MM-DD.")
    outcome = None
    if form["outcome"]:
        try:
            outcome = Outcome(form["outcome"])
        except ValueError:
            error = _("Unknown outcome.")
    page_raw = request.query.get("page", "1")
    page = int(page_raw) if page_raw.isdigit() and 0 < len(page_raw) < 7 else 1
    f = AuditFilter(actor_id=await person(db, form["actor"]), target_id=await person(db, form["target"]),
                    action=form["action"] or None,
                    outcome=outcome, not_before=not_before, before=before)
    return Query(form=form, filter=f, page=max(page, 1), error=error)


def home_tenant(user: CurrentUser, tenants: frozenset[str] | None) -> str | None:
    return None if tenants is None else sorted(tenants)[0]


async def names(db: AsyncSession, rows: Sequence[AuditEvent]) -> tuple[dict[str, str], dict[str, str]]:
    """E-mails of the people (actors and targets) and names of the tenants on this page, for people to read."""
    user_ids = {r.actor_id for r in rows if r.actor_id} | {r.target_id for r in rows if r.target_id}
    tenant_ids = {r.tenant_id for r in rows if r.tenant_id}
    emails: dict[str, str] = {}
    tenants: dict[str, str] = {}
    if user_ids:
        emails = {i: e for i, e in await db.execute(select(User.id, User.email).where(User.id.in_(user_ids)))}
    if tenant_ids:
        tenants = {i: n for i, n in await db.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(tenant_ids)))}
    return emails, tenants


def page_link(form: dict[str, str], page: int) -> str:
    return "/admin/audit?" + urlencode([*((k, v) for k, v in form.items() if v), ("page", str(page))])


@routes.get("/admin/audit", name="audit")
async def audit_page(request: web.Request) -> web.Response:
    user, tenants = await admin_scope(request, "audit.view")
    async with request.app[SESSIONS]() as db:
        query = await parse_query(request, db)
        rows: Sequence[AuditEvent] = []
        total = 0
        if query.error is None:
            rows, total = await search_audit(db, query.filter, tenants, limit=PAGE_SIZE,
                                             offset=(query.page - 1) * PAGE_SIZE)
        emails, tenant_names = await names(db, rows)
    await audit(request.app[SESSIONS], audit_context(request), "audit.view", Outcome.SUCCESS,
                target_type="audit_log", tenant_id=home_tenant(user, tenants))
    zone = ZoneInfo(request.app[SETTINGS].timezone)
    context = {
        "form": query.form,
        "error": query.error,
        "rows": [(row, row.at.astimezone(zone), emails.get(row.actor_id or ""), emails.get(row.target_id or ""),
                  tenant_names.get(row.tenant_id or "")) for row in rows],
        "total": total,
        "page": query.page,
        "previous_url": page_link(query.form, query.page - 1) if query.page > 1 else None,
        "next_url": page_link(query.form, query.page + 1) if query.page * PAGE_SIZE < total else None,
        "csv_url": "/admin/audit.csv?" + urlencode([(k, v) for k, v in query.form.items() if v]),
        "outcomes": [o.value for o in Outcome],
        "timezone": request.app[SETTINGS].timezone,
    }
    return aiohttp_jinja2.render_template("audit.html", request, context, status=400 if query.error else 200)


def spreadsheet_safe(value: str | None) -> str:
    """A cell a spreadsheet will not run: user agents and ids come from outside (CSV injection)."""
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_row(row: AuditEvent) -> list[str]:
    at: datetime = row.at
    return [spreadsheet_safe(v) for v in (
        at.isoformat(timespec="seconds"), row.actor_id, row.actor_role, row.action, row.target_type, row.target_id,
        row.tenant_id, row.outcome.value, row.ip, row.user_agent, row.request_id)]


@routes.get("/admin/audit.csv", name="audit_csv")
async def audit_csv(request: web.Request) -> web.StreamResponse:
    user, tenants = await admin_scope(request, "audit.export")
    sessions = request.app[SESSIONS]
    async with sessions() as db:
        query = await parse_query(request, db)
    if query.error is not None:
        raise web.HTTPBadRequest(text=query.error)
    await audit(sessions, audit_context(request), "audit.export", Outcome.SUCCESS, target_type="audit_log",
                tenant_id=home_tenant(user, tenants))
    response = web.StreamResponse(
        headers={"Content-Disposition": 'attachment; filename="audit.csv"', "Cache-Control": "no-store"})
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    # A byte-order mark so that spreadsheets read the file as UTF-8 (Vietnamese tenant and user names).
    await response.write(("\ufeff" + csv_lines([list(CSV_COLUMNS)])).encode())
    # Streamed in batches: an export of a busy facility's year must not sit in memory whole.
    async with sessions() as db:
        result = await db.stream_scalars(audit_query(query.filter, tenants).execution_options(yield_per=EXPORT_BATCH))
        async for batch in result.partitions(EXPORT_BATCH):
            await response.write(csv_lines([csv_row(row) for row in batch]).encode())
    await response.write_eof()
    return response


def csv_lines(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
