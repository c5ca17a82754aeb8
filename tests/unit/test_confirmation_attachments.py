"""A confirmation's .ics is built only for a channel that carries attachments (e-mail), not for a log
line or an SMS: it costs more CPU than the rest of a booking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar

from server.auth.models import User
from server.i18n import Translator
from server.notify.base import Notification, Notifier
from server.scheduling.models import Booking, BookingStatus, Resource
from server.scheduling.reminders import send_confirmation


class Recorder(Notifier):
    def __init__(self, channel: str, carries_attachments: bool) -> None:
        self.channel = channel
        self.carries_attachments = carries_attachments
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


def booking_and_resource() -> tuple[Booking, Resource]:
    start = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    resource = Resource(id="r1", tenant_id="t1", name="BS. An", timezone="Asia/Ho_Chi_Minh")
    booking = Booking(id="b1", resource_id="r1", tenant_id="t1", starts_at=start, ends_at=start + timedelta(minutes=30),
                      seat=0, status=BookingStatus.BOOKED)
    return booking, resource


async def test_the_ics_is_built_only_when_a_channel_carries_it() -> None:
    booking, resource = booking_and_resource()
    user = User(id="u1", email="a@example.vn", phone=None, locale="vi")
    log_only = Recorder("log", carries_attachments=False)
    await send_confirmation([log_only], Translator(), "vi", booking, resource, user)
    assert [n.attachments for n in log_only.sent] == [()]
    assert "09:00 01/12/2026" in log_only.sent[0].subject  # local time of the resource

    log, mail = Recorder("log", carries_attachments=False), Recorder("email", carries_attachments=True)
    await send_confirmation([log, mail], Translator(), "vi", booking, resource, user)
    (attachment,) = mail.sent[0].attachments
    event = icalendar.Calendar.from_ical(attachment.data).walk("VEVENT")[0]
    assert str(event["uid"]) == "b1@caunoi" and event.decoded("dtstart") == booking.starts_at
    assert log.sent[0].subject == mail.sent[0].subject
