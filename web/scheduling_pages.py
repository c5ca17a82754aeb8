"""Scheduling pages: self-booking (/schedule), the availability editor and the staff calendar.

The pages are thin server-rendered shells; small ES modules (web/static/js/scheduling/) do the work
through the JSON scheduling API, which enforces authorization again. The handlers check the role in
the resource's tenant anyway, so that a page never reveals a resource's name to someone who may not
see it, and every denial is audited like the API's own (404, existence not revealed).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from zoneinfo import available_timezones

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Role, RoleAssignment, User
from server.auth.sessions import CurrentUser
from server.keys import SESSIONS
from server.records.audit import Outcome, audit
from server.requestctx import USER, audit_context
from server.scheduling.models import Resource, ResourceKind
from server.scheduling.routes import ADMINS, STAFF, resource_json, roles_in
from web.pages import login_redirect

routes = web.RouteTableDef()

# People who book for themselves; staff may book on their behalf.
CLIENT_ROLES = frozenset({Role.PATIENT, Role.STUDENT})
MAX_PEOPLE = 1000  # a commune health station or a primary school: far fewer in practice


def require_login(request: web.Request) -> CurrentUser:
    user = request.get(USER)
    if user is None:
        raise login_redirect(request)
    return user


async def page_resource(request: web.Request, user: CurrentUser, action: str,
                        allowed: frozenset[Role]) -> Resource:
    """The resource in the URL if the user holds one of ``allowed`` in its tenant; else 404, audited."""
    resource_id = request.match_info["resource_id"]
    async with request.app[SESSIONS]() as db:
        resource = await db.get(Resource, resource_id)
    if resource is None or not roles_in(user, resource.tenant_id) & allowed:
        await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED,
                    target_type="resource", target_id=resource_id[:64])
        raise web.HTTPNotFound()
    return resource


async def people_of(db: AsyncSession, tenant_ids: Iterable[str], roles: frozenset[Role] | None = None
                    ) -> list[dict[str, str]]:
    """Members of the tenants (optionally with one of ``roles``), by name: the API gives only ids."""
    tenant_ids = list(tenant_ids)
    if not tenant_ids:
        return []
    query = (select(User.id, User.display_name, RoleAssignment.tenant_id)
             .join(RoleAssignment, RoleAssignment.user_id == User.id)
             .where(RoleAssignment.tenant_id.in_(tenant_ids)).distinct().order_by(User.display_name)
             .limit(MAX_PEOPLE))
    if roles is not None:
        query = query.where(RoleAssignment.role.in_(roles))
    rows = await db.execute(query)
    return [{"id": user_id, "name": name, "tenant_id": tenant_id} for user_id, name, tenant_id in rows]


def resource_config(resource: Resource, user: CurrentUser) -> dict[str, object]:
    roles = roles_in(user, resource.tenant_id)
    return {**resource_json(resource), "staff": bool(roles & STAFF), "admin": bool(roles & ADMINS)}


@routes.get("/schedule", name="schedule")
@aiohttp_jinja2.template("scheduling/book.html")
async def booking_page(request: web.Request) -> dict[str, object]:
    user = require_login(request)
    tenant_ids = {r.tenant_id for r in user.roles}
    staff_tenants = {r.tenant_id for r in user.roles if r.role in STAFF}
    async with request.app[SESSIONS]() as db:
        resources = (await db.execute(select(Resource).where(Resource.tenant_id.in_(tenant_ids), Resource.active)
                                      .order_by(Resource.name))).scalars().all()
        clients = await people_of(db, staff_tenants, CLIENT_ROLES)
        admin_tenants = await tenants_administered(db, user)
        switched_off = await inactive_resources(db, [str(t["id"]) for t in admin_tenants])
    configs = [resource_config(r, user) for r in resources]
    return {"resources": configs, "admin_tenants": admin_tenants, "kinds": [k.value for k in ResourceKind],
            "switched_off": switched_off, "config": {"me": user.id, "resources": configs, "clients": clients}}


async def inactive_resources(db: AsyncSession, tenant_ids: list[str]) -> list[dict[str, str]]:
    """Calendars an administrator switched off: not bookable, so not in the list above, but they
    must stay reachable to be switched on again."""
    if not tenant_ids:
        return []
    rows = await db.execute(select(Resource.id, Resource.name).where(Resource.tenant_id.in_(tenant_ids),
                                                                     Resource.active.is_(False))
                            .order_by(Resource.name))
    return [{"id": resource_id, "name": name} for resource_id, name in rows]


@cache
def zone_names() -> list[str]:
    """Time zones for the settings form's suggestions (the API accepts exactly these)."""
    return sorted(zone for zone in available_timezones() if "/" in zone and not zone.startswith(("Etc/", "SystemV/")))


async def tenants_administered(db: AsyncSession, user: CurrentUser) -> list[dict[str, object]]:
    """Where the user may add a bookable resource, with the staff who may own one (a doctor's calendar)."""
    tenants = {r.tenant_id: r.tenant_name for r in user.roles if r.role in ADMINS}
    staff = await people_of(db, tenants, STAFF - ADMINS)
    return [{"id": tenant_id, "name": name, "staff": [p for p in staff if p["tenant_id"] == tenant_id]}
            for tenant_id, name in sorted(tenants.items(), key=lambda item: item[1])]


@routes.get("/schedule/admin/{resource_id}/availability", name="schedule_availability")
@aiohttp_jinja2.template("scheduling/availability.html")
async def availability_page(request: web.Request) -> dict[str, object]:
    user = require_login(request)
    resource = await page_resource(request, user, "scheduling.availability.page", ADMINS)
    return {"resource": resource, "zones": zone_names(), "config": {"resource": resource_config(resource, user)}}


@routes.get("/schedule/calendar/{resource_id}", name="schedule_calendar")
@aiohttp_jinja2.template("scheduling/calendar.html")
async def calendar_page(request: web.Request) -> dict[str, object]:
    user = require_login(request)
    resource = await page_resource(request, user, "scheduling.calendar.page", STAFF)
    async with request.app[SESSIONS]() as db:
        people = await people_of(db, [resource.tenant_id])
    return {"resource": resource,
            "config": {"me": user.id, "resource": resource_config(resource, user), "people": people}}
