"""The scheduling API over real HTTP on SQLite and PostgreSQL: availability, slots, bookings, and
no double booking under concurrency, guaranteed by the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.app import create_app
from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.scheduling.models import Booking, BookingStatus
from tests.conftest import login, make_settings, seed

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WEEKDAYS = [{"weekday": d, "start": "07:30", "end": "11:30"} for d in range(7)]


@pytest.fixture
async def any_db(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str
) -> tuple[TestClient, Demo]:
    client = await aiohttp_client(create_app(make_settings(tmp_path, database_url)))
    return client, await seed(client.app)


async def make_resource(client: TestClient, demo: Demo, csrf: str, *, capacity: int = 1, tenant: str = "facility",
                        rules: list[dict[str, object]] | None = None) -> str:
    tenant_id = demo.facility.id if tenant == "facility" else demo.school.id
    response = await client.post(f"/api/scheduling/tenants/{tenant_id}/resources", headers={"X-CSRF-Token": csrf},
                                 json={"kind": "practitioner" if capacity == 1 else "class", "name": "Phòng khám 1",
                                       "slot_minutes": 20, "buffer_minutes": 10, "min_notice_minutes": 0,
                                       "capacity": capacity})
    assert response.status == 201, await response.text()
    resource_id: str = (await response.json())["id"]
    response = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf}, json={"rules": rules or WEEKDAYS})
    assert response.status == 200, await response.text()
    return resource_id


def tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = datetime.now(VN).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=VN)


async def test_slots_follow_rules_buffer_and_closures(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo, csrf)
    start = tomorrow_at(0)
    slots = (await (await client.get(f"/api/scheduling/resources/{resource_id}/slots",
                                     params={"from": start.isoformat(),
                                             "to": (start + timedelta(days=1)).isoformat()})).json())["slots"]
    local = [datetime.fromisoformat(s["start"]).astimezone(VN).strftime("%H:%M") for s in slots]
    # 07:30–11:30 in 20-minute slots with 10-minute buffers: 8 slots, the last 11:00–11:20.
    assert local == ["07:30", "08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00"]
    assert all(s["start"].endswith("+00:00") for s in slots)  # UTC on the wire

    closure = {"kind": "closed", "starts_at": tomorrow_at(8).isoformat(), "ends_at": tomorrow_at(10).isoformat(),
               "reason": "Họp giao ban"}
    response = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf}, json={"rules": WEEKDAYS, "exceptions": [closure]})
    assert response.status == 200
    slots = (await (await client.get(f"/api/scheduling/resources/{resource_id}/slots",
                                     params={"from": start.isoformat(),
                                             "to": (start + timedelta(days=1)).isoformat()})).json())["slots"]
    local = [datetime.fromisoformat(s["start"]).astimezone(VN).strftime("%H:%M") for s in slots]
    assert local == ["07:30", "10:00", "10:30", "11:00"]


async def test_fifty_concurrent_bookings_of_one_slot_make_exactly_one(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo, csrf)
    start = tomorrow_at(9)

    async def attempt() -> tuple[int, dict[str, object]]:
        response = await client.post(f"/api/scheduling/resources/{resource_id}/bookings",
                                     headers={"X-CSRF-Token": csrf},
                                     json={"start": start.isoformat(), "subject_user_id": demo.users["patient1"].id})
        return response.status, await response.json()

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 49, statuses
    conflict = next(body for status, body in results if status == 409)
    assert conflict["error"]["code"] == "slot_taken"  # type: ignore[index]
    assert "someone else" in conflict["error"]["message"]  # type: ignore[index]
    async with client.app[SESSIONS]() as db:
        active = await db.scalar(select(func.count()).select_from(Booking).where(
            Booking.resource_id == resource_id, Booking.status == BookingStatus.BOOKED))
    assert active == 1


async def test_a_class_of_thirty_accepts_exactly_thirty(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["school_admin"].email)
    resource_id = await make_resource(client, demo, csrf, capacity=30, tenant="school")
    start = tomorrow_at(8)

    async def attempt() -> int:
        response = await client.post(f"/api/scheduling/resources/{resource_id}/bookings",
                                     headers={"X-CSRF-Token": csrf},
                                     json={"start": start.isoformat(), "subject_user_id": demo.users["student1"].id})
        return response.status

    statuses = sorted(await asyncio.gather(*(attempt() for _ in range(45))))
    assert statuses == [201] * 30 + [409] * 15
    async with client.app[SESSIONS]() as db:
        seats = sorted((await db.execute(select(Booking.seat).where(
            Booking.resource_id == resource_id, Booking.status == BookingStatus.BOOKED))).scalars())
    assert seats == list(range(30))


async def test_cancel_frees_the_slot_and_reschedule_moves_it(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo, csrf)
    patient_csrf = await login(client, demo.users["patient1"].email)
    first = await client.post(f"/api/scheduling/resources/{resource_id}/bookings",
                              headers={"X-CSRF-Token": patient_csrf}, json={"start": tomorrow_at(9).isoformat()})
    assert first.status == 201
    booking = await first.json()
    assert booking["subject_user_id"] == demo.users["patient1"].id and booking["created_by"] == booking[
        "subject_user_id"]

    moved = await client.post(f"/api/scheduling/bookings/{booking['id']}/reschedule",
                              headers={"X-CSRF-Token": patient_csrf}, json={"start": tomorrow_at(10).isoformat()})
    assert moved.status == 201
    moved_body = await moved.json()
    assert moved_body["rescheduled_from_id"] == booking["id"]
    old = await (await client.get(f"/api/scheduling/bookings/{booking['id']}")).json()
    assert old["status"] == "cancelled" and old["cancel_reason"] == "rescheduled"

    cancelled = await client.post(f"/api/scheduling/bookings/{moved_body['id']}/cancel",
                                  headers={"X-CSRF-Token": patient_csrf}, json={"reason": "Con bị sốt"})
    assert (await cancelled.json())["status"] == "cancelled"
    again = await client.post(f"/api/scheduling/bookings/{moved_body['id']}/cancel",
                              headers={"X-CSRF-Token": patient_csrf}, json={})
    assert again.status == 409
    # The 10:00 slot is free again: someone else can take it.
    csrf = await login(client, demo.users["doctor"].email)
    retake = await client.post(f"/api/scheduling/resources/{resource_id}/bookings", headers={"X-CSRF-Token": csrf},
                               json={"start": tomorrow_at(10).isoformat(),
                                     "subject_user_id": demo.users["patient2"].id})
    assert retake.status == 201


async def test_times_outside_availability_are_refused(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo, csrf)
    for start in (tomorrow_at(13), tomorrow_at(9, 5), datetime.now(UTC) - timedelta(days=1),
                  datetime.now(UTC) + timedelta(days=60)):
        response = await client.post(f"/api/scheduling/resources/{resource_id}/bookings",
                                     headers={"X-CSRF-Token": csrf},
                                     json={"start": start.isoformat(), "subject_user_id": demo.users["patient1"].id})
        assert response.status == 422, start
        assert (await response.json())["error"]["code"] == "slot_unavailable"


async def test_bad_bodies_get_clear_errors(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo, csrf)
    url = f"/api/scheduling/resources/{resource_id}/bookings"
    cases = [
        ("not json", "invalid_json"),
        ('{"start": "2026-12-01T09:00:00"}', "invalid_body"),  # no zone
        ('{"start": "tomorrow"}', "invalid_body"),
        ('{"start": "2026-12-01T09:00:00+07:00", "surprise": 1}', "invalid_body"),
    ]
    for body, code in cases:
        response = await client.post(url, data=body, headers={"X-CSRF-Token": csrf,
                                                              "Content-Type": "application/json"})
        assert response.status == 400, body
        assert (await response.json())["error"]["code"] == code, body
    bad_rule = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf},
                                json={"rules": [{"weekday": 7, "start": "08:00", "end": "09:00"}]})
    assert bad_rule.status == 400
    bad_zone = await client.post(f"/api/scheduling/tenants/{demo.facility.id}/resources",
                                 headers={"X-CSRF-Token": csrf},
                                 json={"kind": "service", "name": "x", "timezone": "Mars/Olympus"})
    assert bad_zone.status == 400 and "time zone" in (await bad_zone.json())["error"]["message"]


async def test_authorization(client: TestClient, demo: Demo,
                             aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await make_resource(client, demo, admin_csrf)
    booked = await client.post(f"/api/scheduling/resources/{resource_id}/bookings",
                               headers={"X-CSRF-Token": admin_csrf},
                               json={"start": tomorrow_at(9).isoformat(),
                                     "subject_user_id": demo.users["patient1"].id})
    booking_id = (await booked.json())["id"]

    async def as_user(handle: str) -> tuple[TestClient, str]:
        browser = await aiohttp_client(client.server)
        return browser, await login(browser, demo.users[handle].email)

    # Another tenant's people see nothing of it.
    teacher, csrf = await as_user("teacher")
    for method, path in [("GET", f"/api/scheduling/resources/{resource_id}/slots"),
                         ("GET", f"/api/scheduling/resources/{resource_id}/bookings"),
                         ("GET", f"/api/scheduling/bookings/{booking_id}")]:
        assert (await teacher.request(method, path)).status == 404, path
    response = await teacher.post(f"/api/scheduling/resources/{resource_id}/bookings",
                                  headers={"X-CSRF-Token": csrf}, json={"start": tomorrow_at(10).isoformat()})
    assert response.status == 404
    # A patient cannot see, move or cancel another patient's booking, nor book for them.
    other, csrf = await as_user("patient2")
    assert (await other.get(f"/api/scheduling/bookings/{booking_id}")).status == 404
    assert (await other.post(f"/api/scheduling/bookings/{booking_id}/cancel", headers={"X-CSRF-Token": csrf},
                             json={})).status == 404
    response = await other.post(f"/api/scheduling/resources/{resource_id}/bookings", headers={"X-CSRF-Token": csrf},
                                json={"start": tomorrow_at(10).isoformat(),
                                      "subject_user_id": demo.users["patient1"].id})
    assert response.status == 404
    listed = await (await other.get(f"/api/scheduling/resources/{resource_id}/bookings")).json()
    assert listed["bookings"] == []  # patient2 has none; patient1's is not shown
    # Only admins edit availability or create resources; doctors may book for patients.
    doctor, csrf = await as_user("doctor")
    assert (await doctor.put(f"/api/scheduling/resources/{resource_id}/availability",
                             headers={"X-CSRF-Token": csrf}, json={"rules": []})).status == 404
    assert (await doctor.post(f"/api/scheduling/tenants/{demo.facility.id}/resources",
                              headers={"X-CSRF-Token": csrf}, json={"kind": "service", "name": "x"})).status == 404
    listed = await (await doctor.get(f"/api/scheduling/resources/{resource_id}/bookings")).json()
    assert [b["id"] for b in listed["bookings"]] == [booking_id]
    # Anonymous: 401.
    anonymous = await aiohttp_client(client.server)
    assert (await anonymous.get(f"/api/scheduling/resources/{resource_id}/slots")).status == 401
    async with client.app[SESSIONS]() as db:
        denied = await db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.outcome == Outcome.DENIED, AuditEvent.action.like("scheduling.%")))
    assert denied == 9  # 4 for the teacher, 3 for patient2, 2 for the doctor
