"""The audit log page and its CSV export: who may see it, which rows, filters, paging, Vietnamese first."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from server.keys import SESSIONS
from server.records.audit import AuditContext, AuditEvent, Outcome, audit_row
from tests.conftest import login
from tests.integration.fhir_support import World, add_audit_row, audit_rows, start_app

Client = Callable[..., Awaitable[TestClient]]
ROW_ID = re.compile(r'<tr class="audit-row" data-id="([0-9a-f-]+)">')
T0 = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)  # 2 March, 01:00 in Hồ Chí Minh City


@pytest.fixture
async def app_world(aiohttp_client: Client, tmp_path: Path, database_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, database_url)


@pytest.fixture
async def sqlite_world(aiohttp_client: Client, tmp_path: Path, sqlite_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, sqlite_url)


async def seeded(client: TestClient, world: World) -> dict[str, AuditEvent]:
    u = world.users
    return {
        "read": await add_audit_row(client, T0, action="fhir.read", actor=u["doctor"], role="doctor",
                                    target_type="Patient", target_id=u["patient1"].id, tenant=world.facility),
        "join": await add_audit_row(client, T0 - timedelta(hours=2), action="room.join", actor=u["nurse"],
                                    role="nurse", target_type="room", target_id="r-1", tenant=world.facility),
        "denied": await add_audit_row(client, T0 + timedelta(days=3), action="room.token", outcome=Outcome.DENIED,
                                      actor=u["patient2"], role="patient", target_id="r-2", tenant=world.facility,
                                      user_agent="=HYPERLINK(\"http://evil.example\")"),
        "school": await add_audit_row(client, T0, action="room.join", actor=u["teacher"], role="teacher",
                                      tenant=world.school),
        "other": await add_audit_row(client, T0, action="fhir.read", actor=u["other_doctor"], role="doctor",
                                     target_type="Patient", target_id=u["patient3"].id, tenant=world.other),
    }


async def shown(client: TestClient, rows: dict[str, AuditEvent], **filters: str) -> set[str]:
    response = await client.get("/admin/audit?" + urlencode({"date_to": "2026-03-31", **filters}))
    assert response.status == 200, await response.text()
    found = set(ROW_ID.findall(await response.text()))
    return {name for name, row in rows.items() if row.id in found}


@pytest.mark.parametrize("role", ["doctor", "nurse", "patient1", "teacher", "student1", "other_doctor"])
async def test_only_administrators_see_the_page(sqlite_world: tuple[TestClient, World], role: str) -> None:
    client, world = sqlite_world
    await login(client, world.users[role].email)
    for path in ("/admin/audit", "/admin/audit.csv"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 404, f"{role} {path}"
    denials = await audit_rows(client, actor_id=world.users[role].id, outcome=Outcome.DENIED)
    assert [r.action for r in denials] == ["audit.view", "audit.export"]


async def test_anonymous_is_sent_to_log_in(client: TestClient) -> None:
    for path in ("/admin/audit", "/admin/audit.csv"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302 and response.headers["Location"].startswith("/login?next=/admin/audit")


async def test_each_admin_sees_their_tenants_rows(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    rows = await seeded(client, world)
    for role, expected in [("facility_admin", {"read", "join", "denied"}), ("school_admin", {"school"}),
                           ("other_admin", {"other"}), ("platform_admin", set(rows))]:
        await login(client, world.users[role].email)
        assert await shown(client, rows) == expected, role


async def test_search_filters(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    rows = await seeded(client, world)
    u = world.users
    await login(client, u["facility_admin"].email)
    assert await shown(client, rows, actor=u["doctor"].email) == {"read"}
    assert await shown(client, rows, actor=u["nurse"].id) == {"join"}
    assert await shown(client, rows, actor="nobody@example.org") == set()
    assert await shown(client, rows, target=u["patient1"].id) == {"read"}
    assert await shown(client, rows, target=u["patient1"].email) == {"read"}
    assert await shown(client, rows, target=u["patient3"].id) == set()  # facility B's patient: not this admin's
    assert await shown(client, rows, action="room.join") == {"join"}
    assert await shown(client, rows, outcome="denied") == {"denied"}
    # Dates are local days: T0 is 2 March in Vietnam, "join" two hours earlier is still 1 March.
    assert await shown(client, rows, date_from="2026-03-02", date_to="2026-03-02") == {"read"}
    assert await shown(client, rows, date_from="2026-03-01", date_to="2026-03-01") == {"join"}
    assert await shown(client, rows, date_from="2026-03-03") == {"denied"}
    assert await shown(client, rows, action="fhir.read", outcome="success", actor=u["doctor"].email) == {"read"}


async def test_bad_input_says_what_is_wrong(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    await login(client, world.users["facility_admin"].email)
    response = await client.get("/admin/audit?date_from=01/03/2026")
    assert response.status == 400 and "NNNN-TT-NN" in await response.text()
    response = await client.get("/admin/audit?outcome=maybe")
    assert response.status == 400
    assert (await client.get("/admin/audit.csv?date_to=tomorrow")).status == 400


async def test_paging(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    for i in range(120):
        await add_audit_row(client, T0 + timedelta(minutes=i), action="bulk.test", tenant=world.facility)
    await login(client, world.users["facility_admin"].email)
    seen: list[str] = []
    path: str | None = "/admin/audit?action=bulk.test"
    pages = 0
    while path:
        page = await (await client.get(path)).text()
        seen += ROW_ID.findall(page)
        pages += 1
        match = re.search(r'<a href="([^"]+)" rel="next">', page)
        path = match.group(1).replace("&amp;", "&") if match else None
    assert pages == 3 and len(seen) == 120 and len(set(seen)) == 120
    assert ">120<" in page


async def test_csv_export(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    rows = await seeded(client, world)
    await login(client, world.users["facility_admin"].email)
    response = await client.get("/admin/audit.csv?" + urlencode({"date_to": "2026-03-31"}))
    assert response.status == 200 and response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = (await response.read()).decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert {r["action"] for r in table} == {"fhir.read", "room.join", "room.token"}
    assert {r["tenant_id"] for r in table} == {world.facility.id}
    read = next(r for r in table if r["action"] == "fhir.read")
    assert read["actor_id"] == world.users["doctor"].id and read["target_id"] == world.users["patient1"].id
    assert read["time_utc"] == "2026-03-01T18:00:00+00:00" and read["outcome"] == "success"
    assert read["ip"] == "192.0.2.7" and read["request_id"] == "req-test-0001"
    denied = next(r for r in table if r["action"] == "room.token")
    assert denied["user_agent"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
    filtered = await client.get("/admin/audit.csv?" + urlencode({"outcome": "denied", "date_to": "2026-03-31"}))
    assert [r["action"] for r in csv.DictReader(io.StringIO((await filtered.read()).decode("utf-8-sig")))] \
        == ["room.token"]
    [export, _] = await audit_rows(client, action="audit.export")
    assert export.actor_id == world.users["facility_admin"].id and export.outcome == Outcome.SUCCESS
    assert export.tenant_id == world.facility.id
    assert rows["other"].id not in text


async def test_viewing_is_audited_and_vietnamese_first(sqlite_world: tuple[TestClient, World]) -> None:
    client, world = sqlite_world
    await login(client, world.users["facility_admin"].email)
    page = await (await client.get("/admin/audit")).text()
    assert "Nhật ký truy cập" in page and "Xuất tệp CSV" in page
    await seeded(client, world)
    page = await (await client.get("/admin/audit?action=fhir.read")).text()
    # People are shown by e-mail, actors and targets alike, rather than by opaque ids.
    assert world.users["doctor"].email in page and world.users["patient1"].email in page
    [view, _] = await audit_rows(client, action="audit.view")
    assert view.actor_id == world.users["facility_admin"].id and view.tenant_id == world.facility.id
    client.session.cookie_jar.update_cookies({"caunoi_lang": "en"})
    page = await (await client.get("/admin/audit")).text()
    assert "Audit log" in page and "Export CSV" in page


async def test_csv_export_streams_every_row(sqlite_world: tuple[TestClient, World]) -> None:
    """More rows than one export batch: none lost or repeated at the batch boundaries."""
    client, world = sqlite_world
    async with client.app[SESSIONS].begin() as db:
        for i in range(1234):
            row = audit_row(AuditContext(), "bulk.export", Outcome.SUCCESS, target_id=f"t-{i}",
                            tenant_id=world.facility.id)
            row.at = T0 + timedelta(seconds=i)
            db.add(row)
    await login(client, world.users["facility_admin"].email)
    response = await client.get("/admin/audit.csv?action=bulk.export")
    table = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    assert len(table) == 1234 and len({r["target_id"] for r in table}) == 1234
    assert table[0]["target_id"] == "t-1233"  # newest first, like the page
