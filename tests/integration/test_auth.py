"""Accounts over real HTTP: login, sessions, CSRF, logout, language, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.app import create_app
from server.auth.sessions import COOKIE
from server.demo import DEMO_PASSWORD, Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from tests.conftest import _CSRF_META as _CSRF
from tests.conftest import login, make_settings, page_csrf, seed


@pytest.fixture
async def any_db_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, database_url: str
) -> tuple[TestClient, Demo]:
    client = await aiohttp_client(create_app(make_settings(tmp_path, database_url)))
    return client, await seed(client.app)


async def audit_rows(client: TestClient, action: str) -> list[AuditEvent]:
    async with client.app[SESSIONS]() as db:
        rows = await db.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.at))
        return list(rows.scalars())


async def test_login_sets_a_safe_session_cookie_and_audits(any_db_client: tuple[TestClient, Demo]) -> None:
    client, demo = any_db_client
    csrf = await page_csrf(client)
    response = await client.post("/login", data={"email": "BACSI@tramyte.demo ", "password": DEMO_PASSWORD,
                                                 "csrf_token": csrf}, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/rooms"
    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # served over plain http in this test
    me = await (await client.get("/api/me")).json()
    assert me["email"] == "bacsi@tramyte.demo"
    assert me["roles"] == [{"tenant_id": demo.facility.id, "tenant": demo.facility.name, "role": "doctor"}]
    [row] = await audit_rows(client, "auth.login")
    assert row.outcome == Outcome.SUCCESS and row.actor_id == demo.users["doctor"].id
    assert row.request_id and row.ip


async def test_wrong_password_is_refused_and_audited(any_db_client: tuple[TestClient, Demo]) -> None:
    client, _ = any_db_client
    csrf = await page_csrf(client)
    response = await client.post("/login", data={"email": "bacsi@tramyte.demo", "password": "wrong",
                                                 "csrf_token": csrf}, allow_redirects=False)
    assert response.status == 401
    assert "Sai thư điện tử hoặc mật khẩu" in await response.text()  # Vietnamese by default
    assert (await client.get("/api/me")).status == 401
    [row] = await audit_rows(client, "auth.login")
    assert row.outcome == Outcome.FAILURE and row.actor_id is None


async def test_unknown_email_gets_the_same_answer(client: TestClient) -> None:
    csrf = await page_csrf(client)
    response = await client.post("/login", data={"email": "nobody@x.vn", "password": "x", "csrf_token": csrf},
                                 allow_redirects=False)
    assert response.status == 401


async def test_login_without_csrf_token_is_refused(client: TestClient) -> None:
    await page_csrf(client)
    response = await client.post("/login", data={"email": "bacsi@tramyte.demo", "password": DEMO_PASSWORD},
                                 allow_redirects=False)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "csrf_failed"


async def test_csrf_token_of_another_session_is_refused(
    client: TestClient, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    other = await aiohttp_client(client.server)
    foreign_token = await page_csrf(other)
    await page_csrf(client)
    response = await client.post("/login", data={"email": "bacsi@tramyte.demo", "password": DEMO_PASSWORD,
                                                 "csrf_token": foreign_token}, allow_redirects=False)
    assert response.status == 403


async def test_session_id_rotates_at_login(client: TestClient, demo: Demo) -> None:
    await login(client, demo.users["nurse"].email)
    first = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    await login(client, demo.users["doctor"].email)
    second = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    assert first != second
    # The old session is gone from the server, not only from this browser.
    other = TestClient(client.server)
    other.session.cookie_jar.update_cookies({COOKIE: first})
    assert (await other.get("/api/me")).status == 401
    await other.close()


async def test_logout_ends_the_session(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["doctor"].email)
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    response = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/login"
    assert (await client.get("/api/me")).status == 401
    replay = TestClient(client.server)
    replay.session.cookie_jar.update_cookies({COOKIE: token})
    assert (await replay.get("/api/me")).status == 401
    await replay.close()


async def test_logout_needs_csrf(client: TestClient, demo: Demo) -> None:
    await login(client, demo.users["doctor"].email)
    assert (await client.post("/logout", allow_redirects=False)).status == 403
    assert (await client.get("/api/me")).status == 200


async def test_secure_cookie_when_served_over_https(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url, public_url="https://kham.example.vn")
    client = await aiohttp_client(create_app(settings))
    await seed(client.app)
    page = await client.get("/login")
    pre = next(v for v in page.headers.getall("Set-Cookie") if v.startswith("caunoi_pre="))
    assert "Secure" in pre
    csrf = _CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    # The test client speaks plain http, so it would withhold a Secure cookie: send it by hand.
    response = await client.post("/login", data={"email": "bacsi@tramyte.demo", "password": DEMO_PASSWORD,
                                                 "csrf_token": csrf}, allow_redirects=False,
                                 headers={"Cookie": pre.split(";")[0]})
    assert response.status == 302
    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith(COOKIE + "="))
    assert "Secure" in cookie
    assert "max-age" in response.headers["Strict-Transport-Security"]


async def test_pages_are_vietnamese_first_with_an_english_switch(client: TestClient) -> None:
    page = await (await client.get("/login")).text()
    assert '<html lang="vi">' in page and "Đăng nhập" in page
    response = await client.get("/lang/en?next=/login")
    assert response.status == 200  # followed the redirect
    page = await response.text()
    assert '<html lang="en">' in page and "Log in" in page and "Đăng nhập" not in page


async def test_language_switch_refuses_open_redirects(client: TestClient) -> None:
    for target in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        response = await client.get("/lang/vi", params={"next": target}, allow_redirects=False)
        assert response.headers["Location"] == "/", target
    assert (await client.get("/lang/fr", allow_redirects=False)).status == 404


async def test_security_headers_on_pages(client: TestClient) -> None:
    response = await client.get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert len(response.headers["X-Request-ID"]) >= 8


async def test_rooms_page_requires_login(client: TestClient) -> None:
    response = await client.get("/rooms", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"].startswith("/login")
