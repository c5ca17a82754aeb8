"""iCalendar feeds: secret, revocable URLs, parsed with the icalendar library; only what the owner may see."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import icalendar
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.demo import Demo
from server.keys import SESSIONS
from server.logs import redact
from server.records.audit import AuditEvent, Outcome
from server.scheduling.models import CalendarFeed
from tests.conftest import login
from tests.integration.scheduling_helpers import book, day_after_tomorrow_at, open_resource


async def fetch(anonymous: TestClient, url: str) -> tuple[int, icalendar.Calendar | None]:
    response = await anonymous.get(urlsplit(url).path)
    if response.status != 200:
        return response.status, None
    assert response.content_type == "text/calendar"
    return 200, icalendar.Calendar.from_ical(await response.read())


def uids(calendar: icalendar.Calendar) -> set[str]:
    return {str(event["UID"]) for event in calendar.walk("VEVENT")}


async def test_personal_and_resource_feeds(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, csrf)
    mine = await book(client, csrf, resource_id, day_after_tomorrow_at(9), demo.users["patient1"].id)
    theirs = await book(client, csrf, resource_id, day_after_tomorrow_at(10), demo.users["patient2"].id)

    patient = await aiohttp_client(client.server)
    patient_csrf = await login(patient, demo.users["patient1"].email)
    created = await patient.post("/api/scheduling/feeds", headers={"X-CSRF-Token": patient_csrf}, json={})
    assert created.status == 201
    feed = await created.json()
    token = urlsplit(feed["url"]).path.removeprefix("/ical/").removesuffix(".ics")
    assert len(token) >= 40
    async with client.app[SESSIONS]() as db:
        stored = (await db.execute(select(CalendarFeed.token_hash))).scalars().all()
    assert token not in stored  # only the hash is kept

    anonymous = await aiohttp_client(client.server)
    status, calendar = await fetch(anonymous, feed["url"])
    assert status == 200 and calendar is not None
    assert uids(calendar) == {f"{mine['id']}@caunoi"}  # not patient2's
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == day_after_tomorrow_at(9)

    # A patient cannot make a feed of the doctor's whole calendar.
    refused = await patient.post("/api/scheduling/feeds", headers={"X-CSRF-Token": patient_csrf},
                                 json={"resource_id": resource_id})
    assert refused.status == 404
    # Staff can.
    staff = await client.post("/api/scheduling/feeds", headers={"X-CSRF-Token": csrf},
                              json={"resource_id": resource_id})
    status, calendar = await fetch(anonymous, (await staff.json())["url"])
    assert calendar is not None and uids(calendar) == {f"{mine['id']}@caunoi", f"{theirs['id']}@caunoi"}

    # Cancelling shows up as STATUS:CANCELLED (so calendar apps drop it); revoking kills the URL.
    await client.post(f"/api/scheduling/bookings/{mine['id']}/cancel", headers={"X-CSRF-Token": csrf}, json={})
    status, calendar = await fetch(anonymous, feed["url"])
    assert calendar is not None
    assert [str(e["STATUS"]) for e in calendar.walk("VEVENT")] == ["CANCELLED"]
    other = await aiohttp_client(client.server)
    other_csrf = await login(other, demo.users["patient2"].email)
    assert (await other.delete(f"/api/scheduling/feeds/{feed['id']}", headers={"X-CSRF-Token": other_csrf})
            ).status == 404  # not theirs
    assert (await patient.delete(f"/api/scheduling/feeds/{feed['id']}", headers={"X-CSRF-Token": patient_csrf})
            ).status == 200
    assert (await fetch(anonymous, feed["url"]))[0] == 404
    assert (await fetch(anonymous, "/ical/" + "x" * 43 + ".ics"))[0] == 404

    async with client.app[SESSIONS]() as db:
        reads = (await db.execute(select(AuditEvent.outcome).where(AuditEvent.action == "scheduling.feed.read"))
                 ).scalars().all()
        writes = (await db.execute(select(AuditEvent.action).where(
            AuditEvent.action.in_(["scheduling.feed.create", "scheduling.feed.revoke"]),
            AuditEvent.outcome == Outcome.DENIED))).scalars().all()
    assert sorted(reads) == sorted([Outcome.SUCCESS] * 3 + [Outcome.DENIED] * 2)
    # The refused creation and revocation are on record too (not rolled back with the request).
    assert sorted(writes) == ["scheduling.feed.create", "scheduling.feed.revoke"]


def test_feed_tokens_are_redacted_from_the_access_log() -> None:
    assert redact("/ical/abcdefsecret.ics") == "/ical/…"
    assert redact("/rooms/r-1") == "/rooms/r-1"
