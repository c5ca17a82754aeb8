"""Authorization matrix: every route × every role × both tenants. Outsiders get 404 (never a hint
that the thing exists) and each denial is audited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.rooms.access import rooms_of
from server.rooms.models import RoomKind
from tests.conftest import login

ROLES = ["anonymous", "facility_admin", "doctor", "nurse", "patient1", "patient2", "school_admin", "teacher",
         "student1"]

# Who may do what; everyone else logged in gets 404, anonymous gets 401 (API) or a login redirect (page).
CONSULTATION_MEMBERS = {"doctor", "nurse", "patient1"}
CLASS_MEMBERS = {"teacher", "student1"}
FACILITY_STAFF = {"facility_admin", "doctor", "nurse"}
SCHOOL_STAFF = {"school_admin", "teacher"}


async def targets(client: TestClient, demo: Demo) -> dict[str, str]:
    async with client.app[SESSIONS]() as db:
        consultation = next(r for r, _ in await rooms_of(db, demo.users["patient1"].id))
        klass = next(r for r, _ in await rooms_of(db, demo.users["student1"].id) if r.kind == RoomKind.CLASS)
    return {"consultation": consultation.name, "class": klass.name, "facility": demo.facility.id,
            "school": demo.school.id}


def expected(role: str, allowed: set[str], anonymous: int) -> int:
    if role == "anonymous":
        return anonymous
    return 200 if role in allowed else 404


@pytest.mark.parametrize("role", ROLES)
async def test_route_matrix(
    role: str, client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    t = await targets(client, demo)
    browser = await aiohttp_client(client.server)
    csrf = "" if role == "anonymous" else await login(browser, demo.users[role].email)
    headers = {"X-CSRF-Token": csrf}

    async def denied_count() -> int:
        async with client.app[SESSIONS]() as db:
            return int((await db.execute(select(func.count()).select_from(AuditEvent)
                                         .where(AuditEvent.outcome == Outcome.DENIED))).scalar_one())

    cases: list[tuple[str, str, int]] = [
        # Anonymous POSTs have no session to bind a CSRF token to: refused by the CSRF check (403).
        ("POST", f"/api/rooms/{t['consultation']}/token", expected(role, CONSULTATION_MEMBERS, 403)),
        ("POST", f"/api/rooms/{t['class']}/token", expected(role, CLASS_MEMBERS, 403)),
        ("POST", "/api/rooms/r-does-not-exist/token", expected(role, set(), 403)),
        ("GET", f"/rooms/{t['consultation']}", expected(role, CONSULTATION_MEMBERS, 302)),
        ("GET", f"/rooms/{t['class']}", expected(role, CLASS_MEMBERS, 302)),
        ("GET", f"/api/clinics/{t['facility']}/consultations", expected(role, FACILITY_STAFF, 401)),
        ("GET", f"/api/clinics/{t['school']}/consultations", expected(role, set(), 401)),
        ("GET", f"/api/schools/{t['school']}/classes", expected(role, SCHOOL_STAFF, 401)),
        ("GET", f"/api/schools/{t['facility']}/classes", expected(role, set(), 401)),
        ("GET", "/api/me", 401 if role == "anonymous" else 200),
        ("GET", "/api/rooms", 401 if role == "anonymous" else 200),
        ("GET", "/rooms", 302 if role == "anonymous" else 200),
    ]
    for method, path, status in cases:
        before = await denied_count()
        response = await browser.request(method, path, headers=headers, allow_redirects=False)
        assert response.status == status, f"{role} {method} {path}: {response.status}, expected {status}"
        if status == 404:
            assert await denied_count() == before + 1, f"{role} {method} {path}: denial not audited"
            if path.startswith("/api/"):
                assert (await response.json())["error"]["code"].endswith("not_found")


async def test_room_list_shows_only_own_rooms(client: TestClient, demo: Demo) -> None:
    await login(client, demo.users["patient2"].email)
    rooms = (await (await client.get("/api/rooms")).json())["rooms"]
    assert [r["title"] for r in rooms] == [f"Khám từ xa · {demo.users['patient2'].display_name}"]
    page = await (await client.get("/rooms")).text()
    assert demo.users["patient2"].display_name in page
    assert demo.users["patient1"].display_name not in page


async def test_token_call_needs_csrf(client: TestClient, demo: Demo) -> None:
    await login(client, demo.users["doctor"].email)
    t = await targets(client, demo)
    response = await client.post(f"/api/rooms/{t['consultation']}/token")
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "csrf_failed"


async def test_token_grants_follow_the_room_role(client: TestClient, demo: Demo) -> None:
    t = await targets(client, demo)
    csrf = await login(client, demo.users["doctor"].email)
    grant = await (await client.post(f"/api/rooms/{t['consultation']}/token", headers={"X-CSRF-Token": csrf})).json()
    assert grant["grants"] == {"can_publish": True, "can_subscribe": True, "room_admin": True}
    assert grant["identity"] == demo.users["doctor"].id
    csrf = await login(client, demo.users["patient1"].email)
    grant = await (await client.post(f"/api/rooms/{t['consultation']}/token", headers={"X-CSRF-Token": csrf})).json()
    assert grant["grants"] == {"can_publish": True, "can_subscribe": True, "room_admin": False}
