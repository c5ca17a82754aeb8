"""Partial dates and times as search bounds ("2026", "2026-11", "2026-11-26", "2026-11-26T08:30:00+07:00").

Each value names an interval [start, end) in UTC. A value without a time of day is a day (month, year)
in the deployment's time zone, because that is what a user in Vietnam means by "26 November".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$")


class InvalidDate(ValueError):
    """Not a date this server understands; the message quotes the value."""


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime


def parse_interval(value: str, zone: str) -> Interval:
    value = value.strip()
    partial = _PARTIAL.match(value)
    try:
        if partial:
            year, month, day = (int(g) if g else None for g in partial.groups())
            assert year is not None
            tz = ZoneInfo(zone)
            if month is None:
                start, end = datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)
            elif day is None:
                start = datetime(year, month, 1, tzinfo=tz)
                end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
            else:
                start = datetime(year, month, day, tzinfo=tz)
                end = start + timedelta(days=1)
            return Interval(start.astimezone(UTC), end.astimezone(UTC))
        instant_match = _INSTANT.match(value)
        if instant_match:
            seconds, fraction = instant_match.groups()
            if fraction and not seconds:
                raise ValueError(value)
            instant = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
            # A time given to the minute (second) covers that whole minute (second).
            precision = timedelta(microseconds=1) if fraction else timedelta(seconds=1) if seconds \
                else timedelta(minutes=1)
            return Interval(instant, instant + precision)
    except ValueError:
        pass
    raise InvalidDate(f"not a date or time: {value[:40]!r}")
