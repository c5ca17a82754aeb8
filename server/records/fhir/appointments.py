"""Our bookings as FHIR Appointments.

Who sees which, as the scheduling API (server/scheduling/routes.py): in a tenant where the reader is
scheduling staff (administrators, doctors, nurses, teachers), every booking; elsewhere in their
tenants, only the bookings made for them. Bookings can be many, so they are filtered and paged in SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Tenant, TenantKind
from server.records.fhir.calendars import slot_id
from server.records.fhir.outcome import bad_parameter
from server.records.fhir.queries import Context, Found
from server.records.fhir.resources import USER_SYSTEM, instant, reference
from server.records.fhir.resources import Resource as Fhir
from server.records.fhir.search import SearchRequest, date_bounds, strip_reference
from server.records.scope import Scope
from server.scheduling.models import Booking, BookingStatus, Resource
from server.scheduling.routes import STAFF

STATUSES = {s.value for s in BookingStatus}  # booked and cancelled are FHIR AppointmentStatus codes too


def appointment(booking: Booking, resource: Resource, tenant_kind: TenantKind) -> Fhir:
    participants: list[dict[str, Any]] = []
    if booking.subject_user_id:
        # In a facility the person booked for is a patient; a school's students are not Patients here.
        who = (reference("Patient", booking.subject_user_id) if tenant_kind == TenantKind.FACILITY
               else {"identifier": {"system": USER_SYSTEM, "value": booking.subject_user_id}})
        participants.append({"actor": who, "required": "required", "status": "accepted"})
    if resource.user_id:
        participants.append({"actor": reference("Practitioner", resource.user_id), "required": "required",
                             "status": "accepted"})
    participants.append({"actor": reference("HealthcareService", resource.id, resource.name),
                         "required": "information-only", "status": "accepted"})
    result: Fhir = {
        "resourceType": "Appointment",
        "id": booking.id,
        "status": booking.status.value,
        "serviceCategory": [{"coding": [{"system": "urn:caunoi:bookable-kind", "code": resource.kind.value}]}],
        "description": resource.name,
        "start": instant(booking.starts_at),
        "end": instant(booking.ends_at),
        "minutesDuration": max(1, int((booking.ends_at - booking.starts_at).total_seconds() // 60)),
        "slot": [reference("Slot", slot_id(resource.id, booking.starts_at))],
        "created": instant(booking.created_at),
        "participant": participants,
    }
    if booking.note:
        result["comment"] = booking.note
    if booking.status == BookingStatus.CANCELLED and booking.cancel_reason:
        result["cancelationReason"] = {"text": booking.cancel_reason}
    return result


def visible(scope: Scope) -> Any:
    staff = sorted(t for t in scope.tenants if scope.roles_in(t) & STAFF)
    own = and_(Booking.tenant_id.in_(sorted(scope.tenants)), Booking.subject_user_id == scope.user_id)
    return or_(Booking.tenant_id.in_(staff), own) if scope.tenants else false()


async def appointments(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    conditions = [visible(scope)]
    if (ids := search.any_of("_id")) is not None:
        conditions.append(Booking.id.in_(ids))
    if (patients := search.any_of("patient")) is not None:
        conditions.append(Booking.subject_user_id.in_([strip_reference(p, ["Patient"]) for p in patients]))
    if (actors := search.any_of("actor")) is not None:
        wanted = [strip_reference(a, ["Patient", "Practitioner", "HealthcareService"]) for a in actors]
        conditions.append(or_(Booking.subject_user_id.in_(wanted), Resource.user_id.in_(wanted),
                              Resource.id.in_(wanted)))
    if (statuses := search.any_of("status")) is not None:
        if not set(statuses) <= STATUSES:
            raise bad_parameter(f"status is one of {', '.join(sorted(STATUSES))}")
        conditions.append(Booking.status.in_([BookingStatus(s) for s in statuses]))
    if dates := search.any_of("date"):
        low, high = date_bounds(dates, ctx.zone)
        if low is not None:
            conditions.append(Booking.starts_at >= low)
        if high is not None:
            conditions.append(Booking.starts_at < high)
    joined = select(Booking, Resource, Tenant.kind).join(Resource, Resource.id == Booking.resource_id) \
        .join(Tenant, Tenant.id == Booking.tenant_id).where(*conditions)
    total = int(await db.scalar(select(func.count()).select_from(joined.subquery())) or 0)
    rows = await db.execute(joined.order_by(Booking.starts_at, Booking.id).limit(search.count).offset(search.offset))
    return Found(page=[(appointment(b, r, kind), b.tenant_id) for b, r, kind in rows], total=total)
