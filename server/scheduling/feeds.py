"""iCalendar feeds: a secret, revocable URL per user (their bookings) or per resource (its calendar).

The URL carries the only credential, because calendar apps cannot log in; so the token is long and
random, only its SHA-256 is stored, it can be revoked, every fetch is audited, and the access log
redacts it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from aiohttp import web
from pydantic import Field
from sqlalchemy import or_, select

from server.db.base import utcnow
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import AuditContext, Outcome, audit, audit_row
from server.requestctx import audit_context
from server.scheduling.ical import booking_event, calendar
from server.scheduling.models import Booking, BookingStatus, CalendarFeed, Resource
from server.scheduling.routes import STAFF, require_user, roles_in
from server.scheduling.schemas import _Body
from server.validation import parse_body

routes = web.RouteTableDef()
FEED_PREFIX = "/ical/"
PAST = timedelta(days=30)  # how far back a feed reaches (cancelled and past events included)


class FeedIn(_Body):
    resource_id: str | None = Field(default=None, max_length=36)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@routes.post("/api/scheduling/feeds")
async def create_feed(request: web.Request) -> web.Response:
    """A new feed of the caller's own bookings, or (staff) of a resource of their tenant."""
    user = require_user(request)
    body = await parse_body(request, FeedIn)
    token = secrets.token_urlsafe(32)
    async with request.app[SESSIONS].begin() as db:
        if body.resource_id is not None:
            resource = await db.get(Resource, body.resource_id)
            if resource is None or not roles_in(user, resource.tenant_id) & STAFF:
                # In a transaction of its own: this one rolls back with the error.
                await audit(request.app[SESSIONS], audit_context(request), "scheduling.feed.create",
                            Outcome.DENIED, target_type="resource", target_id=body.resource_id)
                raise ApiError(404, "not_found", "no such resource")
        feed = CalendarFeed(token_hash=digest(token), owner_user_id=user.id, resource_id=body.resource_id)
        db.add(feed)
        await db.flush()
        db.add(audit_row(audit_context(request), "scheduling.feed.create", Outcome.SUCCESS,
                         target_type="calendar_feed", target_id=feed.id))
    url = f"{request.url.origin()}{FEED_PREFIX}{token}.ics"
    # Shown once: only the hash is kept.
    return web.json_response({"id": feed.id, "url": url}, status=201, headers={"Cache-Control": "no-store"})


@routes.delete("/api/scheduling/feeds/{feed_id}")
async def revoke_feed(request: web.Request) -> web.Response:
    user = require_user(request)
    feed_id = request.match_info["feed_id"]
    async with request.app[SESSIONS].begin() as db:
        feed = await db.get(CalendarFeed, feed_id)
        if feed is None or feed.owner_user_id != user.id:
            await audit(request.app[SESSIONS], audit_context(request), "scheduling.feed.revoke", Outcome.DENIED,
                        target_type="calendar_feed", target_id=feed_id[:64])
            raise ApiError(404, "not_found", "no such feed")
        feed.revoked_at = feed.revoked_at or utcnow()
        db.add(audit_row(audit_context(request), "scheduling.feed.revoke", Outcome.SUCCESS,
                         target_type="calendar_feed", target_id=feed.id))
    return web.json_response({"id": feed_id, "revoked": True})


@routes.get(FEED_PREFIX + "{token}.ics")
async def fetch_feed(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    context = audit_context(request)
    async with request.app[SESSIONS]() as db:
        feed = await db.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == digest(token)))
        if feed is None or feed.revoked_at is not None:
            await audit(request.app[SESSIONS], context, "scheduling.feed.read", Outcome.DENIED,
                        target_type="calendar_feed")
            raise web.HTTPNotFound()
        since = utcnow() - PAST
        query = select(Booking, Resource).join(Resource, Resource.id == Booking.resource_id).where(
            Booking.starts_at >= since)
        if feed.resource_id is not None:
            query = query.where(Booking.resource_id == feed.resource_id)
            name = (await db.get(Resource, feed.resource_id)).name  # type: ignore[union-attr]
        else:
            query = query.where(or_(Booking.subject_user_id == feed.owner_user_id,
                                    Booking.created_by == feed.owner_user_id))
            name = "Cầu Nối"
        rows = (await db.execute(query.order_by(Booking.starts_at))).all()
    stamp = utcnow()
    events = [booking_event(b, r, summary=r.name, stamp=stamp) for b, r in rows
              if b.status == BookingStatus.BOOKED or b.cancelled_at is not None]
    await audit(request.app[SESSIONS], AuditContext(actor_id=feed.owner_user_id, ip=context.ip,
                                                    user_agent=context.user_agent, request_id=context.request_id),
                "scheduling.feed.read", Outcome.SUCCESS, target_type="calendar_feed", target_id=feed.id)
    return web.Response(body=calendar(name, events), content_type="text/calendar", charset="utf-8",
                        headers={"Cache-Control": "private, max-age=300"})
