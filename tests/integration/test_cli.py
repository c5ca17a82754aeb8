"""The installed ``caunoi`` console script, run as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from clinics.demo import HOSPITAL_PEOPLE
from server.auth.tokens import Grants, InvalidToken, verify_room_token
from server.demo import DEMO_PASSWORD, PEOPLE

CAUNOI = Path(sys.executable).parent / "caunoi"
COMMAND_TIMEOUT = 120  # seconds; migrate + demo hash twelve passwords
STARTUP_LIMIT = 5.0  # seconds from spawning `caunoi serve` to a /healthz answer
STOP_LIMIT = 10.0  # seconds from SIGINT to exit


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The current environment without any CAUNOI_ variable (pydantic reads them case-insensitively)."""
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("CAUNOI_")}
    env["CAUNOI_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def caunoi(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CAUNOI), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, check=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_console_script_is_installed() -> None:
    assert CAUNOI.is_file() and os.access(CAUNOI, os.X_OK), f"{CAUNOI} is not an executable"


# --- caunoi token -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "grants"),
    [
        (["--publish"], Grants(can_publish=True)),
        (["--subscribe"], Grants(can_subscribe=True)),
        (["--publish", "--subscribe", "--admin"],
         Grants(can_publish=True, can_subscribe=True, room_admin=True)),
        ([], Grants()),
    ],
    ids=["publish", "subscribe", "all", "none"],
)
def test_token_is_signed_with_the_stored_secret(tmp_path: Path, flags: list[str], grants: Grants) -> None:
    data_dir = tmp_path / "data"
    before = int(time.time())
    result = caunoi(tmp_path, cli_env(data_dir), "token", "--room", "r1", "--identity", "alice", *flags,
                    "--ttl", "60")
    after = int(time.time())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    token = lines[0].strip()
    assert token.count(".") == 2
    assert "expires" in result.stderr

    secret_file = data_dir / "secret_key"
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    assert secret_file.stat().st_mode & 0o077 == 0, "the secret must be readable by its owner only"

    claims = verify_room_token(secret, token)
    assert claims.room == "r1"
    assert claims.identity == "alice"
    assert claims.name == "alice"
    assert claims.grants == grants
    assert claims.exp - claims.iat == 60
    assert before <= claims.iat <= after

    with pytest.raises(InvalidToken):
        verify_room_token(secret[::-1], token)


def test_token_reuses_the_stored_secret(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(data_dir)
    first = caunoi(tmp_path, env, "token", "--room", "r1", "--identity", "alice", "--publish")
    secret = (data_dir / "secret_key").read_text()
    second = caunoi(tmp_path, env, "token", "--room", "r2", "--identity", "bob", "--name", "Bảo",
                    "--subscribe")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (data_dir / "secret_key").read_text() == secret
    assert verify_room_token(secret.strip(), first.stdout.strip()).room == "r1"
    claims = verify_room_token(secret.strip(), second.stdout.strip())
    assert (claims.room, claims.identity, claims.name) == ("r2", "bob", "Bảo")
    assert claims.exp - claims.iat == 3600  # the default lifetime


def test_token_uses_an_explicit_secret_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    explicit = "explicit-secret-" + "k" * 32
    result = caunoi(tmp_path, cli_env(data_dir, CAUNOI_SECRET_KEY=explicit), "token", "--room", "r1",
                    "--identity", "alice", "--admin", "--ttl", "60")
    assert result.returncode == 0, result.stderr
    claims = verify_room_token(explicit, result.stdout.strip())
    assert claims.grants == Grants(room_admin=True)
    assert not (data_dir / "secret_key").exists()


# --- caunoi migrate / demo ----------------------------------------------------------------------


def sqlite_count(database: Path, table: str) -> int:
    connection = sqlite3.connect(database)
    try:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        connection.close()


def test_migrate_then_demo_then_demo_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(data_dir)
    database = data_dir / "caunoi.sqlite3"

    migrated = caunoi(tmp_path, env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "latest revision" in migrated.stdout
    assert database.is_file()
    assert sqlite_count(database, "users") == 0

    seeded = caunoi(tmp_path, env, "demo")
    assert seeded.returncode == 0, seeded.stderr
    assert "demo data created" in seeded.stdout
    for email in ("bacsi@tramyte.demo", "benhnhan1@tramyte.demo", "giaovien@truong.demo",
                  "hocsinh5@truong.demo", "quantri@tramyte.demo"):
        assert email in seeded.stdout
    for _handle, email, name, role, _tenant in PEOPLE:
        assert email in seeded.stdout and name in seeded.stdout and role.value in seeded.stdout
    assert DEMO_PASSWORD in seeded.stdout
    assert "http://127.0.0.1:8080" in seeded.stdout
    assert (data_dir / "secret_key").is_file()  # `caunoi demo` stores the embedded secret
    assert sqlite_count(database, "users") == len(PEOPLE) + len(HOSPITAL_PEOPLE)
    assert sqlite_count(database, "rooms") == 3
    assert sqlite_count(database, "tenants") == 3  # station, school, city hospital (hội chẩn)

    again = caunoi(tmp_path, env, "demo")
    assert again.returncode == 0, again.stderr
    assert "already present" in again.stdout
    assert "demo data created" not in again.stdout
    assert "bacsi@tramyte.demo" in again.stdout
    assert sqlite_count(database, "users") == len(PEOPLE) + len(HOSPITAL_PEOPLE)
    assert sqlite_count(database, "rooms") == 3


# --- caunoi serve -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CAUNOI_PORT", "abc"), ("CAUNOI_SECRET_KEY", "short-secret-xyz"), ("CAUNOI_PORT", "70000")],
)
def test_serve_refuses_a_bad_setting(tmp_path: Path, variable: str, value: str) -> None:
    data_dir = tmp_path / "data"
    result = caunoi(tmp_path, cli_env(data_dir, **{variable: value}), "serve")
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    if variable == "CAUNOI_SECRET_KEY":
        assert value not in result.stderr, "the rejected secret must not be echoed"
    assert not (data_dir / "caunoi.sqlite3").exists(), "nothing may start with a bad setting"


async def test_serve_answers_health_readiness_and_login_then_stops_on_sigint(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        str(CAUNOI), "serve", "--port", str(port), cwd=tmp_path, env=cli_env(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            health = None
            while health is None:
                if process.returncode is not None:
                    _out, err = await process.communicate()
                    pytest.fail(f"caunoi serve exited with {process.returncode}: {err.decode()}")
                if time.monotonic() - started > STARTUP_LIMIT:
                    pytest.fail(f"no answer on {base}/healthz within {STARTUP_LIMIT} s")
                try:
                    async with http.get(f"{base}/healthz") as response:
                        health = (response.status, await response.json())
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            assert health == (200, {"status": "ok"})

            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
                ready = await response.json()
            assert ready["status"] == "ready"
            assert ready["database"] == "ok"
            assert ready["bus"] is True

            async with http.get(f"{base}/login") as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                page = await response.text()
            assert "Đăng nhập" in page
            assert 'lang="vi"' in page

        assert (data_dir / "caunoi.sqlite3").is_file()  # migrated on start
        assert (data_dir / "secret_key").is_file()

        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), STOP_LIMIT)
        assert process.returncode in (0, -signal.SIGINT), (process.returncode, err.decode())
        assert "Traceback" not in err.decode()
        assert f"http://127.0.0.1:{port}" in out.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
