"""Free slots from weekly rules, exceptions and bookings. Pure: no I/O, so it is tested directly.

Rules are local wall-clock times of the resource's zone; slots are returned in UTC. DST-safe: a
local time that does not exist (spring forward) yields no slot, and a repeated local hour (fall back)
is taken once, at its first occurrence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly rule: weekday (Monday 0) from start to end, local time, optionally within dates."""

    weekday: int
    start: time
    end: time
    valid_from: date | None = None
    valid_until: date | None = None

    def applies(self, day: date) -> bool:
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or day >= self.valid_from)
            and (self.valid_until is None or day <= self.valid_until)
        )


@dataclass(frozen=True, slots=True)
class Period:
    """An absolute period in UTC (an exception, or a booking)."""

    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True, slots=True)
class Policy:
    timezone: str
    slot_minutes: int
    buffer_minutes: int = 0
    min_notice_minutes: int = 0
    horizon_days: int = 30
    capacity: int = 1


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # UTC
    end: datetime
    capacity: int
    booked: int

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked)


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a local wall-clock time, or None when that time does not exist that day."""
    local = datetime.combine(day, at, tzinfo=zone)  # fold=0: the first of a repeated hour
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None  # skipped by a DST jump
    return instant


def window_spans(windows: Sequence[Window], first_day: date, last_day: date, zone: ZoneInfo
                 ) -> Iterator[tuple[datetime, datetime]]:
    """The UTC (start, end) of each rule on each local day from first_day to last_day, inclusive.

    An end of 00:00 means midnight at the end of the day.
    """
    day = first_day
    while day <= last_day:
        for window in windows:
            if not window.applies(day):
                continue
            start = local_to_utc(day, window.start, zone)
            end = local_to_utc(day, window.end, zone) if window.end != time(0) else \
                local_to_utc(day + timedelta(days=1), time(0), zone)
            if start is not None and end is not None and end > start:
                yield start, end
        day += timedelta(days=1)


def _grid(start: datetime, end: datetime, policy: Policy) -> Iterator[tuple[datetime, datetime]]:
    """Slots of slot_minutes separated by buffer_minutes, on the *UTC* axis from start to end."""
    step = timedelta(minutes=policy.slot_minutes + policy.buffer_minutes)
    length = timedelta(minutes=policy.slot_minutes)
    cursor = start
    while cursor + length <= end:
        yield cursor, cursor + length
        cursor += step


def candidate_slots(
    windows: Sequence[Window], opened: Sequence[Period], first_day: date, last_day: date, policy: Policy
) -> list[tuple[datetime, datetime]]:
    """Every slot the rules and the "open" exceptions produce between two local dates, inclusive."""
    result: set[tuple[datetime, datetime]] = set()
    for start, end in window_spans(windows, first_day, last_day, ZoneInfo(policy.timezone)):
        result.update(_grid(start, end, policy))
    for period in opened:
        result.update(_grid(period.start, period.end, policy))
    return sorted(result)


def free_slots(
    windows: Sequence[Window],
    closed: Sequence[Period],
    opened: Sequence[Period],
    booked_starts: Iterable[datetime],
    policy: Policy,
    *,
    now: datetime,
    start: datetime,
    end: datetime,
    include_full: bool = False,
) -> list[Slot]:
    """Slots between ``start`` and ``end`` (UTC) that respect notice, horizon and closures.

    ``booked_starts`` has one entry per active booking (a slot with capacity 30 may appear 30 times).
    """
    zone = ZoneInfo(policy.timezone)
    earliest = max(start, now + timedelta(minutes=policy.min_notice_minutes))
    latest = min(end, now + timedelta(days=policy.horizon_days))
    if latest <= earliest:
        return []
    counts = Counter(booked_starts)
    first_day = (earliest.astimezone(zone) - timedelta(days=1)).date()
    last_day = latest.astimezone(zone).date()
    slots = []
    for slot_start, slot_end in candidate_slots(windows, opened, first_day, last_day, policy):
        if slot_start < earliest or slot_start > latest:
            continue
        if any(period.overlaps(slot_start, slot_end) for period in closed):
            continue
        slot = Slot(slot_start, slot_end, policy.capacity, counts.get(slot_start, 0))
        if slot.free or include_full:
            slots.append(slot)
    return slots


def slot_at(
    slot_start: datetime,
    windows: Sequence[Window],
    closed: Sequence[Period],
    opened: Sequence[Period],
    policy: Policy,
    *,
    now: datetime,
) -> tuple[datetime, datetime] | None:
    """The slot beginning exactly at ``slot_start`` if the rules produce one, else None.

    The same answer as looking ``slot_start`` up in :func:`free_slots` (with full slots included),
    computed from the windows around that instant only: booking checks one time, not a fortnight.
    """
    if slot_start < now + timedelta(minutes=policy.min_notice_minutes):
        return None
    if slot_start > now + timedelta(days=policy.horizon_days):
        return None
    zone = ZoneInfo(policy.timezone)
    step = timedelta(minutes=policy.slot_minutes + policy.buffer_minutes)
    length = timedelta(minutes=policy.slot_minutes)
    local_day = slot_start.astimezone(zone).date()
    spans = [(p.start, p.end) for p in opened]
    spans += window_spans(windows, local_day - timedelta(days=1), local_day, zone)
    for start, end in spans:
        if start <= slot_start and slot_start + length <= end and (slot_start - start) % step == timedelta(0):
            if any(period.overlaps(slot_start, slot_start + length) for period in closed):
                return None
            return slot_start, slot_start + length
    return None
