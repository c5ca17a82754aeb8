"""Recurring sessions: create a series, list its occurrences, cancel or move one, export as .ics."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from icalendar import Event
from pydantic import AwareDatetime, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.sessions import CurrentUser
from server.db.base import utcnow
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit_row
from server.requestctx import audit_context
from server.scheduling.ical import calendar
from server.scheduling.models import OccurrenceChange, Series
from server.scheduling.recurrence import Change, InvalidRule, Occurrence, expand, parse_rule
from server.scheduling.routes import STAFF, deny, parse_range, require_user, resource_for, roles_in
from server.scheduling.schemas import _Body, utc
from server.validation import parse_body

routes = web.RouteTableDef()


class SeriesIn(_Body):
    title: str = Field(min_length=1, max_length=200)
    rrule: str = Field(min_length=5, max_length=500, description="RFC 5545 RRULE with COUNT or UNTIL")
    first_start: datetime = Field(description="local wall-clock time of the first session, no offset")
    duration_minutes: int = Field(ge=5, le=600)

    @field_validator("first_start")
    @classmethod
    def _naive(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("give the local time without an offset; the resource's zone applies")
        return value


class CancelOccurrenceIn(_Body):
    original_start: AwareDatetime
    note: str = Field(default="", max_length=200)


class MoveOccurrenceIn(_Body):
    original_start: AwareDatetime
    new_start: AwareDatetime
    note: str = Field(default="", max_length=200)


async def changes_of(db: AsyncSession, series_id: str) -> list[Change]:
    rows = (await db.execute(select(OccurrenceChange).where(OccurrenceChange.series_id == series_id))).scalars()
    return [Change(r.original_start, r.cancelled, r.new_start, r.new_end) for r in rows]


def occurrence_json(series: Series, occurrence: Occurrence) -> dict[str, object]:
    return {"series_id": series.id, "title": series.title, "original_start": occurrence.original_start.isoformat(),
            "start": occurrence.start.isoformat(), "end": occurrence.end.isoformat(),
            "cancelled": occurrence.cancelled, "moved": occurrence.moved}


@routes.post("/api/scheduling/resources/{resource_id}/series")
async def create_series(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await parse_body(request, SeriesIn)
    async with request.app[SESSIONS].begin() as db:
        resource = await resource_for(request, db, user, "scheduling.series.create", STAFF)
        try:
            parse_rule(body.rrule, body.first_start)
        except InvalidRule as exc:
            raise ApiError(400, "invalid_rrule", str(exc)) from None
        series = Series(resource_id=resource.id, tenant_id=resource.tenant_id, title=body.title,
                        rrule=body.rrule.removeprefix("RRULE:"), first_start_local=body.first_start,
                        timezone=resource.timezone, duration_minutes=body.duration_minutes, created_by=user.id)
        db.add(series)
        await db.flush()
        db.add(audit_row(audit_context(request), "scheduling.series.create", Outcome.SUCCESS,
                         target_type="series", target_id=series.id, tenant_id=resource.tenant_id))
    return web.json_response({"id": series.id, "title": series.title, "rrule": series.rrule}, status=201)


@routes.get("/api/scheduling/resources/{resource_id}/occurrences")
async def list_occurrences(request: web.Request) -> web.Response:
    user = require_user(request)
    start, end = parse_range(request)
    async with request.app[SESSIONS]() as db:
        resource = await resource_for(request, db, user, "scheduling.occurrences.read")
        all_series = (await db.execute(select(Series).where(Series.resource_id == resource.id))).scalars().all()
        result = []
        for series in all_series:
            occurrences = expand(series.rrule, series.first_start_local, series.timezone,
                                 timedelta(minutes=series.duration_minutes), start, end,
                                 await changes_of(db, series.id))
            result += [occurrence_json(series, o) for o in occurrences]
    return web.json_response({"occurrences": sorted(result, key=lambda o: str(o["start"]))})


async def series_for(request: web.Request, db: AsyncSession, user: CurrentUser, action: str,
                     staff_only: bool) -> Series:
    series_id = request.match_info["series_id"]
    series = await db.get(Series, series_id)
    roles = roles_in(user, series.tenant_id) if series else set()
    if series is None or not roles or (staff_only and not roles & STAFF):
        raise await deny(request, action, "series", series_id)
    return series


async def _is_occurrence(db: AsyncSession, series: Series, original: datetime) -> bool:
    found = expand(series.rrule, series.first_start_local, series.timezone,
                   timedelta(minutes=series.duration_minutes), original, original + timedelta(seconds=1))
    return any(o.original_start == original for o in found)


async def _change(request: web.Request, *, cancel: bool) -> web.Response:
    user = require_user(request)
    body: CancelOccurrenceIn | MoveOccurrenceIn = await parse_body(
        request, CancelOccurrenceIn if cancel else MoveOccurrenceIn)
    action = "scheduling.occurrence.cancel" if cancel else "scheduling.occurrence.move"
    async with request.app[SESSIONS].begin() as db:
        series = await series_for(request, db, user, action, staff_only=True)
        original = utc(body.original_start)
        if not await _is_occurrence(db, series, original):
            raise ApiError(422, "not_an_occurrence", "the series has no session at original_start")
        change = await db.scalar(select(OccurrenceChange).where(OccurrenceChange.series_id == series.id,
                                                                OccurrenceChange.original_start == original))
        if change is None:
            change = OccurrenceChange(series_id=series.id, original_start=original)
            db.add(change)
        change.note = body.note
        if isinstance(body, MoveOccurrenceIn):
            change.cancelled = False
            change.new_start = utc(body.new_start)
            change.new_end = change.new_start + timedelta(minutes=series.duration_minutes)
        else:
            change.cancelled = True
        db.add(audit_row(audit_context(request), action, Outcome.SUCCESS, target_type="series",
                         target_id=series.id, tenant_id=series.tenant_id))
    return web.json_response({"series_id": series.id, "original_start": original.isoformat(),
                              "cancelled": change.cancelled,
                              "new_start": change.new_start.isoformat() if change.new_start else None})


@routes.post("/api/scheduling/series/{series_id}/cancel-occurrence")
async def cancel_occurrence(request: web.Request) -> web.Response:
    return await _change(request, cancel=True)


@routes.post("/api/scheduling/series/{series_id}/move-occurrence")
async def move_occurrence(request: web.Request) -> web.Response:
    return await _change(request, cancel=False)


@routes.get("/api/scheduling/series/{series_id}.ics")
async def series_ics(request: web.Request) -> web.Response:
    """The series as calendar apps expect it: one VEVENT with RRULE and EXDATE, plus one VEVENT with
    RECURRENCE-ID per moved session."""
    user = require_user(request)
    async with request.app[SESSIONS]() as db:
        series = await series_for(request, db, user, "scheduling.series.export", staff_only=False)
        changes = await changes_of(db, series.id)
    zone = ZoneInfo(series.timezone)
    duration = timedelta(minutes=series.duration_minutes)
    uid = f"series-{series.id}@caunoi"
    master = Event()
    master.add("uid", uid)
    master.add("dtstamp", utcnow())
    master.add("summary", series.title)
    master.add("dtstart", series.first_start_local.replace(tzinfo=zone))
    master.add("dtend", series.first_start_local.replace(tzinfo=zone) + duration)
    master.add("rrule", _rrule_dict(series.rrule))
    for change in changes:
        if change.cancelled:
            master.add("exdate", change.original_start)
    events = [master]
    for change in changes:
        if change.new_start is not None:
            moved = Event()
            moved.add("uid", uid)
            moved.add("dtstamp", utcnow())
            moved.add("summary", series.title)
            moved.add("recurrence-id", change.original_start)
            moved.add("dtstart", change.new_start)
            moved.add("dtend", change.new_end or change.new_start + duration)
            events.append(moved)
    return web.Response(body=calendar(series.title, events), content_type="text/calendar", charset="utf-8")


def _rrule_dict(rule: str) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {}
    for item in rule.split(";"):
        key, _, value = item.partition("=")
        if key and value:
            parts[key.upper()] = value.split(",")
    return parts
