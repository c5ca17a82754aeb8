"""Recurring sessions over HTTP: a class timetable, single-session changes, the .ics export."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import icalendar
from aiohttp.test_utils import TestClient

from server.demo import Demo
from tests.conftest import login

VN = ZoneInfo("Asia/Ho_Chi_Minh")


async def class_resource(client: TestClient, demo: Demo, csrf: str) -> str:
    response = await client.post(f"/api/scheduling/tenants/{demo.school.id}/resources",
                                 headers={"X-CSRF-Token": csrf},
                                 json={"kind": "class", "name": "Lớp 5A", "capacity": 30})
    assert response.status == 201
    resource_id: str = (await response.json())["id"]
    return resource_id


async def test_timetable_with_a_cancelled_and_a_moved_session(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    admin_csrf = await login(client, demo.users["school_admin"].email)
    resource_id = await class_resource(client, demo, admin_csrf)
    teacher = await aiohttp_client(client.server)
    csrf = await login(teacher, demo.users["teacher"].email)
    created = await teacher.post(f"/api/scheduling/resources/{resource_id}/series", headers={"X-CSRF-Token": csrf},
                                 json={"title": "Toán 5A", "rrule": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8",
                                       "first_start": "2026-12-07T07:30", "duration_minutes": 40})
    assert created.status == 201, await created.text()
    series_id = (await created.json())["id"]
    window = {"from": "2026-12-01T00:00:00+07:00", "to": "2027-01-15T00:00:00+07:00"}
    url = f"/api/scheduling/resources/{resource_id}/occurrences"
    occurrences = (await (await teacher.get(url, params=window)).json())["occurrences"]
    assert len(occurrences) == 8
    assert datetime.fromisoformat(occurrences[0]["start"]).astimezone(VN) == datetime(2026, 12, 7, 7, 30, tzinfo=VN)

    # The teacher cancels the second session and moves the third to the afternoon.
    second, third = occurrences[1]["original_start"], occurrences[2]["original_start"]
    response = await teacher.post(f"/api/scheduling/series/{series_id}/cancel-occurrence",
                                  headers={"X-CSRF-Token": csrf}, json={"original_start": second, "note": "Nghỉ lễ"})
    assert response.status == 200
    afternoon = datetime(2026, 12, 14, 14, 0, tzinfo=VN)
    response = await teacher.post(f"/api/scheduling/series/{series_id}/move-occurrence",
                                  headers={"X-CSRF-Token": csrf},
                                  json={"original_start": third, "new_start": afternoon.isoformat()})
    assert response.status == 200
    not_a_session = await teacher.post(f"/api/scheduling/series/{series_id}/cancel-occurrence",
                                       headers={"X-CSRF-Token": csrf},
                                       json={"original_start": "2026-12-08T00:30:00+00:00"})
    assert not_a_session.status == 422

    # A student sees the timetable; the changes are in it.
    student = await aiohttp_client(client.server)
    await login(student, demo.users["student1"].email)
    seen = (await (await student.get(url, params=window)).json())["occurrences"]
    assert [o["cancelled"] for o in seen].count(True) == 1
    moved = next(o for o in seen if o["moved"])
    assert datetime.fromisoformat(moved["start"]) == afternoon.astimezone(UTC)
    # …but cannot change it.
    student_csrf = await login(student, demo.users["student1"].email)
    refused = await student.post(f"/api/scheduling/series/{series_id}/cancel-occurrence",
                                 headers={"X-CSRF-Token": student_csrf}, json={"original_start": third})
    assert refused.status == 404

    # The .ics export carries RRULE, the EXDATE and the moved session (RECURRENCE-ID).
    ics = await teacher.get(f"/api/scheduling/series/{series_id}.ics")
    assert ics.content_type == "text/calendar"
    calendar = icalendar.Calendar.from_ical(await ics.read())
    events = calendar.walk("VEVENT")
    master = next(e for e in events if "RRULE" in e)
    assert master["RRULE"]["FREQ"] == ["WEEKLY"] and master["RRULE"]["COUNT"] == [8]
    assert master["EXDATE"].dts[0].dt == datetime.fromisoformat(second)
    override = next(e for e in events if "RECURRENCE-ID" in e)
    assert override.decoded("RECURRENCE-ID") == datetime.fromisoformat(third)
    assert override.decoded("DTSTART") == afternoon.astimezone(UTC)

    # Another tenant sees none of it.
    outsider = await aiohttp_client(client.server)
    await login(outsider, demo.users["doctor"].email)
    assert (await outsider.get(url, params=window)).status == 404
    assert (await outsider.get(f"/api/scheduling/series/{series_id}.ics")).status == 404


async def test_endless_or_invalid_rules_are_refused(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["school_admin"].email)
    resource_id = await class_resource(client, demo, csrf)
    for rule, first_start in [("FREQ=DAILY", "2026-12-07T07:30"), ("FREQ=NEVER;COUNT=2", "2026-12-07T07:30"),
                              ("FREQ=DAILY;COUNT=2", "2026-12-07T07:30:00+07:00")]:
        response = await client.post(f"/api/scheduling/resources/{resource_id}/series",
                                     headers={"X-CSRF-Token": csrf},
                                     json={"title": "x", "rrule": rule, "first_start": first_start,
                                           "duration_minutes": 40})
        assert response.status == 400, rule
        assert (await response.json())["error"]["code"] in ("invalid_rrule", "invalid_body")
