"""Fixtures shared by every suite: settings, real databases, a seeded app, logged-in clients."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aioice.ice
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.db.engine import create_engine, session_factory
from server.db.migrate import upgrade
from server.demo import DEMO_PASSWORD, Demo, seed_demo
from server.keys import PLUGINS, SESSIONS
from server.plugins import load_plugins
from server.settings import Settings

POSTGRES_ADMIN_DSN = os.environ.get("CAUNOI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CAUNOI_TEST_REDIS", "redis://127.0.0.1:6379/15")
TEST_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(autouse=True, scope="session")
def _ice_on_loopback_only() -> Iterator[None]:
    """Outside a private network namespace, aiortc may gather only on 127.0.0.1.

    aioice would otherwise offer this machine's other addresses and send connectivity checks to
    them (the network rule in ../shared/testing/webrtc-in-a-namespace.md).
    """
    if os.environ.get("CAUNOI_NETNS"):
        yield
        return
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
    yield
    aioice.ice.get_host_addresses = original


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'caunoi.sqlite3'}"


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"caunoi_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test that uses this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'caunoi.sqlite3'}"
    else:
        async with fresh_postgres_database() as url:
            yield url


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "log_format": "text",
        "ws_heartbeat_seconds": 5.0,
        # The reminder job is driven explicitly by its tests (tests/integration/test_reminders.py).
        "reminders_enabled": False,
        "retention_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url)


async def seed(app: web.Application) -> Demo:
    async with app[SESSIONS].begin() as db:
        demo = await seed_demo(db, app[PLUGINS])
    assert demo is not None
    return demo


@pytest.fixture
async def app_and_demo(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings
) -> tuple[TestClient, Demo]:
    client = await aiohttp_client(create_app(settings))
    demo = await seed(client.app)
    return client, demo


@pytest.fixture
async def client(app_and_demo: tuple[TestClient, Demo]) -> TestClient:
    return app_and_demo[0]


@pytest.fixture
def demo(app_and_demo: tuple[TestClient, Demo]) -> Demo:
    return app_and_demo[1]


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


async def page_csrf(client: TestClient, path: str = "/login") -> str:
    response = await client.get(path)
    match = _CSRF_META.search(await response.text())
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def login(client: TestClient, email: str, password: str = DEMO_PASSWORD) -> str:
    """Log in through the form like a browser; returns the CSRF token of the new session."""
    token = await page_csrf(client, "/login")
    response = await client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                                 allow_redirects=False)
    assert response.status == 302, f"login as {email} failed with {response.status}"
    return await page_csrf(client, "/rooms")


@pytest.fixture
def login_as(client: TestClient) -> Callable[[str], Awaitable[str]]:
    async def _login(email: str) -> str:
        return await login(client, email)

    return _login


async def new_client(aiohttp_client: Callable[..., Awaitable[TestClient]], app_client: TestClient) -> TestClient:
    """A second browser (own cookie jar) on the same running server."""
    return await aiohttp_client(app_client.server)


def random_secret() -> str:
    return secrets.token_urlsafe(40)


__all__ = ["DEMO_PASSWORD", "create_engine", "load_plugins", "login", "make_settings", "page_csrf", "seed",
           "session_factory", "upgrade"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """aiortc's decoder threads are not daemons: one left behind by a receiver that was never stopped
    keeps the interpreter alive after the last test, and the run never ends. Stop any such thread with
    aiortc's own stop signal (None on its input queue) and say so, so that the leak stays visible."""
    import threading

    leaked = [t for t in threading.enumerate() if t.name in ("audio-decoder", "video-decoder") and t.is_alive()]
    for thread in leaked:
        args = getattr(thread, "_args", ())
        if len(args) >= 2 and hasattr(args[1], "put"):
            args[1].put(None)
    if leaked:
        print(f"\nnote: stopped {len(leaked)} aiortc decoder thread(s) left running by an unclosed receiver")
