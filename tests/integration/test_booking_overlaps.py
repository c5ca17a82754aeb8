"""Bookings that overlap without starting together (issue #4's last booking-path gap), on SQLite and
PostgreSQL: after a resource's slot length changes, an old booking lies across a slot of the new grid;
every way of booking (POST …/bookings — the fast path on PostgreSQL —, reschedule, FHIR $book) refuses
that slot while the old booking holds its seats, and concurrent bookings at two overlapping times get
exactly the capacity, whichever wins."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from alembic import command
from sqlalchemy import select, update

from server.app import create_app
from server.db.migrate import alembic_config
from server.demo import Demo
from server.keys import SESSIONS
from server.records.fhir.calendars import slot_id
from server.scheduling.models import Booking, BookingStatus, Resource
from tests.conftest import login, make_settings, seed
from tests.integration.fhir_support import book_body, fhir_get, fhir_post, start_app
from tests.integration.fhir_support import open_resource as fhir_resource
from tests.integration.scheduling_helpers import book, day_after_tomorrow_at, open_resource

OVERLAP_WORDS = "overlaps another booking"


@pytest.fixture
async def any_db(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str
) -> tuple[TestClient, Demo]:
    client = await aiohttp_client(create_app(make_settings(tmp_path, database_url)))
    return client, await seed(client.app)


async def active(client: TestClient, resource_id: str) -> list[Booking]:
    async with client.app[SESSIONS]() as db:
        return list((await db.execute(select(Booking).where(
            Booking.resource_id == resource_id, Booking.status == BookingStatus.BOOKED)
            .order_by(Booking.starts_at))).scalars())


def assert_never_over(bookings: list[Booking], capacity: int) -> None:
    """At no instant do more than ``capacity`` active bookings run, nor two on one seat."""
    for booking in bookings:
        at_once = [b for b in bookings if b.starts_at <= booking.starts_at < b.ends_at]
        assert len(at_once) <= capacity, at_once
        assert len({b.seat for b in at_once}) == len(at_once), at_once


async def attempt(client: TestClient, csrf: str, resource_id: str, start: datetime, subject: str
                  ) -> tuple[int, dict[str, object]]:
    response = await client.post(f"/api/scheduling/resources/{resource_id}/bookings", headers={"X-CSRF-Token": csrf},
                                 json={"start": start.isoformat(), "subject_user_id": subject})
    return response.status, await response.json()


async def test_a_time_across_an_old_booking_is_refused_by_booking_and_moving(any_db: tuple[TestClient, Demo]
                                                                             ) -> None:
    client, demo = any_db
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, admin_csrf)  # 30-minute slots from 07:30
    patient_csrf = await login(client, demo.users["patient1"].email)
    old = await book(client, patient_csrf, resource_id, day_after_tomorrow_at(7, 30))  # 07:30–08:00
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    response = await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": admin_csrf},
                                  json={"slot_minutes": 20})  # the new grid: 07:30, 07:50, 08:10, …
    assert response.status == 200

    # 07:50–08:10 lies across the old 07:30–08:00: refused, twice (the fast path's cache is warm then).
    doctor_csrf = await login(client, demo.users["doctor"].email)
    patient2 = demo.users["patient2"].id
    for _ in range(2):
        status, body = await attempt(client, doctor_csrf, resource_id, day_after_tomorrow_at(7, 50), patient2)
        assert status == 409, body
        assert body["error"]["code"] == "slot_taken"  # type: ignore[index]
        assert OVERLAP_WORDS in body["error"]["message"]  # type: ignore[index]
    # 07:30 itself (same start, new length) is taken the usual way.
    status, body = await attempt(client, doctor_csrf, resource_id, day_after_tomorrow_at(7, 30), patient2)
    assert status == 409 and "someone else" in body["error"]["message"], body  # type: ignore[index]
    # 08:10 does not touch it.
    status, later = await attempt(client, doctor_csrf, resource_id, day_after_tomorrow_at(8, 10), patient2)
    assert status == 201, later

    # Moving another booking onto 07:50 is refused too, and leaves it where it was.
    response = await client.post(f"/api/scheduling/bookings/{later['id']}/reschedule",
                                 headers={"X-CSRF-Token": doctor_csrf},
                                 json={"start": day_after_tomorrow_at(7, 50).isoformat()})
    assert response.status == 409, await response.text()
    assert OVERLAP_WORDS in (await response.json())["error"]["message"]
    assert [(b.id, b.starts_at) for b in await active(client, resource_id)] == [
        (old["id"], day_after_tomorrow_at(7, 30)), (later["id"], day_after_tomorrow_at(8, 10))]

    # The old booking itself may move onto the new grid across its own time (it is released in the
    # same transaction), and then 07:30 is free again.
    patient_csrf = await login(client, demo.users["patient1"].email)
    response = await client.post(f"/api/scheduling/bookings/{old['id']}/reschedule",
                                 headers={"X-CSRF-Token": patient_csrf},
                                 json={"start": day_after_tomorrow_at(7, 50).isoformat()})
    assert response.status == 201, await response.text()
    moved = await response.json()
    assert (datetime.fromisoformat(moved["start"]), moved["rescheduled_from_id"]) == \
        (day_after_tomorrow_at(7, 50), old["id"])
    doctor_csrf = await login(client, demo.users["doctor"].email)
    status, body = await attempt(client, doctor_csrf, resource_id, day_after_tomorrow_at(7, 30), patient2)
    assert status == 201, body
    bookings = await active(client, resource_id)
    assert [b.starts_at for b in bookings] == [day_after_tomorrow_at(h, m) for h, m in ((7, 30), (7, 50), (8, 10))]
    assert_never_over(bookings, 1)


@pytest.mark.parametrize("capacity", [1, 2])
async def test_concurrent_bookings_at_two_overlapping_times_get_exactly_the_capacity(
    any_db: tuple[TestClient, Demo], capacity: int
) -> None:
    """The weekly hours (07:30, 08:00, … in 20-minute slots with 10-minute breaks) and extra hours from
    07:40 make two grids that cross: 07:30–07:50 and 07:40–08:00 are both slots. Ten requests at each
    at once: exactly ``capacity`` bookings, never more at one instant, never one seat twice."""
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    response = await client.post(f"/api/scheduling/tenants/{demo.facility.id}/resources",
                                 headers={"X-CSRF-Token": csrf},
                                 json={"kind": "practitioner" if capacity == 1 else "class", "name": "Phòng khám 1",
                                       "slot_minutes": 20, "buffer_minutes": 10, "min_notice_minutes": 0,
                                       "capacity": capacity})
    resource_id = (await response.json())["id"]
    extra = {"kind": "open", "starts_at": day_after_tomorrow_at(7, 40).isoformat(),
             "ends_at": day_after_tomorrow_at(8, 40).isoformat(), "reason": "Thêm giờ"}
    response = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf},
                                json={"rules": [{"weekday": d, "start": "07:30", "end": "11:30"} for d in range(7)],
                                      "exceptions": [extra]})
    assert response.status == 200, await response.text()
    doctor_csrf = await login(client, demo.users["doctor"].email)
    times = [day_after_tomorrow_at(7, 30), day_after_tomorrow_at(7, 40)] * 10
    results = await asyncio.gather(*(attempt(client, doctor_csrf, resource_id, start, demo.users["patient1"].id)
                                     for start in times))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * capacity + [409] * (20 - capacity), results
    assert {body["error"]["code"] for status, body in results if status == 409} == {"slot_taken"}  # type: ignore[index]
    bookings = await active(client, resource_id)
    assert len(bookings) == capacity
    assert_never_over(bookings, capacity)


async def test_fhir_book_refuses_a_slot_across_an_old_booking(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str
) -> None:
    client, world = await start_app(aiohttp_client, tmp_path, database_url)
    consult = await fhir_resource(client, world.facility, "BS. An", user=world.users["doctor"])  # 30 minutes
    key = world.keys["doctor"]
    status, _ = await fhir_post(client, "Appointment/$book",
                                book_body(slot_id(consult.id, day_after_tomorrow_at(7, 30)),
                                          world.users["patient1"].id), key)
    assert status == 201
    async with client.app[SESSIONS].begin() as db:
        await db.execute(update(Resource).where(Resource.id == consult.id).values(slot_minutes=20))
    # The Slot says so before anyone tries: busy, as the scheduling API leaves it out of its list.
    status, listed = await fhir_get(client, f"Slot/{slot_id(consult.id, day_after_tomorrow_at(7, 50))}", key)
    assert status == 200 and listed["status"] == "busy", listed
    status, outcome = await fhir_post(client, "Appointment/$book",
                                      book_body(slot_id(consult.id, day_after_tomorrow_at(7, 50)),
                                                world.users["patient2"].id), key)
    assert status == 409, outcome
    assert outcome["issue"][0]["code"] == "conflict"
    assert OVERLAP_WORDS in outcome["issue"][0]["diagnostics"]
    status, _ = await fhir_post(client, "Appointment/$book",
                                book_body(slot_id(consult.id, day_after_tomorrow_at(8, 10)),
                                          world.users["patient2"].id), key)
    assert status == 201
    assert [b.starts_at for b in await active(client, consult.id)] == [day_after_tomorrow_at(7, 30),
                                                                     day_after_tomorrow_at(8, 10)]


async def _upgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


@pytest.mark.postgres
async def test_migration_0014_reseats_bookings_that_already_overlap(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, postgres_url: str
) -> None:
    """Bookings made through the gap before 0014 (one seat at overlapping times) get another seat, so
    that the constraint can be added; afterwards the database itself refuses such a pair."""
    client, world = await start_app(aiohttp_client, tmp_path, postgres_url)
    consult = await fhir_resource(client, world.facility, "BS. An", user=world.users["doctor"])
    await asyncio.to_thread(command.downgrade, alembic_config(postgres_url), "0013")
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    insert = ("INSERT INTO bookings (id, resource_id, tenant_id, starts_at, ends_at, seat, status, note, created_at, "
              "cancel_reason) VALUES ($1, $2, $3, $4, $5, 0, 'booked', '', now(), '')")

    async def add(connection: asyncpg.Connection, booking_id: str, start: datetime, minutes: int) -> None:
        await connection.execute(insert, booking_id, consult.id, consult.tenant_id, start,
                                 start + timedelta(minutes=minutes))

    connection = await asyncpg.connect(dsn)
    try:
        await add(connection, "a-0730", day_after_tomorrow_at(7, 30), 30)
        await add(connection, "b-0750", day_after_tomorrow_at(7, 50), 20)  # across a-0730, same seat
        await add(connection, "c-0800", day_after_tomorrow_at(8, 0), 30)  # across b-0750 only
        await add(connection, "d-0900", day_after_tomorrow_at(9, 0), 30)  # alone
        await _upgrade(postgres_url, "head")
        seats = dict(await connection.fetch("SELECT id, seat FROM bookings WHERE resource_id = $1", consult.id))
        assert seats == {"a-0730": 0, "b-0750": 1, "c-0800": 0, "d-0900": 0}
        with pytest.raises(asyncpg.ExclusionViolationError):
            await add(connection, "e-0910", day_after_tomorrow_at(9, 10), 20)
    finally:
        await connection.close()


async def test_a_slot_still_holding_more_than_a_lowered_capacity_is_refused(any_db: tuple[TestClient, Demo]) -> None:
    """Capacity lowered from 3 to 1 under three bookings, and the one in seat 0 cancelled: the slot still
    holds two, so it is full (as listed) and a new booking is refused, though seat 0 is free."""
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                       json={"capacity": 3})
    doctor_csrf = await login(client, demo.users["doctor"].email)
    at = day_after_tomorrow_at(9)
    made = [await book(client, doctor_csrf, resource_id, at, demo.users[p].id)
            for p in ("patient1", "patient2", "patient1")]
    assert sorted(int(str(b["seat"])) for b in made) == [0, 1, 2]
    seat_zero = next(b for b in made if b["seat"] == 0)
    response = await client.post(f"/api/scheduling/bookings/{seat_zero['id']}/cancel",
                                 headers={"X-CSRF-Token": doctor_csrf}, json={"reason": "test"})
    assert response.status == 200, await response.text()
    csrf = await login(client, demo.users["facility_admin"].email)
    await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                       json={"capacity": 1})
    doctor_csrf = await login(client, demo.users["doctor"].email)
    status, body = await attempt(client, doctor_csrf, resource_id, at, demo.users["patient2"].id)
    assert status == 409 and body["error"]["code"] == "slot_taken", body  # type: ignore[index]
    assert len(await active(client, resource_id)) == 2


async def test_a_class_across_an_old_booking_takes_its_remaining_seats_exactly(any_db: tuple[TestClient, Demo]
                                                                                ) -> None:
    """Three places, one held by an old 07:30–08:00 booking across the new 07:50 slot: twenty
    concurrent bookings of 07:50 get exactly the two left (a lost race on a seat tries the next)."""
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                       json={"capacity": 3})
    doctor_csrf = await login(client, demo.users["doctor"].email)
    await book(client, doctor_csrf, resource_id, day_after_tomorrow_at(7, 30), demo.users["patient1"].id)
    csrf = await login(client, demo.users["facility_admin"].email)
    await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                       json={"slot_minutes": 20})
    doctor_csrf = await login(client, demo.users["doctor"].email)
    results = await asyncio.gather(*(attempt(client, doctor_csrf, resource_id, day_after_tomorrow_at(7, 50),
                                             demo.users["patient2"].id) for _ in range(20)))
    assert sorted(status for status, _ in results) == [201] * 2 + [409] * 18, results
    bookings = await active(client, resource_id)
    assert len(bookings) == 3
    assert_never_over(bookings, 3)
