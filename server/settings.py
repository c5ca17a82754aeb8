"""Every environment variable Cầu Nối reads, in one place.

Each field is documented in README.md ("Configuration"). A wrong value stops start-up with a
message that names the variable (see :func:`load_settings`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "CAUNOI_"
NotifierName = Literal["log", "email", "sms"]


def _default_notifiers() -> list[NotifierName]:
    return ["log"]
MIN_SECRET_LENGTH = 32


class IceServer(BaseModel):
    """One STUN or TURN server, in the shape of the browser's RTCIceServer."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("urls")
    @classmethod
    def _stun_or_turn(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"{url!r} is not a stun:, turn: or turns: URL")
        return urls


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = None
    """The URL users type (https://… behind a proxy). Decides the allowed WebSocket Origin and
    whether cookies are Secure. Default: http://{host}:{port}."""

    data_dir: Path = Path("data")
    database_url: str | None = None
    """SQLAlchemy URL. Default: SQLite at {data_dir}/caunoi.sqlite3. PostgreSQL: postgresql+asyncpg://…"""

    redis_url: str | None = None
    """redis://… selects the Redis bus (several nodes); unset selects the in-process bus."""

    secret_key: str | None = None
    """Signs room tokens and CSRF tokens; at least 32 characters. Unset: read or created at
    {data_dir}/secret_key (the embedded default); an explicit value shorter than 32 stops start-up."""

    session_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    room_token_ttl_seconds: int = Field(default=300, ge=10, le=24 * 3600)
    default_locale: Literal["vi", "en"] = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    migrate_on_start: bool = True

    ice_servers: Annotated[list[IceServer], NoDecode] = Field(default_factory=list)
    """JSON list of RTCIceServer objects; empty by default (no public STUN server)."""
    ice_host_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated local addresses the media server gathers ICE candidates on (default: all)."""
    ice_announced_address: str | None = None
    """Public address written into the server's ICE candidates, for a server behind 1:1 NAT."""

    notifiers: Annotated[list[NotifierName], NoDecode] = Field(default_factory=_default_notifiers)
    """Comma-separated channels for reminders and confirmations: log, email, sms."""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "Cầu Nối <no-reply@localhost>"
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None
    reminder_offsets_minutes: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1440, 15])
    """Comma-separated minutes before a booking at which reminders go out."""
    reminder_interval_seconds: float = Field(default=60.0, gt=0)
    reminders_enabled: bool = True

    retention_days: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    """JSON object: record type → days, over the defaults in server/records/retention.py."""
    retention_interval_seconds: float = Field(default=6 * 3600, gt=0)
    retention_enabled: bool = True

    document_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    """Largest document or attachment accepted."""
    fhir_export_ttl_seconds: float = Field(default=3600.0, gt=0)
    """How long a FHIR bulk export and its files are kept after the kick-off."""

    ws_max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    ws_heartbeat_seconds: float = Field(default=20.0, gt=0)

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _parse_ice_servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    @field_validator("ice_host_addresses", mode="before")
    @classmethod
    def _parse_addresses(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("retention_days", mode="before")
    @classmethod
    def _parse_retention(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("retention_days")
    @classmethod
    def _known_record_types(cls, value: dict[str, int]) -> dict[str, int]:
        from server.records.retention import policy

        if any(days < 1 for days in value.values()):
            raise ValueError("retention periods are at least 1 day")
        policy(value)  # raises on unknown record types
        return value

    @field_validator("notifiers", "reminder_offsets_minutes", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("reminder_offsets_minutes")
    @classmethod
    def _positive_offsets(cls, value: list[int]) -> list[int]:
        if any(offset <= 0 or offset > 60 * 24 * 30 for offset in value):
            raise ValueError("each offset is between 1 minute and 30 days")
        return sorted(set(value), reverse=True)

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters long")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'caunoi.sqlite3'}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        return self.effective_public_url.startswith("https://")

    def signing_secret(self) -> str:
        """The configured secret, or the one stored under data_dir (created on first use)."""
        if self.secret_key is not None:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            stored = path.read_text().strip()
            if len(stored) < MIN_SECRET_LENGTH:
                raise SettingsError(f"{path} holds a secret shorter than {MIN_SECRET_LENGTH} characters")
            return stored
        import secrets

        self.data_dir.mkdir(parents=True, exist_ok=True)
        stored = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(stored + "\n")
        return stored


class SettingsError(Exception):
    """A configuration value is wrong; the message names the variable."""


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; turn pydantic's error into one naming the variables."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            lines.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    except (json.JSONDecodeError, ValueError) as exc:  # a JSON value that does not parse
        raise SettingsError(f"invalid configuration: {exc}") from None
