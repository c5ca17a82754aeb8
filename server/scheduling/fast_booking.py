"""Booking on PostgreSQL in one statement, with each resource's calendar cached in the process.

The general path (service.check_slot + service.claim_seat through the ORM) costs five statements,
two transactions and ~5 ms of the event loop per booking. Here a booking is one round trip on a
plain asyncpg connection, in autocommit: one statement that checks the cached calendar is still
current, checks the subject belongs to the tenant, picks a seat, inserts the booking with
``ON CONFLICT DO NOTHING`` against the partial unique index (the database guarantee against double
booking is the same as on the general path) and inserts the audit row. A statement is atomic, so the
booking and its audit row are committed together or not at all. The insert's ``ON CONFLICT DO NOTHING``
names no target, so it also yields to the exclusion constraint (migration 0014): a seat held by an
overlapping booking that starts at another time (an old one off a new grid, or one being inserted
concurrently) is not taken twice either.

The calendar cache needs no invalidation hook: it is keyed by a fingerprint that PostgreSQL
computes from the resource's row, its weekly rules and its exceptions, and the booking statement
recomputes that fingerprint and inserts nothing when it differs. Whoever changes a resource or its
availability (any handler, any worker process, any node, psql), the next booking notices, reloads
and checks the slot again.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from server.db.base import new_id, utcnow
from server.records.audit import AuditContext, Outcome
from server.scheduling.models import ExceptionKind
from server.scheduling.slots import Period, Policy, Window

# Everything slot checking, authorization and the confirmation read from a resource, as text.
# NULLs are spelled out so that (valid_from, valid_until) = (x, NULL) and (NULL, x) differ.
FINGERPRINT = """md5(concat_ws('|', r.tenant_id, r.name, r.timezone, r.slot_minutes, r.buffer_minutes,
    r.min_notice_minutes, r.horizon_days, r.capacity, r.active,
    coalesce((SELECT string_agg(concat_ws(',', a.weekday, a.start_time, a.end_time,
                                          coalesce(a.valid_from::text, '-'), coalesce(a.valid_until::text, '-')),
                                ';' ORDER BY a.id)
              FROM availability_rules a WHERE a.resource_id = r.id), ''),
    coalesce((SELECT string_agg(concat_ws(',', e.kind, extract(epoch FROM e.starts_at), extract(epoch FROM e.ends_at)),
                                ';' ORDER BY e.id)
              FROM availability_exceptions e WHERE e.resource_id = r.id), '')))"""

# Both statements are constants: FINGERPRINT is spliced in, every value is a $n parameter.
LOAD = f"""SELECT r.tenant_id, r.name, r.active, r.timezone, r.slot_minutes, r.buffer_minutes, r.min_notice_minutes,
    r.horizon_days, r.capacity, {FINGERPRINT} AS fingerprint,
    ARRAY(SELECT ROW(a.weekday, a.start_time, a.end_time, a.valid_from, a.valid_until)
          FROM availability_rules a WHERE a.resource_id = r.id) AS rules,
    ARRAY(SELECT ROW(e.kind, e.starts_at, e.ends_at)
          FROM availability_exceptions e WHERE e.resource_id = r.id) AS exceptions
