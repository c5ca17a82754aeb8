"""API keys: created and revoked through the `caunoi apikey` command, used as bearer credentials on the
FHIR API, stored hashed only."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from server.__main__ import main
from server.auth.apikeys import ApiKey
from server.auth.models import User
from server.keys import SESSIONS
from server.records.audit import Outcome
from tests.conftest import TEST_SECRET, login
from tests.integration.fhir_support import World, audit_rows, fhir_get, start_app

Client = Callable[..., Awaitable[TestClient]]
KEY_FORMAT = re.compile(r"^cn_[A-Za-z0-9_-]{43}$")


@pytest.fixture
async def app_world(aiohttp_client: Client, tmp_path: Path, database_url: str,
                    monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, World]:
    # The command reads its settings from the environment, like on a server: point it at the app's database.
    for name in ("CAUNOI_DATABASE_URL", "CAUNOI_SECRET_KEY", "CAUNOI_DATA_DIR", "CAUNOI_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAUNOI_DATABASE_URL", database_url)
    monkeypatch.setenv("CAUNOI_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CAUNOI_DATA_DIR", str(tmp_path / "data"))
    return await start_app(aiohttp_client, tmp_path, database_url)


async def caunoi(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    # main() runs its own event loop (asyncio.run), so it gets a thread of its own.
    code = await asyncio.to_thread(main, ["apikey", *args])
    out, err = capsys.readouterr()
    return code, out, err


async def stored_keys(client: TestClient, user_id: str) -> list[ApiKey]:
    async with client.app[SESSIONS]() as db:
        return list((await db.execute(select(ApiKey).where(ApiKey.user_id == user_id)
                                      .order_by(ApiKey.created_at))).scalars().all())


async def test_key_lifecycle(app_world: tuple[TestClient, World], capsys: pytest.CaptureFixture[str]) -> None:
    client, world = app_world
    doctor, patient1 = world.users["doctor"], world.users["patient1"]
    code, out, err = await caunoi(capsys, "--user", doctor.email.upper(), "--name", "his-sync")
    assert code == 0, err
    key = out.strip()
    assert KEY_FORMAT.match(key), "stdout is the key alone, for scripts"
    assert key[:8] in err and key not in err
    [row] = [k for k in await stored_keys(client, doctor.id) if k.name == "his-sync"]
    # Stored hashed only: no column holds the key, the hash is its SHA-256.
    assert row.secret_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in str(getattr(row, column)) for column in [c.key for c in ApiKey.__table__.columns])
    assert row.prefix == key[:8] and row.revoked_at is None and row.last_used_at is None

    status, patient = await fhir_get(client, f"Patient/{patient1.id}", key)
    assert status == 200 and patient["id"] == patient1.id
    [used] = [k for k in await stored_keys(client, doctor.id) if k.name == "his-sync"]
    assert used.last_used_at is not None
    [read] = await audit_rows(client, action="fhir.read", target_id=patient1.id)
    assert read.actor_id == doctor.id and read.actor_role == "doctor"  # the key acts as its user, with their roles

    code, out, err = await caunoi(capsys, "--revoke", key[:8])
    assert code == 0, err
    status, outcome = await fhir_get(client, f"Patient/{patient1.id}", key)
    assert status == 401 and outcome["issue"][0]["code"] == "login"
    code, _, err = await caunoi(capsys, "--revoke", key[:8])
    assert code == 1 and "no active key" in err
    # The doctor's other key (made by the fixture) still works.
    assert (await fhir_get(client, f"Patient/{patient1.id}", world.keys["doctor"]))[0] == 200


async def test_command_refuses_what_it_cannot_do(app_world: tuple[TestClient, World],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, world = app_world
    code, out, err = await caunoi(capsys, "--user", "nobody@example.org")
    assert code == 1 and out == "" and "no active user" in err
    code, _, err = await caunoi(capsys, "--revoke", "cn_x")
    assert code == 1 and "8 characters" in err
    with pytest.raises(SystemExit):
        await caunoi(capsys, "--user", world.users["doctor"].email, "--revoke", "cn_abcde")


async def test_keys_act_with_their_users_roles(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    patient1, patient2 = world.users["patient1"], world.users["patient2"]
    key = world.keys["patient1"]
    assert (await fhir_get(client, f"Patient/{patient1.id}", key))[0] == 200
    assert (await fhir_get(client, f"Patient/{patient2.id}", key))[0] == 404
    _, bundle = await fhir_get(client, "Patient", key)
    assert [e["resource"]["id"] for e in bundle["entry"]] == [patient1.id]


@pytest.mark.parametrize("header", [
    "Bearer cn_not-a-key", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-our-format", "bearer", "Token cn_abc",
])
async def test_bad_credentials_are_401(app_world: tuple[TestClient, World], header: str) -> None:
    client, _ = app_world
    response = await client.get("/fhir/R4/Patient", headers={"Authorization": header})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json(content_type=None))["resourceType"] == "OperationOutcome"


async def test_failed_key_is_audited_without_the_key(app_world: tuple[TestClient, World]) -> None:
    client, _ = app_world
    wrong = "cn_" + "A" * 43
    assert (await fhir_get(client, "Patient", wrong))[0] == 401
    [failure] = await audit_rows(client, action="auth.apikey")
    assert failure.outcome == Outcome.FAILURE and failure.actor_id is None
    assert all(wrong not in str(getattr(failure, c)) for c in [col.key for col in failure.__table__.columns])


async def test_a_key_of_a_deactivated_user_stops_working(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    assert (await fhir_get(client, "Organization", world.keys["nurse"]))[0] == 200
    async with client.app[SESSIONS].begin() as db:
        await db.execute(update(User).where(User.id == world.users["nurse"].id).values(is_active=False))
    assert (await fhir_get(client, "Organization", world.keys["nurse"]))[0] == 401


async def test_a_bad_key_is_not_rescued_by_a_session_cookie(app_world: tuple[TestClient, World]) -> None:
    client, world = app_world
    await login(client, world.users["doctor"].email)
    assert (await fhir_get(client, "Patient"))[0] == 200
    assert (await fhir_get(client, "Patient", "cn_" + "B" * 43))[0] == 401
    # A valid key wins over the cookie: a patient's key sees only the patient, though the doctor is logged in.
    _, bundle = await fhir_get(client, "Patient", world.keys["patient2"])
    assert [e["resource"]["id"] for e in bundle["entry"]] == [world.users["patient2"].id]


async def test_revoking_an_ambiguous_prefix_revokes_nothing(app_world: tuple[TestClient, World],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    client, world = app_world
    async with client.app[SESSIONS].begin() as db:
        await db.execute(update(ApiKey).values(prefix="cn_same1"))
    code, _, err = await caunoi(capsys, "--revoke", "cn_same1")
    assert code == 1 and "none revoked" in err
    assert (await fhir_get(client, "Organization", world.keys["doctor"]))[0] == 200
