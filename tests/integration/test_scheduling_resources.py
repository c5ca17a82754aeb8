"""Resource settings (PATCH), every availability mistake at once, names in bookings and "my
bookings": over real HTTP on SQLite and PostgreSQL, with who may do what (404 otherwise, audited)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.app import create_app
from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.scheduling.models import AvailabilityRule, Resource
from tests.conftest import login, make_settings, seed
from tests.integration.scheduling_helpers import EVERY_MORNING, VN, book, day_after_tomorrow_at, open_resource


@pytest.fixture
async def any_db(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str
) -> tuple[TestClient, Demo]:
    client = await aiohttp_client(create_app(make_settings(tmp_path, database_url)))
    return client, await seed(client.app)


async def audit_rows(client: TestClient, action: str, target_id: str) -> list[AuditEvent]:
    async with client.app[SESSIONS]() as db:
        return list((await db.execute(select(AuditEvent).where(AuditEvent.action == action,
                                                               AuditEvent.target_id == target_id))).scalars())


async def local_slots(client: TestClient, resource_id: str, day: datetime) -> list[str]:
    start = day.replace(hour=0, minute=0)
    response = await client.get(f"/api/scheduling/resources/{resource_id}/slots",
                                params={"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()})
    assert response.status == 200, await response.text()
    return [datetime.fromisoformat(s["start"]).astimezone(VN).strftime("%H:%M")
            for s in (await response.json())["slots"]]


# --- PATCH /api/scheduling/resources/{id} -----------------------------------------------------------

async def test_an_administrator_changes_the_settings_and_it_is_audited(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    response = await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                                  json={"name": "  Phòng khám 2  ", "slot_minutes": 20, "buffer_minutes": 10,
                                        "min_notice_minutes": 120, "horizon_days": 60, "capacity": 2,
                                        "timezone": "Asia/Bangkok"})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert {k: body[k] for k in ("name", "slot_minutes", "buffer_minutes", "min_notice_minutes", "horizon_days",
                                 "capacity", "timezone", "active")} == {
        "name": "Phòng khám 2", "slot_minutes": 20, "buffer_minutes": 10, "min_notice_minutes": 120,
        "horizon_days": 60, "capacity": 2, "timezone": "Asia/Bangkok", "active": True}
    assert body["changed"] == ["buffer_minutes", "capacity", "horizon_days", "min_notice_minutes", "name",
                               "slot_minutes", "timezone"]
    async with client.app[SESSIONS]() as db:
        stored = await db.get(Resource, resource_id)
    assert stored is not None and (stored.name, stored.slot_minutes, stored.capacity, stored.timezone) == \
        ("Phòng khám 2", 20, 2, "Asia/Bangkok")
    rows = await audit_rows(client, "scheduling.resource.update", resource_id)
    assert [(r.outcome, r.actor_id, r.tenant_id) for r in rows] == \
        [(Outcome.SUCCESS, demo.users["facility_admin"].id, demo.facility.id)]

    # Only the fields sent change.
    response = await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                                  json={"capacity": 3})
    assert (await response.json())["changed"] == ["capacity"]
    assert (await response.json())["slot_minutes"] == 20


async def test_switching_a_resource_off_hides_it_and_its_free_times(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    day = day_after_tomorrow_at(0)
    assert len(await local_slots(client, resource_id, day)) == 8
    response = await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                                  json={"active": False})
    assert response.status == 200 and (await response.json())["active"] is False
    listed = (await (await client.get("/api/scheduling/resources")).json())["resources"]
    assert resource_id not in {r["id"] for r in listed}
    assert await local_slots(client, resource_id, day) == []
    # Switched on again, everything is back (its hours were kept).
    await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                       json={"active": True})
    assert len(await local_slots(client, resource_id, day)) == 8


async def test_a_new_slot_length_keeps_existing_bookings(any_db: tuple[TestClient, Demo]) -> None:
    """Existing bookings keep their times; new slots follow the new length, and a new slot that an
    old booking overlaps is not offered (the doctor is busy then)."""
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)  # 30-minute slots from 07:30
    patient_csrf = await login(client, demo.users["patient1"].email)
    booking = await book(client, patient_csrf, resource_id, day_after_tomorrow_at(7, 30))

    csrf = await login(client, demo.users["facility_admin"].email)
    response = await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                                  json={"slot_minutes": 20})
    assert response.status == 200
    assert (await response.json())["upcoming_bookings"] == 1

    # The booking is as it was: same times, still booked, still on the calendar.
    kept = await (await client.get(f"/api/scheduling/bookings/{booking['id']}")).json()
    assert (kept["start"], kept["end"], kept["status"]) == (booking["start"], booking["end"], "booked")
    day = day_after_tomorrow_at(0)
    calendar = (await (await client.get(f"/api/scheduling/resources/{resource_id}/bookings", params={
        "from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()})).json())["bookings"]
    assert [b["id"] for b in calendar] == [booking["id"]]

    # The new grid: 07:30 (booked) and 07:50 (overlapped by 07:30–08:00) are not offered.
    slots = await local_slots(client, resource_id, day)
    assert slots[:3] == ["08:10", "08:30", "08:50"]
    assert "07:30" not in slots and "07:50" not in slots

    # The patient moves it onto the new grid: it now lasts 20 minutes; the old times are free again.
    patient_csrf = await login(client, demo.users["patient1"].email)
    response = await client.post(f"/api/scheduling/bookings/{booking['id']}/reschedule",
                                 headers={"X-CSRF-Token": patient_csrf},
                                 json={"start": day_after_tomorrow_at(8, 10).isoformat()})
    assert response.status == 201, await response.text()
    moved = await response.json()
    assert datetime.fromisoformat(moved["end"]) - datetime.fromisoformat(moved["start"]) == timedelta(minutes=20)
    slots = await local_slots(client, resource_id, day)
    assert slots[:2] == ["07:30", "07:50"] and "08:10" not in slots


@pytest.mark.parametrize("handle", ["doctor", "nurse", "patient1", "school_admin"])
async def test_only_the_tenants_administrators_change_settings(client: TestClient, demo: Demo, handle: str) -> None:
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    csrf = await login(client, demo.users[handle].email)
    response = await client.patch(f"/api/scheduling/resources/{resource_id}", headers={"X-CSRF-Token": csrf},
                                  json={"name": "Đổi tên", "slot_minutes": 5})
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    async with client.app[SESSIONS]() as db:
        stored = await db.get(Resource, resource_id)
    assert stored is not None and (stored.name, stored.slot_minutes) == ("BS. An — khám từ xa", 30)
    rows = await audit_rows(client, "scheduling.resource.update", resource_id)
    assert [(r.outcome, r.actor_id) for r in rows] == [(Outcome.DENIED, demo.users[handle].id)]


async def test_settings_need_a_login_and_a_real_resource(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["facility_admin"].email)
    response = await client.patch("/api/scheduling/resources/no-such-resource", headers={"X-CSRF-Token": csrf},
                                  json={"capacity": 2})
    assert response.status == 404
    assert len(await audit_rows(client, "scheduling.resource.update", "no-such-resource")) == 1
    await client.post("/logout", headers={"X-CSRF-Token": csrf})
    anonymous = await client.patch("/api/scheduling/resources/no-such-resource", json={"capacity": 2})
    assert anonymous.status in {401, 403}


async def test_bad_settings_are_all_named_and_nothing_changes(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    url = f"/api/scheduling/resources/{resource_id}"
    response = await client.patch(url, headers={"X-CSRF-Token": csrf},
                                  json={"name": "   ", "slot_minutes": 0, "timezone": "Mars/Olympus", "capacity": 2})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_body"
    assert {(e["name"], e["type"]) for e in error["errors"]} == \
        {("name", "required"), ("slot_minutes", "greater_than_equal"), ("timezone", "unknown_zone")}
    for body, name, kind in [({"capacity": None}, "capacity", "not_null"),
                             ({"kind": "room"}, "kind", "extra_forbidden"),
                             ({"horizon_days": 400}, "horizon_days", "less_than_equal"),
                             ({"active": "maybe"}, "active", "bool_parsing")]:
        response = await client.patch(url, headers={"X-CSRF-Token": csrf}, json=body)
        assert response.status == 400, body
        assert [(e["name"], e["type"]) for e in (await response.json())["error"]["errors"]] == [(name, kind)]
    response = await client.patch(url, headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
                                  data="{not json")
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_json"
    async with client.app[SESSIONS]() as db:
        stored = await db.get(Resource, resource_id)
    assert stored is not None and (stored.slot_minutes, stored.capacity, stored.timezone) == (30, 1, "Asia/Ho_Chi_Minh")


# --- PUT availability: every mistake at once ---------------------------------------------------------

async def test_availability_reports_every_bad_rule_and_exception(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    start = day_after_tomorrow_at(8)
    body = {
        "rules": [
            {"weekday": 0, "start": "07:30", "end": "11:30"},
            {"weekday": 1, "start": "14:00", "end": "13:00"},  # ends before it starts
            {"weekday": 2, "start": "25:00", "end": "26:00"},  # not times
            {"weekday": 0, "start": "11:00", "end": "12:00"},  # overlaps the first
            {"weekday": 9, "start": "07:00", "end": "08:00"},  # no such weekday
        ],
        "exceptions": [
            {"kind": "closed", "starts_at": start.isoformat(), "ends_at": (start - timedelta(hours=1)).isoformat()},
            {"kind": "open", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()},
            {"kind": "sometimes", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()},
        ],
    }
    response = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf}, json=body)
    assert response.status == 400
    error = (await response.json())["error"]
    found = [(e["section"], e["index"], e["name"], e["type"]) for e in error["errors"]]
    assert found == [
        ("rules", 1, "end", "end_before_start"),
        ("rules", 2, "end", "time_parsing"),
        ("rules", 2, "start", "time_parsing"),
        ("rules", 3, "start", "overlap"),
        ("rules", 4, "weekday", "less_than_equal"),
        ("exceptions", 0, "ends_at", "end_before_start"),
        ("exceptions", 2, "kind", "enum"),
    ]
    assert error["message"].startswith("rules.1.end: ")
    # Nothing was saved: the hours are those of before.
    async with client.app[SESSIONS]() as db:
        rules = await db.execute(select(AvailabilityRule).where(AvailabilityRule.resource_id == resource_id))
        assert len(rules.scalars().all()) == len(EVERY_MORNING)

    # An overlap alone is refused too (the page checks it, a script might not).
    response = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf}, json={"rules": body["rules"][:1] + body["rules"][3:4]})
    assert response.status == 400
    assert [(e["index"], e["type"]) for e in (await response.json())["error"]["errors"]] == [(1, "overlap")]


async def test_a_bad_availability_body_from_someone_without_rights_is_just_not_found(
        client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    csrf = await login(client, demo.users["school_admin"].email)
    response = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf}, json={"rules": [{"weekday": 42}]})
    assert response.status == 404  # not a 400 that would confirm the resource exists


# --- names in bookings ------------------------------------------------------------------------------

async def test_bookings_carry_names_and_patients_see_only_their_own(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, admin_csrf, name="Khám tổng quát")
    patient1, patient2, nurse = (demo.users[h] for h in ("patient1", "patient2", "nurse"))
    csrf = await login(client, patient1.email)
    own = await book(client, csrf, resource_id, day_after_tomorrow_at(8))
    csrf = await login(client, nurse.email)
    other = await book(client, csrf, resource_id, day_after_tomorrow_at(9), subject=patient2.id)
    day = day_after_tomorrow_at(0)
    window = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}

    await login(client, demo.users["doctor"].email)
    listed = (await (await client.get(f"/api/scheduling/resources/{resource_id}/bookings", params=window)).json())
    assert [(b["subject_name"], b["resource_name"], b["created_by_name"]) for b in listed["bookings"]] == [
        (patient1.display_name, "Khám tổng quát", patient1.display_name),
        (patient2.display_name, "Khám tổng quát", nurse.display_name)]
    one = await (await client.get(f"/api/scheduling/bookings/{other['id']}")).json()
    assert (one["subject_name"], one["resource_name"]) == (patient2.display_name, "Khám tổng quát")

    await login(client, patient1.email)
    response = await client.get(f"/api/scheduling/resources/{resource_id}/bookings", params=window)
    text = await response.text()
    assert [b["id"] for b in (await response.json())["bookings"]] == [own["id"]]
    assert patient2.display_name not in text and patient2.id not in text
    assert (await client.get(f"/api/scheduling/bookings/{other['id']}")).status == 404

    await login(client, demo.users["school_admin"].email)  # another tenant's administrator
    assert (await client.get(f"/api/scheduling/resources/{resource_id}/bookings", params=window)).status == 404
    assert (await client.get(f"/api/scheduling/bookings/{own['id']}")).status == 404


# --- my bookings ---------------------------------------------------------------------------------------

async def test_my_bookings_across_resources(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    first = await open_resource(client, demo, admin_csrf, name="Khám tổng quát")
    second = await open_resource(client, demo, admin_csrf, name="Tư vấn dinh dưỡng")
    patient1, patient2, nurse = (demo.users[h] for h in ("patient1", "patient2", "nurse"))
    csrf = await login(client, patient1.email)
    a = await book(client, csrf, first, day_after_tomorrow_at(8))
    b = await book(client, csrf, second, day_after_tomorrow_at(10))
    csrf = await login(client, patient2.email)
    theirs = await book(client, csrf, first, day_after_tomorrow_at(9))
    csrf = await login(client, nurse.email)
    for_patient1 = await book(client, csrf, second, day_after_tomorrow_at(11), subject=patient1.id)

    await login(client, patient1.email)
    response = await client.get("/api/scheduling/my/bookings")
    assert response.status == 200
    text = await response.text()
    mine = (await response.json())["bookings"]
    assert [(x["id"], x["resource_name"], x["subject_name"]) for x in mine] == [
        (a["id"], "Khám tổng quát", patient1.display_name), (b["id"], "Tư vấn dinh dưỡng", patient1.display_name),
        (for_patient1["id"], "Tư vấn dinh dưỡng", patient1.display_name)]
    assert mine[2]["created_by_name"] == nurse.display_name
    assert theirs["id"] not in text and patient2.display_name not in text
    rows = await audit_rows(client, "scheduling.booking.list", patient1.id)
    assert [(r.outcome, r.target_type) for r in rows] == [(Outcome.SUCCESS, "user")]

    # A range, and a status.
    soon = datetime.now(VN)
    response = await client.get("/api/scheduling/my/bookings", params={
        "from": soon.isoformat(), "to": day_after_tomorrow_at(9).isoformat()})
    assert [x["id"] for x in (await response.json())["bookings"]] == [a["id"]]
    csrf = await login(client, patient1.email)
    await client.post(f"/api/scheduling/bookings/{a['id']}/cancel", headers={"X-CSRF-Token": csrf}, json={})
    booked = (await (await client.get("/api/scheduling/my/bookings", params={"status": "booked"})).json())["bookings"]
    cancelled = (await (await client.get("/api/scheduling/my/bookings",
                                         params={"status": "cancelled"})).json())["bookings"]
    assert [x["id"] for x in booked] == [b["id"], for_patient1["id"]]
    assert [x["id"] for x in cancelled] == [a["id"]]

    await login(client, patient2.email)
    assert [x["id"] for x in (await (await client.get("/api/scheduling/my/bookings")).json())["bookings"]] == \
        [theirs["id"]]
    # Staff see those they made for someone else; a doctor who made none sees none.
    await login(client, nurse.email)
    made = (await (await client.get("/api/scheduling/my/bookings")).json())["bookings"]
    assert [(x["id"], x["subject_name"]) for x in made] == [(for_patient1["id"], patient1.display_name)]
    await login(client, demo.users["doctor"].email)
    assert (await (await client.get("/api/scheduling/my/bookings")).json())["bookings"] == []


async def test_my_bookings_refuses_bad_queries_and_strangers(client: TestClient, demo: Demo) -> None:
    assert (await client.get("/api/scheduling/my/bookings")).status == 401
    await login(client, demo.users["patient1"].email)
    for params in ({"status": "maybe"}, {"from": "yesterday"}, {"from": "2026-01-01T00:00:00"},
                   {"from": "2026-01-01T00:00:00+07:00", "to": "2026-06-01T00:00:00+07:00"}):
        response = await client.get("/api/scheduling/my/bookings", params=params)
        assert response.status == 400, params
