"""Cookie sessions stored in the database: the cookie carries a random token, the table its hash."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import LoginSession, Role, RoleAssignment, Tenant, TenantKind, User
from server.db.base import utcnow

COOKIE = "caunoi_session"


@dataclass(frozen=True)
class TenantRole:
    tenant_id: str
    tenant_name: str
    tenant_kind: TenantKind
    role: Role


@dataclass(frozen=True)
class CurrentUser:
    id: str
    email: str
    display_name: str
    locale: str | None
    roles: tuple[TenantRole, ...]
    session_id: str

    def has_role(self, role: Role, tenant_id: str | None = None) -> bool:
        return any(r.role == role and (tenant_id is None or r.tenant_id == tenant_id) for r in self.roles)

    @property
    def primary_role(self) -> str | None:
        return self.roles[0].role.value if self.roles else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_session(db: AsyncSession, user_id: str, ttl_seconds: int) -> tuple[str, str]:
    """A new session; returns (cookie token, session id). Called at every login (id rotation)."""
    token = secrets.token_urlsafe(32)
    session_id = _digest(token)
    db.add(LoginSession(id=session_id, user_id=user_id, expires_at=utcnow() + timedelta(seconds=ttl_seconds)))
    return token, session_id


async def end_session(db: AsyncSession, token: str) -> None:
    await db.execute(delete(LoginSession).where(LoginSession.id == _digest(token)))


async def load_user(db: AsyncSession, token: str) -> CurrentUser | None:
    session_id = _digest(token)
    row = (
        await db.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.id == session_id, LoginSession.expires_at > utcnow(), User.is_active.is_(True))
        )
    ).first()
    if row is None:
        return None
    user: User = row[1]
    roles = (
        await db.execute(
            select(RoleAssignment.role, Tenant.id, Tenant.name, Tenant.kind)
            .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
            .where(RoleAssignment.user_id == user.id)
            .order_by(Tenant.name, RoleAssignment.role)
        )
    ).all()
    return CurrentUser(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        locale=user.locale,
        roles=tuple(TenantRole(t_id, t_name, t_kind, role) for role, t_id, t_name, t_kind in roles),
        session_id=session_id,
    )


async def purge_expired(db: AsyncSession) -> int:
    result = await db.execute(delete(LoginSession).where(LoginSession.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


class SessionCache:
    """Sessions loaded in the last few seconds, so that the requests of one page view (the page, its
    API calls) do not each cost two queries. A logout on this node evicts at once; on other nodes an
    ended session or a changed role is seen after at most ``ttl`` seconds."""

    def __init__(self, ttl: float = 5.0, maxsize: int = 10_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._entries: dict[str, tuple[float, CurrentUser]] = {}

    def get(self, token: str) -> CurrentUser | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[token]
            return None
        return entry[1]

    def put(self, token: str, user: CurrentUser) -> None:
        if len(self._entries) >= self.maxsize:
            self._entries.clear()  # crude but bounded; entries are cheap to reload
        self._entries[token] = (time.monotonic() + self.ttl, user)

    def evict(self, token: str) -> None:
        self._entries.pop(token, None)
