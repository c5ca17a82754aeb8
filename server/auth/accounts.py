"""Creating users and checking passwords."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import ROLES_BY_TENANT_KIND, Role, RoleAssignment, Tenant, User
from server.auth.passwords import hash_password, needs_rehash, verify_password


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    db: AsyncSession,
    *,
    email: str,
    display_name: str,
    password: str | None = None,
    password_hash: str | None = None,
    locale: str | None = None,
) -> User:
    """A new user; pass ``password`` to hash it here, or an already computed ``password_hash``."""
    user = User(
        email=normalise_email(email),
        display_name=display_name,
        password_hash=await asyncio.to_thread(hash_password, password) if password else password_hash,
        locale=locale,
    )
    db.add(user)
    await db.flush()
    return user


async def assign_role(db: AsyncSession, user: User, tenant: Tenant, role: Role) -> RoleAssignment:
    if role not in ROLES_BY_TENANT_KIND[tenant.kind]:
        raise ValueError(f"role {role} does not exist in a {tenant.kind} tenant")
    assignment = RoleAssignment(user_id=user.id, tenant_id=tenant.id, role=role)
    db.add(assignment)
    await db.flush()
    return assignment


async def authenticate(db: AsyncSession, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None (in constant-ish time)."""
    user = (await db.execute(select(User).where(User.email == normalise_email(email)))).scalar_one_or_none()
    hashed = user.password_hash if user is not None and user.is_active else None
    # Argon2 takes tens of milliseconds by design: off the event loop, or every call in progress stalls.
    if not await asyncio.to_thread(verify_password, hashed, password):
        return None
    assert user is not None and hashed is not None
    if needs_rehash(hashed):
        user.password_hash = await asyncio.to_thread(hash_password, password)
    return user
