"""A patient's own visit history: theirs only, across facilities, with the way into each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent
from tests.conftest import login


async def test_patients_see_their_own_visits(client: TestClient, demo: Demo,
                                             aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    csrf = await login(client, demo.users["doctor"].email)

    async def visit(patient: str) -> str:
        response = await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                     json={"patient_id": demo.users[patient].id, "send_link": False})
        assert response.status == 201
        return str((await response.json())["id"])

    finished, planned, theirs = await visit("patient1"), await visit("patient1"), await visit("patient2")
    await client.post(f"/api/clinics/encounters/{finished}/end", headers={"X-CSRF-Token": csrf})

    patient = await aiohttp_client(client.server)
    await login(patient, demo.users["patient1"].email)
    visits = (await (await patient.get("/api/clinics/my/visits")).json())["visits"]
    assert {v["id"] for v in visits} == {finished, planned}  # not patient2's
    by_id = {v["id"]: v for v in visits}
    assert by_id[finished]["summary"] == f"/visit/{finished}/summary" and by_id[finished]["join"] is None
    assert by_id[planned]["join"] == f"/visit/{planned}" and by_id[planned]["summary"] is None
    assert by_id[planned]["facility"] == demo.facility.name and by_id[planned]["doctor"] == "BS. Nguyễn Văn An"

    page = await patient.get("/my/visits")
    html = await page.text()
    assert page.status == 200 and f"/visit/{finished}/summary" in html and f'href="/visit/{planned}"' in html
    assert theirs not in html
    assert 'href="/my/visits"' in await (await patient.get("/rooms")).text()  # patients find it from home

    async with client.app[SESSIONS]() as db:
        reads = (await db.execute(select(AuditEvent.actor_id).where(AuditEvent.action == "clinic.history.read"))
                 ).scalars().all()
    assert reads == [demo.users["patient1"].id] * 2

    anonymous = await aiohttp_client(client.server)
    assert (await anonymous.get("/api/clinics/my/visits")).status == 401
    login_page = await anonymous.get("/my/visits", allow_redirects=False)
    assert login_page.status == 302 and login_page.headers["Location"].startswith("/login")
