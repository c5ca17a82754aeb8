"""Our bookable resources as FHIR: HealthcareService, Schedule and Slot.

The mapping (docs/fhir.md): every bookable resource (a doctor's consultations, a teacher's hours, a
class, a consultation room, a service) is one HealthcareService — what the facility or school offers —
and one Schedule with the same id, whose actors are that HealthcareService and, when a person gives it,
their Practitioner. Slots are not stored: they are computed from the availability rules minus the
bookings, exactly as the scheduling API computes them, and their id says which they are:
``{resource id}.{start as Unix seconds}``, so a Slot can be read back and booked with no table of slots.

Who sees them: anyone with a role in the resource's tenant, as GET /api/scheduling/resources.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.base import utcnow
from server.records.fhir.outcome import bad_parameter
from server.records.fhir.queries import Context, Found, name_matches, page, single
from server.records.fhir.resources import Resource as Fhir
from server.records.fhir.resources import instant, reference
from server.records.fhir.search import SearchRequest, date_bounds, strip_reference
from server.records.scope import Scope
from server.scheduling import queries, service
from server.scheduling.models import Resource
from server.scheduling.slots import Slot

KIND_SYSTEM = "urn:caunoi:bookable-kind"
SLOT_ID = re.compile(r"^(?P<resource>[0-9a-f\-]{36})\.(?P<epoch>[0-9]{1,12})$")
# As GET /api/scheduling/resources/{id}/slots: a longer range is a client mistake, not a wish.
MAX_SLOT_RANGE = timedelta(days=62)
DEFAULT_SLOT_RANGE = timedelta(days=7)


def slot_id(resource_id: str, start: datetime) -> str:
    return f"{resource_id}.{int(start.timestamp())}"


def parse_slot_id(value: str) -> tuple[str, datetime] | None:
    """(resource id, start) of a Slot id, or None if it is not one of ours."""
    match = SLOT_ID.match(value)
    if match is None:
        return None
    return match["resource"], datetime.fromtimestamp(int(match["epoch"]), UTC)


def healthcare_service(resource: Resource) -> Fhir:
    return {
        "resourceType": "HealthcareService",
        "id": resource.id,
        "active": resource.active,
        "providedBy": reference("Organization", resource.tenant_id),
        "category": [{"coding": [{"system": KIND_SYSTEM, "code": resource.kind.value}],
                      "text": resource.kind.value}],
        "name": resource.name,
        "appointmentRequired": True,
    }


def schedule(resource: Resource) -> Fhir:
    actors = [reference("HealthcareService", resource.id, resource.name)]
    if resource.user_id:
        actors.append(reference("Practitioner", resource.user_id))
    return {
        "resourceType": "Schedule",
        "id": resource.id,
        "active": resource.active,
        "serviceCategory": [{"coding": [{"system": KIND_SYSTEM, "code": resource.kind.value}]}],
        "actor": actors,
        "comment": (f"{resource.slot_minutes}-minute slots, {resource.capacity} seat(s) each, "
                    f"bookable from {resource.min_notice_minutes} minutes to {resource.horizon_days} days ahead; "
                    f"times in {resource.timezone}"),
    }


def slot(resource: Resource, found: Slot) -> Fhir:
    return {
        "resourceType": "Slot",
        "id": slot_id(resource.id, found.start),
        "schedule": reference("Schedule", resource.id),
        "status": "free" if found.free else "busy",
        "start": instant(found.start),
        "end": instant(found.end),
        # Seats left: FHIR has no field for it, and a class of 30 is "free" until the 30th booking.
        "comment": f"{found.free} of {found.capacity} seat(s) free",
    }


async def visible_resources(db: AsyncSession, scope: Scope, ids: tuple[str, ...] | None = None) -> list[Resource]:
    query = select(Resource).where(Resource.tenant_id.in_(sorted(scope.tenants))).order_by(Resource.name, Resource.id)
    if ids is not None:
        query = query.where(Resource.id.in_(ids))
    return list((await db.execute(query)).scalars().all())


def _organizations(search: SearchRequest) -> tuple[str, ...] | None:
    orgs = search.any_of("organization")
    return None if orgs is None else tuple(strip_reference(o, ["Organization"]) for o in orgs)


def _active(search: SearchRequest) -> bool | None:
    value = single(search, "active")
    if value is None:
        return None
    if value not in {"true", "false"}:
        raise bad_parameter("active is true or false")
    return value == "true"


async def healthcare_services(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    orgs, names, active, kinds = _organizations(search), search.any_of("name"), _active(search), \
        search.any_of("service-category")
    found = [(healthcare_service(r), r.tenant_id) for r in await visible_resources(db, scope, search.any_of("_id"))
             if (orgs is None or r.tenant_id in orgs) and (names is None or name_matches(r.name, names))
             and (active is None or r.active == active) and (kinds is None or r.kind.value in kinds)]
    return page(found, search)


async def schedules(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    actors = search.any_of("actor")
    wanted = None if actors is None else {strip_reference(a, ["Practitioner", "HealthcareService"]) for a in actors}
    active = _active(search)
    found = [(schedule(r), r.tenant_id) for r in await visible_resources(db, scope, search.any_of("_id"))
             if (wanted is None or r.id in wanted or r.user_id in wanted) and (active is None or r.active == active)]
    return page(found, search)


def _slot_range(search: SearchRequest, zone: str, now: datetime) -> tuple[datetime, datetime]:
    low, high = date_bounds(search.any_of("start") or (), zone)
    start = low or now
    end = high or start + DEFAULT_SLOT_RANGE
    if end <= start:
        return start, start
    if end - start > MAX_SLOT_RANGE:
        raise bad_parameter("a Slot search covers at most 62 days: narrow start=ge…&start=lt…")
    return start, end


async def _counted_slots(db: AsyncSession, resource: Resource, start: datetime, end: datetime, now: datetime
                         ) -> list[Slot]:
    """Every slot, free or not, with the seats of older bookings that overlap it without starting with
    it (after a change of slot length): such a slot is busy, as $book would refuse it."""
    computed = await service.slots_between(db, resource, start, end, now=now, include_full=True)
    if not computed:
        return computed
    periods = await queries.active_periods(db, resource.id, computed[0].start, computed[-1].end)
    return queries.count_overlaps(computed, periods, include_full=True)


async def slots(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    """The slots of one Schedule in a date range (default: the next 7 days), or Slots by id."""
    statuses = search.any_of("status")
    if statuses is not None and not set(statuses) <= {"free", "busy"}:
        raise bad_parameter("status is free or busy")
    now = utcnow()
    ids = search.any_of("_id")
    if ids is not None:
        # A read (or _id search): each id names its resource and start, so only that instant is computed.
        only = single(search, "schedule", ["Schedule"])
        wanted = [parsed for parsed in map(parse_slot_id, ids) if parsed is not None and only in (None, parsed[0])]
        resources = {r.id: r for r in await visible_resources(db, scope, tuple({rid for rid, _ in wanted}))}
        found: list[tuple[Fhir, str | None]] = []
        for resource_id, start in wanted:
            resource = resources.get(resource_id)
            if resource is None:
                continue
            for s in await _counted_slots(db, resource, start, start + timedelta(seconds=1), now):
                if s.start == start:
                    found.append((slot(resource, s), resource.tenant_id))
        return page([f for f in found if statuses is None or f[0]["status"] in statuses], search)
    schedule_id = single(search, "schedule", ["Schedule"])
    if schedule_id is None:
        raise bad_parameter("a Slot search needs schedule=Schedule/{id} (slots are computed per schedule)")
    start, end = _slot_range(search, ctx.zone, now)
    visible = await visible_resources(db, scope, (schedule_id,))
    if not visible or end <= start:
        return Found()
    resource = visible[0]
    computed = await _counted_slots(db, resource, start, end, now)
    found = [(slot(resource, s), resource.tenant_id) for s in computed]
    return page([f for f in found if statuses is None or f[0]["status"] in statuses], search)
