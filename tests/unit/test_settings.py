"""Configuration from CAUNOI_* environment variables, and the stored signing secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from server.settings import MIN_SECRET_LENGTH, Settings, SettingsError, load_settings

GOOD_SECRET = "k" * MIN_SECRET_LENGTH


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CAUNOI_* variable from the outer environment leaks in; the cwd is a scratch directory."""
    for name in list(os.environ):
        if name.upper().startswith("CAUNOI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings_error(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> str:
    """Set one variable, load, and return the SettingsError message (which must be raised)."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


def test_reads_caunoi_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAUNOI_HOST", "10.20.30.40")
    monkeypatch.setenv("CAUNOI_PORT", "9443")
    monkeypatch.setenv("CAUNOI_PUBLIC_URL", "https://caunoi.example.vn/")
    monkeypatch.setenv("CAUNOI_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CAUNOI_DATABASE_URL", "postgresql+asyncpg://caunoi@db/caunoi")
    monkeypatch.setenv("CAUNOI_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("CAUNOI_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("CAUNOI_DEFAULT_LOCALE", "en")
    monkeypatch.setenv("CAUNOI_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("CAUNOI_MIGRATE_ON_START", "false")
    monkeypatch.setenv("CAUNOI_ROOM_TOKEN_TTL_SECONDS", "60")
    monkeypatch.setenv("CAUNOI_ICE_SERVERS",
                       '[{"urls": "stun:ice.example.vn:3478"},'
                       ' {"urls": ["turn:turn.example.vn", "turns:turn.example.vn"], "username": "u",'
                       ' "credential": "c"}]')
    monkeypatch.setenv("CAUNOI_ICE_ANNOUNCED_ADDRESS", "203.0.113.7")

    settings = load_settings()

    assert settings.host == "10.20.30.40"
    assert settings.port == 9443
    assert settings.effective_public_url == "https://caunoi.example.vn"
    assert settings.data_dir == tmp_path / "state"
    assert settings.effective_database_url == "postgresql+asyncpg://caunoi@db/caunoi"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.signing_secret() == GOOD_SECRET
    assert settings.default_locale == "en"
    assert settings.log_level == "DEBUG"
    assert settings.migrate_on_start is False
    assert settings.room_token_ttl_seconds == 60
    assert [server.urls for server in settings.ice_servers] == [
        ["stun:ice.example.vn:3478"], ["turn:turn.example.vn", "turns:turn.example.vn"]]
    assert settings.ice_servers[1].username == "u"
    assert settings.ice_servers[1].credential == "c"
    assert settings.ice_announced_address == "203.0.113.7"


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("SECRET_KEY", "x")
    settings = load_settings()
    assert settings.port == 8080
    assert settings.secret_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CAUNOI_PORT", "abc"),
        ("CAUNOI_PORT", "0"),
        ("CAUNOI_PORT", "70000"),
        ("CAUNOI_DATABASE_URL", "mysql://x"),
        ("CAUNOI_DATABASE_URL", "sqlite:///plain-sqlite-driver.db"),
        ("CAUNOI_SECRET_KEY", "short"),
        ("CAUNOI_SECRET_KEY", "k" * (MIN_SECRET_LENGTH - 1)),
        ("CAUNOI_ICE_SERVERS", '[{"urls":"http://x"}]'),
        ("CAUNOI_ICE_SERVERS", '[{"urls":["stun:ok", "https://bad"]}]'),
        ("CAUNOI_ICE_SERVERS", "not json"),
        ("CAUNOI_ICE_SERVERS", '{"urls": "stun:x"}'),
        ("CAUNOI_REDIS_URL", "http://cache"),
        ("CAUNOI_DEFAULT_LOCALE", "fr"),
        ("CAUNOI_LOG_LEVEL", "TRACE"),
        ("CAUNOI_LOG_FORMAT", "xml"),
        ("CAUNOI_SESSION_TTL_SECONDS", "5"),
        ("CAUNOI_ROOM_TOKEN_TTL_SECONDS", "100000"),
        ("CAUNOI_WS_MAX_MESSAGE_BYTES", "10"),
        ("CAUNOI_WS_HEARTBEAT_SECONDS", "0"),
    ],
)
def test_wrong_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    message = settings_error(monkeypatch, name, value)
    assert name in message


def test_error_names_every_wrong_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAUNOI_PORT", "abc")
    message = settings_error(monkeypatch, "CAUNOI_DATABASE_URL", "mysql://x")
    assert "CAUNOI_PORT" in message
    assert "CAUNOI_DATABASE_URL" in message


def test_error_does_not_echo_a_short_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The message names CAUNOI_SECRET_KEY but does not print the (wrong) secret into the logs."""
    message = settings_error(monkeypatch, "CAUNOI_SECRET_KEY", "hunter2-too-short")
    assert "CAUNOI_SECRET_KEY" in message
    assert "hunter2" not in message


def test_error_does_not_echo_a_turn_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(monkeypatch, "CAUNOI_ICE_SERVERS",
                             '[{"urls": "http://turn", "username": "u", "credential": "pa55-w0rd"}]')
    assert "CAUNOI_ICE_SERVERS" in message
    assert "pa55-w0rd" not in message


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAUNOI_DATA_DIR", str(tmp_path / "d"))
    settings = load_settings()
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'caunoi.sqlite3'}"
    assert settings.effective_public_url == "http://127.0.0.1:8080"
    assert settings.secure_cookies is False
    assert settings.redis_url is None
    assert settings.secret_key is None
    assert settings.default_locale == "vi"
    assert settings.ice_servers == []
    assert settings.ice_host_addresses == []
    assert settings.migrate_on_start is True


