"""Reminders and confirmations through real channels on loopback: an SMTP server (aiosmtpd) and an
HTTP SMS gateway. Idempotent: a second run, or a second node, never sends a reminder twice."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import icalendar
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from server.app import create_app
from server.auth.models import User
from server.demo import Demo
from server.keys import NOTIFIERS, SESSIONS, TRANSLATOR
from server.scheduling.models import ReminderDelivery, ReminderStatus
from server.scheduling.reminders import due_offset, send_due_reminders
from tests.conftest import login, make_settings, seed
from tests.integration.scheduling_helpers import book, day_after_tomorrow_at, open_resource


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # the aiosmtpd hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
async def sms_gateway(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> AsyncIterator[tuple[list[Any], str]]:
    received: list[Any] = []

    async def receive(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer gateway-token"
        received.append(await request.json())
        return web.json_response({"status": "queued"})

    app = web.Application()
    app.router.add_post("/send", receive)
    server = await aiohttp_server(app, host="127.0.0.1")
    yield received, str(server.make_url("/send"))


@pytest.fixture
async def world(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sqlite_url: str,
    smtp: tuple[Inbox, int], sms_gateway: tuple[list[Any], str],
) -> tuple[TestClient, Demo]:
    settings = make_settings(tmp_path, sqlite_url, notifiers=["email", "sms"], smtp_port=smtp[1],
                             sms_gateway_url=sms_gateway[1], sms_gateway_token="gateway-token")
    client = await aiohttp_client(create_app(settings))
    demo = await seed(client.app)
    async with client.app[SESSIONS].begin() as db:
        await db.execute(update(User).where(User.id == demo.users["patient1"].id).values(phone="+84901234567"))
    return client, demo


async def run_job(client: TestClient, now: datetime) -> int:
    app = client.app
    return await send_due_reminders(app[SESSIONS], app[NOTIFIERS], app[TRANSLATOR], [1440, 15], "vi", now=now)


async def wait_for_mail(inbox: Inbox, count: int) -> None:
    for _ in range(100):
        if len(inbox.messages) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(inbox.messages)} e-mails arrived, expected {count}")


def test_offset_windows() -> None:
    start = datetime(2026, 12, 1, 9, 0)
    assert due_offset(start, start - timedelta(hours=30), [1440, 15]) is None
    assert due_offset(start, start - timedelta(hours=24), [1440, 15]) == 1440
    assert due_offset(start, start - timedelta(minutes=16), [1440, 15]) == 1440
    assert due_offset(start, start - timedelta(minutes=15), [15, 1440]) == 15
    assert due_offset(start, start, [1440, 15]) is None


async def test_confirmation_carries_an_ics_attachment(world: tuple[TestClient, Demo], smtp: tuple[Inbox, int]) -> None:
    client, demo = world
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    booking = await book(client, csrf, resource_id, day_after_tomorrow_at(9), demo.users["patient1"].id)
    inbox, _ = smtp
    await wait_for_mail(inbox, 1)
    message = inbox.messages[0]
    assert message["To"] == demo.users["patient1"].email
    assert "Xác nhận lịch hẹn" in str(email.header.make_header(email.header.decode_header(message["Subject"])))
    attachments = [part for part in message.walk() if part.get_filename() == "booking.ics"]
    assert len(attachments) == 1
    calendar = icalendar.Calendar.from_ical(attachments[0].get_payload(decode=True))
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{booking['id']}@caunoi"
    assert event.decoded("DTSTART") == day_after_tomorrow_at(9)
    assert str(event["STATUS"]) == "CONFIRMED"


async def test_reminders_go_out_once_per_window_and_channel(
    world: tuple[TestClient, Demo], smtp: tuple[Inbox, int], sms_gateway: tuple[list[Any], str]
) -> None:
    client, demo = world
    inbox, _ = smtp
    sms, _ = sms_gateway
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    start = day_after_tomorrow_at(9)
    await book(client, csrf, resource_id, start, demo.users["patient1"].id)
    await wait_for_mail(inbox, 1)  # the confirmation
    inbox.messages.clear()
    sms.clear()

    assert await run_job(client, start - timedelta(hours=30)) == 0  # nothing due yet
    # The "24 h" window: one e-mail and one SMS, even when two nodes run the job at the same time.
    results = await asyncio.gather(run_job(client, start - timedelta(hours=20)),
                                   run_job(client, start - timedelta(hours=20)))
    assert sum(results) == 2  # one e-mail and one SMS, whichever node claimed each
    assert await run_job(client, start - timedelta(hours=2)) == 0  # same window: already sent
    await wait_for_mail(inbox, 1)
    assert len(inbox.messages) == 1 and len(sms) == 1
    assert sms[0]["to"] == "+84901234567" and "Nhắc lịch" in sms[0]["message"]
    subject = str(email.header.make_header(email.header.decode_header(inbox.messages[0]["Subject"])))
    assert "Nhắc lịch" in subject and "09:00" in subject  # Vietnamese, in Vietnam's time

    # The "15 min" window sends the second reminder.
    assert await run_job(client, start - timedelta(minutes=10)) == 2
    async with client.app[SESSIONS]() as db:
        deliveries = (await db.execute(select(ReminderDelivery.offset_minutes, ReminderDelivery.channel,
                                              ReminderDelivery.status))).all()
    assert sorted(deliveries) == sorted([(1440, "email", ReminderStatus.SENT), (1440, "sms", ReminderStatus.SENT),
                                         (15, "email", ReminderStatus.SENT), (15, "sms", ReminderStatus.SENT)])


async def test_cancelled_bookings_get_no_reminder(world: tuple[TestClient, Demo], smtp: tuple[Inbox, int]) -> None:
    client, demo = world
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    start = day_after_tomorrow_at(10)
    booking = await book(client, csrf, resource_id, start, demo.users["patient1"].id)
    response = await client.post(f"/api/scheduling/bookings/{booking['id']}/cancel", headers={"X-CSRF-Token": csrf},
                                 json={})
    assert response.status == 200
    assert await run_job(client, start - timedelta(hours=1)) == 0


async def test_a_failing_channel_is_recorded_and_not_retried(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sqlite_url: str
) -> None:
    dead_port = free_port()  # nothing listens there
    client = await aiohttp_client(create_app(make_settings(tmp_path, sqlite_url, notifiers=["email"],
                                                           smtp_port=dead_port)))
    demo = await seed(client.app)
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    start = day_after_tomorrow_at(9)
    await book(client, csrf, resource_id, start, demo.users["patient1"].id)
    assert await run_job(client, start - timedelta(hours=3)) == 0
    assert await run_job(client, start - timedelta(hours=2)) == 0
    async with client.app[SESSIONS]() as db:
        rows = (await db.execute(select(ReminderDelivery.status, ReminderDelivery.error))).all()
    assert len(rows) == 1 and rows[0][0] == ReminderStatus.FAILED and "SMTP" in rows[0][1]


async def test_the_background_job_runs_by_itself(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sqlite_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = make_settings(tmp_path, sqlite_url, notifiers=["email"], smtp_port=port, reminders_enabled=True,
                             reminder_interval_seconds=0.2, reminder_offsets_minutes=[60 * 24 * 3])
    client = await aiohttp_client(create_app(settings))
    demo = await seed(client.app)
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    await book(client, csrf, resource_id, day_after_tomorrow_at(9), demo.users["patient1"].id)
    await wait_for_mail(inbox, 2)  # the confirmation, then the reminder from the job
    subjects = sorted(str(email.header.make_header(email.header.decode_header(m["Subject"])))
                      for m in inbox.messages)
    assert any("Nhắc lịch" in s for s in subjects) and any("Xác nhận" in s for s in subjects)
