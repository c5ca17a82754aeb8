"""The scheduling API: resources, availability, slots, bookings.

Authorization: a resource belongs to a tenant. Its admins (facility_admin, school_admin) manage it;
staff (doctors, nurses, teachers) book for anyone of the tenant; patients and students book, move
and cancel only their own bookings. Anything else is 404 (existence is not revealed) and audited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import datetime, timedelta

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Role, RoleAssignment, User
from server.auth.sessions import CurrentUser
from server.db.base import utcnow
from server.errors import ApiError
from server.keys import BACKGROUND, ENGINE, NOTIFIERS, SESSIONS, SETTINGS, TRANSLATOR
from server.notify.base import Notifier
from server.records.audit import Outcome, audit, audit_row
from server.requestctx import USER, audit_context
from server.scheduling import fast_booking, queries, service
from server.scheduling.field_errors import FieldErrors, errors_of, field_error, parse_all
from server.scheduling.models import AvailabilityException, AvailabilityRule, Booking, BookingStatus, Resource
from server.scheduling.reminders import send_confirmation
from server.scheduling.schemas import (
    AvailabilityIn,
    BookingIn,
    CancelIn,
    RescheduleIn,
    ResourceIn,
    ResourcePatchIn,
    RuleIn,
    overlapping_rules,
    utc,
)
from server.validation import parse_body

routes = web.RouteTableDef()

ADMINS = frozenset({Role.FACILITY_ADMIN, Role.SCHOOL_ADMIN, Role.PLATFORM_ADMIN})
STAFF = ADMINS | {Role.DOCTOR, Role.NURSE, Role.TEACHER}
MAX_RANGE = timedelta(days=62)


def require_user(request: web.Request) -> CurrentUser:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return user


def roles_in(user: CurrentUser, tenant_id: str) -> set[Role]:
    return {r.role for r in user.roles if r.tenant_id == tenant_id}


async def deny(request: web.Request, action: str, target_type: str, target_id: str) -> ApiError:
    await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED,
                target_type=target_type, target_id=target_id[:64])
    return ApiError(404, "not_found", f"no such {target_type}")


async def resource_for(request: web.Request, db: AsyncSession, user: CurrentUser, action: str,
                       allowed: frozenset[Role] | set[Role] | None = None) -> Resource:
    """The resource in the URL if the user has one of ``allowed`` roles in its tenant (any role if None)."""
    resource_id = request.match_info["resource_id"]
    resource = await db.get(Resource, resource_id)
    roles = roles_in(user, resource.tenant_id) if resource else set()
    if resource is None or not roles or (allowed is not None and not roles & allowed):
        raise await deny(request, action, "resource", resource_id)
    return resource


def resource_json(resource: Resource) -> dict[str, object]:
    return {
        "id": resource.id, "tenant_id": resource.tenant_id, "kind": resource.kind.value, "name": resource.name,
        "user_id": resource.user_id, "timezone": resource.timezone, "slot_minutes": resource.slot_minutes,
        "buffer_minutes": resource.buffer_minutes, "min_notice_minutes": resource.min_notice_minutes,
        "horizon_days": resource.horizon_days, "capacity": resource.capacity, "active": resource.active,
    }


def booking_json(booking: Booking) -> dict[str, object]:
    return {
        "id": booking.id, "resource_id": booking.resource_id, "start": booking.starts_at.isoformat(),
        "end": booking.ends_at.isoformat(), "status": booking.status.value, "seat": booking.seat,
        "subject_user_id": booking.subject_user_id, "note": booking.note, "created_by": booking.created_by,
        "cancelled_by": booking.cancelled_by, "cancel_reason": booking.cancel_reason,
        "rescheduled_from_id": booking.rescheduled_from_id,
    }


def named_booking_json(booking: Booking, resource: Resource, names: dict[str, str]) -> dict[str, object]:
    """A booking with the names a person reads: the resource's, the subject's and its maker's.
    The caller has decided that the reader may see this booking (and so these names)."""
    return {**booking_json(booking), "resource_name": resource.name, "resource_timezone": resource.timezone,
            "subject_name": names.get(booking.subject_user_id or ""),
            "created_by_name": names.get(booking.created_by or "")}


def parse_range(request: web.Request, default_days: int = 7) -> tuple[datetime, datetime]:
    try:
        start = datetime.fromisoformat(request.query["from"]) if "from" in request.query else utcnow()
        end = datetime.fromisoformat(request.query["to"]) if "to" in request.query \
            else start + timedelta(days=default_days)
    except ValueError:
        raise ApiError(400, "invalid_range", "from and to are ISO 8601 date-times with a zone") from None
    if start.tzinfo is None or end.tzinfo is None:
        raise ApiError(400, "invalid_range", "from and to need a time zone offset")
    if end <= start or end - start > MAX_RANGE:
        raise ApiError(400, "invalid_range", "to must be after from, at most 62 days later")
    return utc(start), utc(end)


@routes.get("/api/scheduling/resources")
async def list_resources(request: web.Request) -> web.Response:
    user = require_user(request)
    tenant_ids = {r.tenant_id for r in user.roles}
    async with request.app[SESSIONS]() as db:
        rows = (await db.execute(select(Resource).where(Resource.tenant_id.in_(tenant_ids), Resource.active)
                                 .order_by(Resource.name))).scalars().all()
    return web.json_response({"resources": [resource_json(r) for r in rows]})


@routes.post("/api/scheduling/tenants/{tenant_id}/resources")
async def create_resource(request: web.Request) -> web.Response:
    user = require_user(request)
    tenant_id = request.match_info["tenant_id"]
    if not roles_in(user, tenant_id) & ADMINS:
        raise await deny(request, "scheduling.resource.create", "tenant", tenant_id)
    body = await parse_body(request, ResourceIn)
    async with request.app[SESSIONS].begin() as db:
        if body.user_id is not None:
            member = await db.scalar(select(RoleAssignment.id).where(
                RoleAssignment.user_id == body.user_id, RoleAssignment.tenant_id == tenant_id))
            if member is None:
                raise ApiError(400, "invalid_body", "user_id: not a member of this tenant")
        resource = Resource(tenant_id=tenant_id, **body.model_dump())
        db.add(resource)
        await db.flush()
        db.add(audit_row(audit_context(request), "scheduling.resource.create", Outcome.SUCCESS,
                         target_type="resource", target_id=resource.id, tenant_id=tenant_id))
    return web.json_response(resource_json(resource), status=201)


@routes.patch("/api/scheduling/resources/{resource_id}")
async def update_resource(request: web.Request) -> web.Response:
    """Change a resource's settings (admins of its tenant). Existing bookings keep their times: they
    are rows with their own start and end, never recomputed; slots from now on follow the new
    settings, and a new slot that an existing booking overlaps counts that booking's seat."""
    user = require_user(request)
    body = await parse_all(request, ResourcePatchIn)
    async with request.app[SESSIONS].begin() as db:
        resource = await resource_for(request, db, user, "scheduling.resource.update", ADMINS)
        changes = {key: value for key, value in body.changes().items() if getattr(resource, key) != value}
        for key, value in changes.items():
            setattr(resource, key, value)
        upcoming = await queries.upcoming_count(db, resource.id, utcnow())
        db.add(audit_row(audit_context(request), "scheduling.resource.update", Outcome.SUCCESS,
                         target_type="resource", target_id=resource.id, tenant_id=resource.tenant_id))
    return web.json_response({**resource_json(resource), "changed": sorted(changes), "upcoming_bookings": upcoming})