def test_default_data_dir_is_relative_data() -> None:
    assert load_settings().data_dir == Path("data")


def test_public_url_defaults_to_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAUNOI_HOST", "10.1.2.3")
    monkeypatch.setenv("CAUNOI_PORT", "8443")
    settings = load_settings()
    assert settings.effective_public_url == "http://10.1.2.3:8443"
    assert settings.secure_cookies is False


@pytest.mark.parametrize(
    ("public_url", "effective", "secure"),
    [
        ("https://caunoi.example.vn", "https://caunoi.example.vn", True),
        ("https://caunoi.example.vn/", "https://caunoi.example.vn", True),
        ("http://caunoi.lan:8080/", "http://caunoi.lan:8080", False),
    ],
)
def test_secure_cookies_follow_the_public_url_scheme(
    monkeypatch: pytest.MonkeyPatch, public_url: str, effective: str, secure: bool
) -> None:
    monkeypatch.setenv("CAUNOI_PUBLIC_URL", public_url)
    settings = load_settings()
    assert settings.effective_public_url == effective
    assert settings.secure_cookies is secure


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1, ::1", ["127.0.0.1", "::1"]),
        ("10.0.0.5", ["10.0.0.5"]),
        (" 10.0.0.5 ,, 192.168.1.2 ,", ["10.0.0.5", "192.168.1.2"]),
        ("", []),
    ],
)
def test_ice_host_addresses_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("CAUNOI_ICE_HOST_ADDRESSES", value)
    assert load_settings().ice_host_addresses == expected


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_ice_servers_means_none(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CAUNOI_ICE_SERVERS", value)
    assert load_settings().ice_servers == []


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAUNOI_PORT", "9000")
    assert load_settings(port=9001).port == 9001


def test_signing_secret_is_created_private_and_stable(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    settings = load_settings(data_dir=data_dir)
    secret = settings.signing_secret()

    path = data_dir / "secret_key"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret) >= MIN_SECRET_LENGTH
    assert path.read_text().strip() == secret
    assert settings.signing_secret() == secret
    assert load_settings(data_dir=data_dir).signing_secret() == secret


def test_signing_secret_differs_between_installations(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path / "a").signing_secret()
    second = load_settings(data_dir=tmp_path / "b").signing_secret()
    assert first != second


def test_signing_secret_file_is_private_even_under_a_lax_umask(tmp_path: Path) -> None:
    """A umask of 0 must not leave the secret world-readable."""
    previous = os.umask(0)
    try:
        load_settings(data_dir=tmp_path / "d").signing_secret()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "d" / "secret_key").stat().st_mode) == 0o600


def test_configured_secret_wins_and_writes_nothing(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", secret_key=GOOD_SECRET)
    assert settings.signing_secret() == GOOD_SECRET
    assert not (tmp_path / "d" / "secret_key").exists()


def test_existing_stored_secret_is_used(tmp_path: Path) -> None:
    stored = "s" * 40
    (tmp_path / "secret_key").write_text(stored + "\n")
    assert Settings(data_dir=tmp_path).signing_secret() == stored


def test_stored_secret_shorter_than_minimum_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("s" * (MIN_SECRET_LENGTH - 1) + "\n")
    with pytest.raises(SettingsError) as caught:
        Settings(data_dir=tmp_path).signing_secret()
    assert "secret_key" in str(caught.value)