FROM bookable_resources r WHERE r.id = $1"""  # noqa: S608

# $1 resource, $2 fingerprint, $3 subject, $4 actor, $5 tenant, $6 capacity, $7 start, $8 booking id,
# $9 end, $10 note, $11 now, $12 audit id, $13 actor role, $14 ip, $15 user agent, $16 request id.
# It also returns the subject's contact details, which the confirmation needs (no second query).
BOOK = f"""WITH guard AS (
    SELECT (SELECT {FINGERPRINT} FROM bookable_resources r WHERE r.id = $1) IS NOT DISTINCT FROM $2::text AS fresh,
           ($3::text = $4::text OR EXISTS (SELECT 1 FROM role_assignments m
                                           WHERE m.user_id = $3 AND m.tenant_id = $5)) AS member
), seat AS (
    -- A seat no active booking holds at any time overlapping [$7, $9) -- those starting at $7 and,
    -- after a change of slot length or hours, older ones starting elsewhere -- while fewer than
    -- capacity overlap it (as the slot list counts them). Both through the exclusion constraint's index.
    SELECT s FROM guard, generate_series(0, $6::int - 1) AS s
    WHERE guard.fresh AND guard.member
      AND (SELECT count(*) FROM bookings b WHERE b.resource_id = $1 AND b.status = 'booked'
           AND tstzrange(b.starts_at, b.ends_at) && tstzrange($7, $9)) < $6
      AND NOT EXISTS (
        SELECT 1 FROM bookings b WHERE b.resource_id = $1 AND b.seat = s AND b.status = 'booked'
        AND tstzrange(b.starts_at, b.ends_at) && tstzrange($7, $9))
    ORDER BY s LIMIT 1
), booked AS (
    INSERT INTO bookings (id, resource_id, tenant_id, starts_at, ends_at, seat, status, subject_user_id, note,
                          created_by, created_at, cancel_reason, rescheduled_from_id)
    SELECT $8, $1, $5, $7, $9, s, 'booked', $3, $10, $4, $11, '', NULL FROM seat
    ON CONFLICT DO NOTHING
    RETURNING id, seat
), audited AS (
    INSERT INTO audit_events (id, at, actor_id, actor_role, action, target_type, target_id, tenant_id, outcome,
                              ip, user_agent, request_id)
    SELECT $12, $11, $4, $13, 'scheduling.booking.create', 'booking', booked.id, $5, 'success', $14, $15, $16
    FROM booked
)
SELECT guard.fresh, guard.member, (SELECT s FROM seat) AS free_seat, (SELECT seat FROM booked) AS seat,
       CASE WHEN (SELECT seat FROM booked) IS NULL THEN EXISTS (
           SELECT 1 FROM bookings b WHERE b.resource_id = $1 AND b.status = 'booked' AND b.starts_at <> $7
           AND tstzrange(b.starts_at, b.ends_at) && tstzrange($7, $9)) ELSE false END AS overlapped,
       u.email, u.phone, u.locale
