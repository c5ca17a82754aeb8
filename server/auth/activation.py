"""One-time links to set a password: a new staff member's first login (the administrator who adds
them never learns or chooses their password) and, later, a reset the administrator starts.

Only the SHA-256 of the token is stored; the first use consumes it; an unused link expires. Issuing
a new link for the same person voids the earlier ones, so a lost link is simply replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import AccountToken, LoginSession, User
from server.auth.passwords import hash_password
from server.db.base import utcnow

LINK_PATH = "/account/password/"
VALID_FOR = timedelta(hours=72)
MIN_PASSWORD_LENGTH = 10


class WeakPassword(ValueError):
    """The password is refused; ``code`` says why (the page shows it translated)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(db: AsyncSession, user_id: str, created_by: str | None) -> str:
    """A new link token for this user; their earlier unused links stop working."""
    now = utcnow()
    await db.execute(update(AccountToken).where(AccountToken.user_id == user_id, AccountToken.used_at.is_(None),
                                                AccountToken.expires_at > now).values(expires_at=now))
    token = secrets.token_urlsafe(32)
    db.add(AccountToken(user_id=user_id, token_hash=_digest(token), created_by=created_by,
                        expires_at=now + VALID_FOR))
    await db.flush()
    return token


async def valid_token(db: AsyncSession, token: str) -> tuple[AccountToken, User] | None:
    """The unused, unexpired token and its (active) user, locked for the update that consumes it."""
    row = await db.scalar(select(AccountToken).where(AccountToken.token_hash == _digest(token)).with_for_update())
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    user = await db.get(User, row.user_id)
    return (row, user) if user is not None and user.is_active else None


def check_password(password: str, confirm: str, user: User) -> None:
    if password != confirm:
        raise WeakPassword("mismatch", "the two passwords differ")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword("too_short", f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() in (user.email.lower(), user.email.split("@")[0].lower()):
        raise WeakPassword("is_email", "the password must not be the e-mail address")


async def set_password(db: AsyncSession, token: AccountToken, user: User, password: str) -> None:
    """Consume the token and store the new password's hash (Argon2 off the event loop)."""
    user.password_hash = await asyncio.to_thread(hash_password, password)
    token.used_at = utcnow()
    # A reset must lock out whoever knew the old password: their sessions end too.
    await db.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
