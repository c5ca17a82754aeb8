"""Expanding recurring series (RFC 5545 RRULE, with python-dateutil) into UTC occurrences.

Occurrences are generated in the series' local wall-clock time and converted one by one, so that
"every Monday 07:30" stays 07:30 local on both sides of a DST change; a local time that does not
exist that day (spring forward) is skipped rather than shifted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

MAX_OCCURRENCES = 2000  # a term of daily sessions is ~100; this bounds a hostile rule


class InvalidRule(ValueError):
    """The RRULE text cannot be parsed, or would expand without end."""


@dataclass(frozen=True, slots=True)
class Occurrence:
    original_start: datetime  # UTC: the occurrence's identity (RECURRENCE-ID)
    start: datetime  # UTC, after a move
    end: datetime
    cancelled: bool = False
    moved: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    original_start: datetime
    cancelled: bool
    new_start: datetime | None = None
    new_end: datetime | None = None


def parse_rule(rule: str, first_start_local: datetime) -> None:
    """Validate an RRULE (without the ``RRULE:`` prefix); it must end (COUNT or UNTIL)."""
    text = rule.removeprefix("RRULE:").strip()
    if "COUNT=" not in text.upper() and "UNTIL=" not in text.upper():
        raise InvalidRule("a recurring series needs COUNT or UNTIL")
    try:
        rrulestr(text, dtstart=first_start_local)
    except (ValueError, TypeError) as exc:
        raise InvalidRule(f"invalid RRULE: {exc}") from None


def expand(
    rule: str,
    first_start_local: datetime,
    zone_name: str,
    duration: timedelta,
    start: datetime,
    end: datetime,
    changes: Sequence[Change] = (),
) -> list[Occurrence]:
    """Occurrences overlapping [start, end) (UTC), with cancellations and moves applied."""
    zone = ZoneInfo(zone_name)
    rules = rrulestr(rule.removeprefix("RRULE:").strip(), dtstart=first_start_local)
    by_original = {c.original_start: c for c in changes}
    # Occurrences come in order, so stop after ``end``, unless a later one was moved into the range.
    limit = max([end, *(c.original_start for c in changes if c.new_start is not None and c.new_start < end)])
    result: list[Occurrence] = []
    for count, local in enumerate(rules):
        if count >= MAX_OCCURRENCES:
            break
        aware = local.replace(tzinfo=zone)
        instant = aware.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != local:
            continue  # this local time does not exist that day
        change = by_original.get(instant)
        if change is not None and change.cancelled:
            occurrence = Occurrence(instant, instant, instant + duration, cancelled=True)
        elif change is not None and change.new_start is not None:
            new_end = change.new_end or change.new_start + duration
            occurrence = Occurrence(instant, change.new_start, new_end, moved=True)
        else:
            occurrence = Occurrence(instant, instant, instant + duration)
        if occurrence.start < end and start < occurrence.end:
            result.append(occurrence)
        if instant > limit:
            break
    return sorted(result, key=lambda o: o.start)