FROM guard LEFT JOIN users u ON u.id = $3"""  # noqa: S608


AUDIT = """INSERT INTO audit_events (id, at, actor_id, actor_role, action, target_type, target_id, tenant_id,
                          outcome, ip, user_agent, request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"""


@dataclass(frozen=True, slots=True)
class CachedResource:
    """One resource as the booking path needs it, and the fingerprint it was read at."""

    id: str
    tenant_id: str
    name: str
    active: bool  # switched off: no new bookings
    policy: Policy
    windows: tuple[Window, ...]
    closed: tuple[Period, ...]
    opened: tuple[Period, ...]
    fingerprint: str

    @property
    def capacity(self) -> int:
        return self.policy.capacity

    @property
    def timezone(self) -> str:
        return self.policy.timezone


@dataclass(frozen=True, slots=True)
class Contact:
    """Where the subject's confirmation goes."""

    email: str
    phone: str | None
    locale: str | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the booking statement did: booked ``seat``, or why not."""

    fresh: bool  # False: the cached calendar is out of date (or the resource is gone)
    member: bool  # False: the subject does not belong to the resource's tenant
    free_seat: int | None  # the seat it tried; None: every seat was taken
    seat: int | None  # the seat booked; None: nothing inserted
    overlapped: bool  # not booked, and an active booking starting at another time overlaps the slot
    contact: Contact | None  # the subject's, None if there is no such user


class FastBooking:
    """The asyncpg pool and the calendar cache of one database engine (one per process)."""

    def __init__(self, dsn: str, max_connections: int = 10, max_cached: int = 10_000) -> None:
        self.dsn = dsn
        self.max_connections = max_connections
        self.max_cached = max_cached
        self.calendars: dict[str, CachedResource] = {}
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    # reset=_keep: the statements here leave no session state behind (no SET, LISTEN,
                    # advisory lock or open transaction; asyncpg still rolls back one left open), so
                    # the default reset query would be a wasted round trip per booking.
                    self._pool = await asyncpg.create_pool(self.dsn, min_size=0, max_size=self.max_connections,
                                                           reset=_keep)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def resource(self, resource_id: str, *, fresh: bool = False) -> CachedResource | None:
        """The resource (from the cache unless ``fresh``), or None if there is no such resource."""
        if not fresh and (cached := self.calendars.get(resource_id)) is not None:
            return cached
        pool = await self.pool()
        async with pool.acquire() as connection:
            row = await connection.fetchrow(LOAD, resource_id)
        if row is None:
            self.calendars.pop(resource_id, None)
            return None
        loaded = CachedResource(
            id=resource_id, tenant_id=row["tenant_id"], name=row["name"], active=row["active"],
            policy=Policy(timezone=row["timezone"], slot_minutes=row["slot_minutes"],
                          buffer_minutes=row["buffer_minutes"], min_notice_minutes=row["min_notice_minutes"],
                          horizon_days=row["horizon_days"], capacity=row["capacity"]),
            windows=tuple(Window(*rule) for rule in row["rules"]),
            closed=tuple(Period(s, e) for kind, s, e in row["exceptions"] if kind == ExceptionKind.CLOSED),
            opened=tuple(Period(s, e) for kind, s, e in row["exceptions"] if kind == ExceptionKind.OPEN),
            fingerprint=row["fingerprint"],
        )
        if len(self.calendars) >= self.max_cached:
            self.calendars.clear()  # crude but bounded; a reload is one query
        self.calendars[resource_id] = loaded
        return loaded

    async def attempt(self, resource: CachedResource, start: datetime, end: datetime, *, subject_user_id: str,
                      actor_id: str, note: str, now: datetime, context: AuditContext) -> tuple[str, Attempt]:
        """One try of the booking statement; returns (booking id, what happened)."""
        booking_id = new_id()
        pool = await self.pool()
        async with pool.acquire() as connection:
            row = await connection.fetchrow(
                BOOK, resource.id, resource.fingerprint, subject_user_id, actor_id, resource.tenant_id,
                resource.capacity, start, booking_id, end, note, now, new_id(), context.actor_role, context.ip,
                (context.user_agent or "")[:300] or None, context.request_id)
        assert row is not None  # the guard CTE always yields one row
        contact = None if row["email"] is None else Contact(row["email"], row["phone"], row["locale"])
        return booking_id, Attempt(row["fresh"], row["member"], row["free_seat"], row["seat"], row["overlapped"],
                                    contact)

    async def audit(self, context: AuditContext, action: str, outcome: Outcome, *, target_type: str,
                    target_id: str, tenant_id: str) -> None:
        """One audit row, like records.audit.audit (its own commit) without an ORM session."""
        pool = await self.pool()
        async with pool.acquire() as connection:
            await connection.execute(AUDIT, new_id(), utcnow(), context.actor_id, context.actor_role, action,
                                     target_type, target_id[:64], tenant_id, outcome.value, context.ip,
                                     (context.user_agent or "")[:300] or None, context.request_id)


async def _keep(_connection: asyncpg.Connection) -> None:
    return None


_instances: weakref.WeakKeyDictionary[AsyncEngine, FastBooking] = weakref.WeakKeyDictionary()


def for_engine(engine: AsyncEngine) -> FastBooking | None:
    """The fast path of this engine's database: PostgreSQL only (None for SQLite).

    Its pool is closed when the engine is disposed (the application's database cleanup does that).
    """
    if engine.dialect.name != "postgresql":
        return None
    found = _instances.get(engine)
    if found is None:
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        found = _instances[engine] = FastBooking(dsn)
        instance = found

        def close(_engine: object) -> None:
            # Called inside AsyncEngine.dispose()'s greenlet, where await_only can await.
            await_only(instance.close())

        event.listen(engine.sync_engine, "engine_disposed", close)
    return found
