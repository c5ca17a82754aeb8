"""The booking path's calendar cache (PostgreSQL: server/scheduling/fast_booking.py) never books on
stale data: changes made through the API, or behind the server's back (another worker, another node,
psql), are seen by the next booking. Run on SQLite too, where there is no cache: same answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, text

from server.app import create_app
from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.scheduling.models import Booking
from tests.conftest import login, make_settings, seed
from tests.integration.test_reminders import Inbox, sms_gateway, smtp, wait_for_mail

__all__ = ["sms_gateway", "smtp"]  # fixtures shared with test_reminders

VN = ZoneInfo("Asia/Ho_Chi_Minh")
MORNINGS: list[dict[str, object]] = [{"weekday": d, "start": "07:30", "end": "11:30"} for d in range(7)]


@pytest.fixture
async def any_db(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str
) -> tuple[TestClient, Demo]:
    client = await aiohttp_client(create_app(make_settings(tmp_path, database_url)))
    return client, await seed(client.app)


def tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = datetime.now(VN).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=VN)


async def make_resource(client: TestClient, tenant_id: str, csrf: str, *, capacity: int = 1) -> str:
    response = await client.post(f"/api/scheduling/tenants/{tenant_id}/resources", headers={"X-CSRF-Token": csrf},
                                 json={"kind": "class" if capacity > 1 else "practitioner", "name": "Phòng 2",
                                       "slot_minutes": 30, "min_notice_minutes": 0, "capacity": capacity})
    assert response.status == 201, await response.text()
    resource_id: str = (await response.json())["id"]
    await put_availability(client, resource_id, csrf, MORNINGS)
    return resource_id


async def put_availability(client: TestClient, resource_id: str, csrf: str, rules: list[dict[str, object]],
                           exceptions: list[dict[str, object]] | None = None) -> None:
    response = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf}, json={"rules": rules, "exceptions": exceptions or []})
    assert response.status == 200, await response.text()


async def book(client: TestClient, csrf: str, resource_id: str, start: datetime, subject: str) -> tuple[int, dict]:
    response = await client.post(f"/api/scheduling/resources/{resource_id}/bookings", headers={"X-CSRF-Token": csrf},
                                 json={"start": start.isoformat(), "subject_user_id": subject})
    return response.status, await response.json()


async def sql(client: TestClient, statement: str, **params: object) -> None:
    """A change made behind the server's back, as another process would make it."""
    async with client.app[SESSIONS].begin() as db:
        await db.execute(text(statement), params)


async def test_bookings_follow_availability_edits(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo.facility.id, csrf)
    patient = demo.users["patient1"].id
    assert (await book(client, csrf, resource_id, tomorrow_at(8), patient))[0] == 201  # calendar now cached

    closure: dict[str, object] = {"kind": "closed", "starts_at": tomorrow_at(9).isoformat(),
                                  "ends_at": tomorrow_at(10).isoformat()}
    await put_availability(client, resource_id, csrf, MORNINGS, [closure])
    status, body = await book(client, csrf, resource_id, tomorrow_at(9, 30), patient)
    assert status == 422 and body["error"]["code"] == "slot_unavailable"

    afternoons: list[dict[str, object]] = [{"weekday": d, "start": "14:00", "end": "16:00"} for d in range(7)]
    assert (await book(client, csrf, resource_id, tomorrow_at(14), patient))[0] == 422
    await put_availability(client, resource_id, csrf, MORNINGS + afternoons)
    assert (await book(client, csrf, resource_id, tomorrow_at(14), patient))[0] == 201
    assert (await book(client, csrf, resource_id, tomorrow_at(9, 30), patient))[0] == 201  # closure gone


async def test_changes_made_by_another_process_are_seen_at_once(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["school_admin"].email)
    resource_id = await make_resource(client, demo.school.id, csrf, capacity=2)
    student = demo.users["student1"].id
    assert (await book(client, csrf, resource_id, tomorrow_at(8), student))[0] == 201

    # Capacity lowered elsewhere: a cached capacity of 2 would hand out seat 1 — a double booking.
    await sql(client, "UPDATE bookable_resources SET capacity = 1 WHERE id = :id", id=resource_id)
    status, body = await book(client, csrf, resource_id, tomorrow_at(8), student)
    assert status == 409 and body["error"]["code"] == "slot_taken"

    await sql(client, "UPDATE bookable_resources SET capacity = 3 WHERE id = :id", id=resource_id)
    status, body = await book(client, csrf, resource_id, tomorrow_at(8), student)
    assert status == 201 and body["seat"] == 1

    # Availability removed elsewhere (no API call, so nothing in this process hears of it).
    await sql(client, "DELETE FROM availability_rules WHERE resource_id = :id", id=resource_id)
    status, body = await book(client, csrf, resource_id, tomorrow_at(9), student)
    assert status == 422 and body["error"]["code"] == "slot_unavailable"

    # The resource moved to another tenant: this tenant's staff are now refused, as for any resource of
    # a tenant they do not belong to.
    await sql(client, "INSERT INTO availability_rules (id, resource_id, weekday, start_time, end_time) "
                      "SELECT :rule, :id, d, '07:30', '11:30' FROM (SELECT 0 AS d UNION SELECT 1 UNION SELECT 2 "
                      "UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6) AS days WHERE d = :weekday",
              rule="0" * 36, id=resource_id, weekday=tomorrow_at(9).weekday())
    assert (await book(client, csrf, resource_id, tomorrow_at(9), student))[0] == 201
    await sql(client, "UPDATE bookable_resources SET tenant_id = :tenant WHERE id = :id",
              tenant=demo.facility.id, id=resource_id)
    status, body = await book(client, csrf, resource_id, tomorrow_at(10), student)
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_a_subject_removed_from_the_tenant_cannot_be_booked_for(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["doctor"].email)
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo.facility.id, admin_csrf)
    patient = demo.users["patient2"].id
    csrf = await login(client, demo.users["doctor"].email)
    assert (await book(client, csrf, resource_id, tomorrow_at(8), patient))[0] == 201
    await sql(client, "DELETE FROM role_assignments WHERE user_id = :user", user=patient)
    status, body = await book(client, csrf, resource_id, tomorrow_at(9), patient)
    assert status == 400 and "not a member" in body["error"]["message"]
    status, body = await book(client, csrf, resource_id, tomorrow_at(9), demo.users["student1"].id)  # other tenant
    assert status == 400 and "not a member" in body["error"]["message"]


