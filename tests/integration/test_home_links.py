"""The home page leads each role to its clinic pages (nothing is reachable only by typing a URL)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from server.demo import Demo
from tests.conftest import login


@pytest.mark.parametrize(("role", "wanted", "not_wanted"), [
    ("facility_admin", ["dashboard", "consultations", "staff"], ["station", "/my/visits"]),
    ("doctor", ["dashboard", "consultations", "station"], ["staff", "/my/visits"]),
    ("nurse", ["dashboard", "consultations", "station"], ["staff", "/my/visits"]),
    ("patient1", ["/my/visits"], ["dashboard", "station", "staff", "consultations"]),
    ("teacher", [], ["dashboard", "station", "staff", "consultations", "/my/visits"]),
])
async def test_home_page_links(role: str, wanted: list[str], not_wanted: list[str], client: TestClient,
                               demo: Demo) -> None:
    await login(client, demo.users[role].email)
    html = await (await client.get("/rooms")).text()
    facility = demo.facility.id

    def link(name: str) -> str:
        return f'href="{name}"' if name.startswith("/") else f'href="/clinic/{facility}/{name}"'
    for name in wanted:
        assert link(name) in html, f"{role}: no link to {name}"
    for name in not_wanted:
        assert link(name) not in html, f"{role}: a link to {name}"
