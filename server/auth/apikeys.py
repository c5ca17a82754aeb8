"""API keys: bearer credentials for API clients (the FHIR API), one per client and user.

A key is shown once (``cn_<random>``); only its SHA-256 is stored, with its first characters kept in
clear so that an operator can tell keys apart and revoke one. The random part carries 256 bits, so a
plain (non-salted) SHA-256 is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from server.auth.accounts import normalise_email
from server.auth.models import RoleAssignment, Tenant, User
from server.auth.sessions import CurrentUser, TenantRole
from server.db.base import Base, IdMixin, UTCDateTime, utcnow

KEY_PREFIX = "cn_"
DISPLAY_PREFIX_LENGTH = 8
# Writing last_used_at on every request would turn each read into a write; a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKey(IdMixin, Base):
    __tablename__ = "api_keys"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(8), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ApiKeyError(Exception):
    """A key cannot be created or revoked; the message says why (no secret in it)."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_api_key(db: AsyncSession, email: str, name: str = "") -> tuple[str, ApiKey]:
    """A new key for the active user with this e-mail; returns (the key, shown once; its row)."""
    user = (await db.execute(select(User).where(User.email == normalise_email(email)))).scalar_one_or_none()
    if user is None or not user.is_active:
        raise ApiKeyError(f"no active user with the e-mail {email!r}")
    key = new_key()
    row = ApiKey(user_id=user.id, name=(name or "api")[:100], prefix=key[:DISPLAY_PREFIX_LENGTH],
                 secret_hash=digest(key))
    db.add(row)
    await db.flush()
    return key, row


async def revoke_api_key(db: AsyncSession, prefix: str) -> ApiKey:
    """Revoke the one active key starting with ``prefix`` (its displayed first characters)."""
    prefix = prefix.strip()[:DISPLAY_PREFIX_LENGTH]
    if len(prefix) < DISPLAY_PREFIX_LENGTH:
        raise ApiKeyError(f"give the first {DISPLAY_PREFIX_LENGTH} characters of the key")
    rows = (await db.execute(
        select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
    )).scalars().all()
    if not rows:
        raise ApiKeyError(f"no active key starts with {prefix!r}")
    if len(rows) > 1:
        # Revoking both would cut off a client by surprise; the operator must look first.
        raise ApiKeyError(f"{len(rows)} active keys start with {prefix!r}; none revoked")
    rows[0].revoked_at = utcnow()
    return rows[0]


async def user_for_key(db: AsyncSession, key: str) -> CurrentUser | None:
    """The user a valid, unrevoked key belongs to, with their roles; None for anything else."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = (await db.execute(
        select(ApiKey, User).join(User, User.id == ApiKey.user_id)
        .where(ApiKey.secret_hash == digest(key), ApiKey.revoked_at.is_(None), User.is_active.is_(True))
    )).first()
    if row is None:
        return None
    api_key, user = row
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        api_key.last_used_at = now
    roles = (await db.execute(
        select(RoleAssignment.role, Tenant.id, Tenant.name, Tenant.kind)
        .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
        .where(RoleAssignment.user_id == user.id)
        .order_by(Tenant.name, RoleAssignment.role)
    )).all()
    return CurrentUser(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        locale=user.locale,
        roles=tuple(TenantRole(t_id, t_name, t_kind, role) for role, t_id, t_name, t_kind in roles),
        # Not a cookie session: CSRF tokens must never bind to it (bearer requests need none).
        session_id="apikey:" + api_key.id,
    )