@routes.get("/api/scheduling/resources/{resource_id}/availability")
async def get_availability(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[SESSIONS]() as db:
        resource = await resource_for(request, db, user, "scheduling.availability.read", STAFF)
        rules = (await db.execute(select(AvailabilityRule).where(AvailabilityRule.resource_id == resource.id)
                                  .order_by(AvailabilityRule.weekday, AvailabilityRule.start_time))).scalars()
        exceptions = (await db.execute(select(AvailabilityException)
                                       .where(AvailabilityException.resource_id == resource.id)
                                       .order_by(AvailabilityException.starts_at))).scalars()
        return web.json_response({
            "resource": resource_json(resource),
            "rules": [{"weekday": r.weekday, "start": r.start_time.isoformat("minutes"),
                       "end": r.end_time.isoformat("minutes"),
                       "valid_from": r.valid_from.isoformat() if r.valid_from else None,
                       "valid_until": r.valid_until.isoformat() if r.valid_until else None} for r in rules],
            "exceptions": [{"kind": e.kind.value, "starts_at": e.starts_at.isoformat(),
                            "ends_at": e.ends_at.isoformat(), "reason": e.reason} for e in exceptions],
        })


@routes.put("/api/scheduling/resources/{resource_id}/availability")
async def put_availability(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[SESSIONS]() as db:  # who may, before saying what is wrong with the body
        await resource_for(request, db, user, "scheduling.availability.write", ADMINS)
    body = await parse_availability(request)
    async with request.app[SESSIONS].begin() as db:
        resource = await resource_for(request, db, user, "scheduling.availability.write", ADMINS)
        for table in (AvailabilityRule, AvailabilityException):
            for row in (await db.execute(select(table).where(table.resource_id == resource.id))).scalars():
                await db.delete(row)
        db.add_all(AvailabilityRule(resource_id=resource.id, weekday=r.weekday, start_time=r.start, end_time=r.end,
                                    valid_from=r.valid_from, valid_until=r.valid_until) for r in body.rules)
        db.add_all(AvailabilityException(resource_id=resource.id, kind=e.kind, starts_at=utc(e.starts_at),
                                         ends_at=utc(e.ends_at), reason=e.reason) for e in body.exceptions)
        db.add(audit_row(audit_context(request), "scheduling.availability.write", Outcome.SUCCESS,
                         target_type="resource", target_id=resource.id, tenant_id=resource.tenant_id))
    return web.json_response({"rules": len(body.rules), "exceptions": len(body.exceptions)})


async def parse_availability(request: web.Request) -> AvailabilityIn:
    """The body of PUT …/availability, or a 400 naming every bad rule and exception (FieldErrors),
    including weekly ranges that overlap one another, which no single rule can see."""
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    errors: list[dict[str, object]] = []
    try:
        body: AvailabilityIn | None = AvailabilityIn.model_validate(data)
    except ValidationError as exc:
        body = None
        errors = errors_of(exc)
    raw_rules = data.get("rules") if isinstance(data, dict) else None
    valid_rules: list[tuple[int, RuleIn]] = []
    if body is not None:
        valid_rules = list(enumerate(body.rules))
    elif isinstance(raw_rules, list) and len(raw_rules) <= 100:
        # The rules that are fine on their own may still overlap each other: say so in the same answer.
        for index, raw in enumerate(raw_rules):
            try:
                valid_rules.append((index, RuleIn.model_validate(raw)))
            except ValidationError:
                continue
    errors += [field_error(("rules", index, "start"), "overlaps other hours of this day", "overlap")
               for index in overlapping_rules(valid_rules)]
    if errors:
        raise FieldErrors(sorted(errors, key=_error_order))
    assert body is not None
    return body


def _error_order(error: dict[str, object]) -> tuple[int, int, str]:
    sections = {"rules": 0, "exceptions": 1}
    index = error.get("index")
    return sections.get(str(error.get("section")), -1), index if isinstance(index, int) else -1, str(error["field"])


@routes.get("/api/scheduling/resources/{resource_id}/slots")
async def list_slots(request: web.Request) -> web.Response:
    user = require_user(request)
    start, end = parse_range(request)
    async with request.app[SESSIONS]() as db:
        resource = await resource_for(request, db, user, "scheduling.slots.read")
        if resource.active:
            slots = queries.count_overlaps(await service.slots_between(db, resource, start, end),
                                           await queries.active_periods(db, resource.id, start, end))
        else:
            slots = []  # a resource switched off offers nothing (its bookings stay)
    return web.json_response({"resource_id": resource.id, "timezone": resource.timezone, "slots": [
        {"start": s.start.isoformat(), "end": s.end.isoformat(), "free": s.free, "capacity": s.capacity}
        for s in slots]})


def _may_act_for(user: CurrentUser, tenant_id: str, subject_user_id: str | None) -> bool:
    roles = roles_in(user, tenant_id)
    return bool(roles & STAFF) or (bool(roles) and subject_user_id == user.id)


@routes.post("/api/scheduling/resources/{resource_id}/bookings")
async def create_booking(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await parse_body(request, BookingIn)
    fast = fast_booking.for_engine(request.app[ENGINE])
    if fast is not None:
        new, cached = await _book_fast(request, fast, user, body)
        confirm_new_later(request.app, new, cached)
        return web.json_response(new_booking_json(new), status=201)
    booking, resource = await _book_orm(request, user, body)
    confirm_later(request.app, booking, resource)
    return web.json_response(booking_json(booking), status=201)


def new_booking_json(booking: service.NewBooking) -> dict[str, object]:
    """booking_json of a booking the fast path just made (test_booking_calendar_cache.py compares them)."""
    return {
        "id": booking.id, "resource_id": booking.resource_id, "start": booking.starts_at.isoformat(),
        "end": booking.ends_at.isoformat(), "status": BookingStatus.BOOKED.value, "seat": booking.seat,
        "subject_user_id": booking.subject_user_id, "note": booking.note, "created_by": booking.created_by,
        "cancelled_by": None, "cancel_reason": "", "rescheduled_from_id": None,
    }


async def _book_fast(request: web.Request, fast: fast_booking.FastBooking, user: CurrentUser, body: BookingIn
                     ) -> tuple[service.NewBooking, fast_booking.CachedResource]:
    """PostgreSQL: one statement per booking against the cached calendar (server/scheduling/fast_booking.py).
    Every decision taken on cached data that ends in a refusal is taken again on fresh data first."""
    resource_id = request.match_info["resource_id"]
    subject = body.subject_user_id or user.id
    context = audit_context(request)
    cached = await fast.resource(resource_id)
    refreshed = False
    for _ in range(5):  # a reload per change made meanwhile; five in one request means a storm of edits
        if cached is None or not _may_act_for(user, cached.tenant_id, subject):
            if cached is not None and not refreshed:
                cached, refreshed = await fast.resource(resource_id, fresh=True), True
                continue
            raise await deny(request, "scheduling.booking.create", "resource", resource_id)
        try:
            booking = await service.book_cached(fast, cached, utc(body.start), subject_user_id=subject,
                                                actor_id=user.id, note=body.note, context=context)
        except service.StaleCalendar:
            cached, refreshed = await fast.resource(resource_id, fresh=True), True
            continue
        except service.SlotUnavailable as exc:
            if not refreshed:
                cached, refreshed = await fast.resource(resource_id, fresh=True), True
                continue
            raise ApiError(exc.status, exc.code, str(exc)) from None
        except service.SlotTaken as exc:
            await fast.audit(context, "scheduling.booking.create", Outcome.FAILURE, target_type="booking",
                             target_id=cached.id, tenant_id=cached.tenant_id)
            raise ApiError(exc.status, exc.code, str(exc)) from None
        except service.SchedulingError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        return booking, cached
    raise ApiError(503, "calendar_changing", "this calendar is being changed; please try again")


async def _book_orm(request: web.Request, user: CurrentUser, body: BookingIn) -> tuple[Booking, Resource]:
    """SQLite (and the reference for the fast path): the ORM, two transactions."""
    context = audit_context(request)
    async with request.app[SESSIONS]() as db:
        resource = await resource_for(request, db, user, "scheduling.booking.create")
        subject = body.subject_user_id or user.id
        if not _may_act_for(user, resource.tenant_id, subject):
            raise await deny(request, "scheduling.booking.create", "resource", resource.id)
        if subject != user.id and not await db.scalar(select(RoleAssignment.id).where(
                RoleAssignment.user_id == subject, RoleAssignment.tenant_id == resource.tenant_id)):
            raise ApiError(400, "invalid_body", "subject_user_id: not a member of this tenant")
        try:
            slot = await service.check_slot(db, resource, utc(body.start))
        except service.SchedulingError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
    # A fresh transaction whose first statement is the seat INSERT: on SQLite it takes the write lock
    # without a stale read snapshot (which would fail instead of waiting).
    async with request.app[SESSIONS].begin() as db:
        try:
            booking = await service.claim_seat(db, resource, slot, subject_user_id=subject, actor_id=user.id,
                                               note=body.note)
        except service.SchedulingError as exc:
            outcome = Outcome.FAILURE
            booking = None
            error = exc
        else:
            outcome = Outcome.SUCCESS
        db.add(audit_row(context, "scheduling.booking.create", outcome, target_type="booking",
                         target_id=booking.id if booking else resource.id, tenant_id=resource.tenant_id))
    if booking is None:
        raise ApiError(error.status, error.code, str(error))
    return booking, resource


def confirm_later(app: web.Application, booking: Booking, resource: Resource) -> None:
    """Send the confirmation (with its .ics) after the response: a slow mail server must not hold
    up the booking, and a failure is logged, not turned into a failed booking."""

    async def send() -> None:
        async with app[SESSIONS]() as db:
            subject = await db.get(User, booking.subject_user_id) if booking.subject_user_id else None
        if subject is not None:
            await _send_confirmation(app, booking, resource, subject)

    _background(app, send(), f"confirm-{booking.id}")


def confirm_new_later(app: web.Application, new: service.NewBooking, cached: fast_booking.CachedResource) -> None:
    """confirm_later for the fast path: no ORM objects and no query (the statement returned the contact)."""
    contact = new.contact
    if contact is None:
        return

    async def send() -> None:
        notifiers: list[Notifier] = app[NOTIFIERS]
        await send_confirmation(notifiers, app[TRANSLATOR], contact.locale or app[SETTINGS].default_locale,
                                new, cached, contact)

    _background(app, send(), f"confirm-{new.id}")


async def _send_confirmation(app: web.Application, booking: Booking, resource: Resource, subject: User) -> None:
    notifiers: list[Notifier] = app[NOTIFIERS]
    await send_confirmation(notifiers, app[TRANSLATOR], subject.locale or app[SETTINGS].default_locale,
                            booking, resource, subject)


def _background(app: web.Application, work: Coroutine[None, None, None], name: str) -> None:
    task = asyncio.create_task(work, name=name)
    background: set[asyncio.Task[None]] = app[BACKGROUND]
    background.add(task)
    task.add_done_callback(background.discard)


async def booking_for(request: web.Request, db: AsyncSession, user: CurrentUser, action: str) -> Booking:
    booking_id = request.match_info["booking_id"]
    booking = await db.get(Booking, booking_id)
    if booking is None or not _may_act_for(user, booking.tenant_id, booking.subject_user_id):
        raise await deny(request, action, "booking", booking_id)
    return booking


@routes.get("/api/scheduling/bookings/{booking_id}")
async def get_booking(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[SESSIONS]() as db:
        booking = await booking_for(request, db, user, "scheduling.booking.read")
        resource = await db.get(Resource, booking.resource_id)
        assert resource is not None
        names = await queries.names_of(db, [booking.subject_user_id, booking.created_by])
    await audit(request.app[SESSIONS], audit_context(request), "scheduling.booking.read", Outcome.SUCCESS,
                target_type="booking", target_id=booking.id, tenant_id=booking.tenant_id)
    return web.json_response(named_booking_json(booking, resource, names))


@routes.post("/api/scheduling/bookings/{booking_id}/cancel")
async def cancel_booking(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await parse_body(request, CancelIn)
    async with request.app[SESSIONS].begin() as db:
        booking = await booking_for(request, db, user, "scheduling.booking.cancel")
        try:
            await service.cancel(db, booking, actor_id=user.id, reason=body.reason)
        except service.SchedulingError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        db.add(audit_row(audit_context(request), "scheduling.booking.cancel", Outcome.SUCCESS,
                         target_type="booking", target_id=booking.id, tenant_id=booking.tenant_id))
    return web.json_response(booking_json(booking))


@routes.post("/api/scheduling/bookings/{booking_id}/reschedule")
async def reschedule_booking(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await parse_body(request, RescheduleIn)
    async with request.app[SESSIONS].begin() as db:
        booking = await booking_for(request, db, user, "scheduling.booking.reschedule")
        resource = await db.get(Resource, booking.resource_id)
        assert resource is not None
        try:
            moved = await service.reschedule(db, booking, resource, utc(body.start), actor_id=user.id)
        except service.SchedulingError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        db.add(audit_row(audit_context(request), "scheduling.booking.reschedule", Outcome.SUCCESS,
                         target_type="booking", target_id=moved.id, tenant_id=booking.tenant_id))
    return web.json_response(booking_json(moved), status=201)


@routes.get("/api/scheduling/resources/{resource_id}/bookings")
async def list_bookings(request: web.Request) -> web.Response:
    """The calendar: staff see every booking of the resource; patients and students their own."""
    user = require_user(request)
    start, end = parse_range(request)
    async with request.app[SESSIONS]() as db:
        resource = await resource_for(request, db, user, "scheduling.booking.list")
        query = select(Booking).where(Booking.resource_id == resource.id, Booking.starts_at >= start,
                                      Booking.starts_at < end).order_by(Booking.starts_at, Booking.seat)
        if not roles_in(user, resource.tenant_id) & STAFF:
            query = query.where(Booking.subject_user_id == user.id)
        if request.query.get("status") in {s.value for s in BookingStatus}:
            query = query.where(Booking.status == BookingStatus(request.query["status"]))
        bookings = (await db.execute(query)).scalars().all()
        # Only the bookings listed: a patient's list holds their own, so only their own name (and
        # the staff who booked for them).
        names = await queries.names_of(db, [i for b in bookings for i in (b.subject_user_id, b.created_by)])
    await audit(request.app[SESSIONS], audit_context(request), "scheduling.booking.list", Outcome.SUCCESS,
                target_type="resource", target_id=resource.id, tenant_id=resource.tenant_id)
    return web.json_response({"bookings": [named_booking_json(b, resource, names) for b in bookings]})


@routes.get("/api/scheduling/my/bookings")
async def my_bookings(request: web.Request) -> web.Response:
    """The user's bookings across every resource (and those they made for others where they are
    staff), from ``from`` (default now) to ``to`` (default 62 days later); ``status`` filters."""
    user = require_user(request)
    start, end = parse_range(request, default_days=62)
    status = request.query.get("status")
    if status is not None and status not in {s.value for s in BookingStatus}:
        raise ApiError(400, "invalid_status", "status is booked or cancelled")
    staff_tenants = {r.tenant_id for r in user.roles if r.role in STAFF}
    async with request.app[SESSIONS]() as db:
        rows = await queries.bookings_of_user(db, user.id, staff_tenants, start, end,
                                              BookingStatus(status) if status else None)
        names = await queries.names_of(db, [i for b, _ in rows for i in (b.subject_user_id, b.created_by)])
    await audit(request.app[SESSIONS], audit_context(request), "scheduling.booking.list", Outcome.SUCCESS,
                target_type="user", target_id=user.id)
    return web.json_response({"bookings": [named_booking_json(b, r, names) for b, r in rows]})
