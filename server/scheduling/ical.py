"""iCalendar (RFC 5545) for bookings: one VEVENT per booking, feeds and confirmation attachments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from icalendar import Calendar, Event

from server.scheduling.models import BookingStatus

PRODID = "-//Cau Noi//Scheduling//VI"


class BookingLike(Protocol):
    """What an event needs of a booking: a stored Booking, or the booking path's NewBooking."""

    @property
    def id(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def status(self) -> BookingStatus: ...


class ResourceLike(Protocol):
    """What an event or a confirmation needs of a resource: a Resource, or a cached one."""

    @property
    def name(self) -> str: ...
    @property
    def timezone(self) -> str: ...


def booking_event(booking: BookingLike, resource: ResourceLike, *, summary: str, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", f"{booking.id}@caunoi")
    event.add("dtstamp", stamp)
    event.add("dtstart", booking.starts_at)
    event.add("dtend", booking.ends_at)
    event.add("summary", summary)
    event.add("location", resource.name)
    # A cancelled booking stays in the feed as CANCELLED so that calendar apps remove it.
    event.add("status", "CANCELLED" if booking.status == BookingStatus.CANCELLED else "CONFIRMED")
    event.add("sequence", 1 if booking.status == BookingStatus.CANCELLED else 0)
    return event


def calendar(name: str, events: Iterable[Event], *, method: str | None = None) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    if method:
        cal.add("method", method)
    for event in events:
        cal.add_component(event)
    return bytes(cal.to_ical())
