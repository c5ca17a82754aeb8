"""Shared by the scheduling tests: a resource open every day 07:30–11:30 (Vietnam), and booking it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from server.demo import Demo

VN = ZoneInfo("Asia/Ho_Chi_Minh")
EVERY_MORNING = [{"weekday": d, "start": "07:30", "end": "11:30"} for d in range(7)]


def day_after_tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = datetime.now(VN).date() + timedelta(days=2)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=VN)


async def open_resource(client: TestClient, demo: Demo, csrf: str, name: str = "BS. An — khám từ xa") -> str:
    response = await client.post(f"/api/scheduling/tenants/{demo.facility.id}/resources",
                                 headers={"X-CSRF-Token": csrf},
                                 json={"kind": "practitioner", "name": name, "slot_minutes": 30,
                                       "min_notice_minutes": 0, "user_id": demo.users["doctor"].id})
    assert response.status == 201, await response.text()
    resource_id: str = (await response.json())["id"]
    response = await client.put(f"/api/scheduling/resources/{resource_id}/availability",
                                headers={"X-CSRF-Token": csrf}, json={"rules": EVERY_MORNING})
    assert response.status == 200
    return resource_id


async def book(client: TestClient, csrf: str, resource_id: str, start: datetime, subject: str | None = None
               ) -> dict[str, object]:
    body: dict[str, object] = {"start": start.isoformat()}
    if subject:
        body["subject_user_id"] = subject
    response = await client.post(f"/api/scheduling/resources/{resource_id}/bookings",
                                 headers={"X-CSRF-Token": csrf}, json=body)
    assert response.status == 201, await response.text()
    result: dict[str, object] = await response.json()
    return result