async def test_every_booking_request_leaves_one_audit_row(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo.facility.id, csrf)
    csrf = await login(client, demo.users["doctor"].email)
    patient = demo.users["patient1"].id
    results = await asyncio.gather(*(book(client, csrf, resource_id, tomorrow_at(8 + i % 3), patient)
                                      for i in range(9)))
    assert sorted(status for status, _ in results) == [201] * 3 + [409] * 6
    booked = {body["id"] for status, body in results if status == 201}
    async with client.app[SESSIONS]() as db:
        rows = (await db.execute(select(AuditEvent).where(AuditEvent.action == "scheduling.booking.create"))).scalars()
        audit = [(row.outcome, row.target_id, row.actor_id, row.tenant_id) for row in rows]
        stored = {b.id: b for b in (await db.execute(select(Booking).where(Booking.id.in_(booked)))).scalars()}
    doctor = demo.users["doctor"].id
    assert sorted(a for a in audit if a[0] == Outcome.SUCCESS) == sorted(
        (Outcome.SUCCESS, booking_id, doctor, demo.facility.id) for booking_id in booked)
    assert [a for a in audit if a[0] == Outcome.FAILURE] == [(Outcome.FAILURE, resource_id, doctor,
                                                              demo.facility.id)] * 6
    # The answer describes the stored row exactly (the fast path builds it without reading it back).
    for status, body in results:
        if status == 201:
            read = await (await client.get(f"/api/scheduling/bookings/{body['id']}")).json()
            assert {key: read[key] for key in body} == body
            assert stored[body["id"]].created_by == doctor


async def test_a_switched_off_calendar_takes_no_bookings(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo.facility.id, csrf)
    patient = demo.users["patient1"].id
    assert (await book(client, csrf, resource_id, tomorrow_at(8), patient))[0] == 201
    url = f"/api/scheduling/resources/{resource_id}"
    assert (await client.patch(url, headers={"X-CSRF-Token": csrf}, json={"active": False})).status == 200
    status, body = await book(client, csrf, resource_id, tomorrow_at(9), patient)
    assert status == 422 and body["error"]["message"] == "this calendar is not open for booking"
    assert (await client.patch(url, headers={"X-CSRF-Token": csrf}, json={"active": True})).status == 200
    assert (await book(client, csrf, resource_id, tomorrow_at(9), patient))[0] == 201


@pytest.fixture
async def notified(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str,
    smtp: tuple[Inbox, int], sms_gateway: tuple[list[Any], str],
) -> tuple[TestClient, Demo]:
    settings = make_settings(tmp_path, database_url, notifiers=["email", "sms"], smtp_port=smtp[1],
                             sms_gateway_url=sms_gateway[1], sms_gateway_token="gateway-token")
    client = await aiohttp_client(create_app(settings))
    demo = await seed(client.app)
    await sql(client, "UPDATE users SET phone = '+84901234567' WHERE id = :id", id=demo.users["patient1"].id)
    return client, demo


async def test_the_confirmation_goes_out_by_mail_with_its_ics_and_by_sms(
    notified: tuple[TestClient, Demo], smtp: tuple[Inbox, int], sms_gateway: tuple[list[Any], str]
) -> None:
    client, demo = notified
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo.facility.id, csrf)
    status, booking = await book(client, csrf, resource_id, tomorrow_at(9), demo.users["patient1"].id)
    assert status == 201
    inbox, _ = smtp
    await wait_for_mail(inbox, 1)
    message = inbox.messages[0]
    assert message["To"] == demo.users["patient1"].email
    [part] = [part for part in message.walk() if part.get_filename() == "booking.ics"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    [event] = icalendar.Calendar.from_ical(payload).walk("VEVENT")
    assert str(event["UID"]) == f"{booking['id']}@caunoi" and event.decoded("DTSTART") == tomorrow_at(9)
    assert str(event["LOCATION"]) == "Phòng 2"
    sms, _ = sms_gateway
    for _ in range(100):
        if sms:
            break
        await asyncio.sleep(0.05)
    assert [m["to"] for m in sms] == ["+84901234567"] and "09:00" in sms[0]["message"]
