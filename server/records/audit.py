"""The append-only audit log.

One row per security-relevant event: logins, room tokens, room joins and leaves, authorization
denials. Rows never hold health-data values or tokens. The database refuses UPDATE and DELETE on
the table (triggers created by the migration), so the application cannot rewrite history.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, IdMixin, UTCDateTime, str_enum, utcnow


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # e.g. wrong password
    DENIED = "denied"  # authorization refused


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_events"

    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(36), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(36), index=True)
    outcome: Mapped[Outcome] = mapped_column(str_enum(Outcome, 16))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[str | None] = mapped_column(String(64))


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who is acting and from where; taken from the request once and passed along."""

    actor_id: str | None = None
    actor_role: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def with_actor(self, actor_id: str, actor_role: str | None) -> AuditContext:
        return replace(self, actor_id=actor_id, actor_role=actor_role)


def audit_row(
    context: AuditContext,
    action: str,
    outcome: Outcome,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    tenant_id: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        actor_id=context.actor_id,
        actor_role=context.actor_role,
        action=action,
        target_type=target_type,
        target_id=target_id,
        tenant_id=tenant_id,
        outcome=outcome,
        ip=context.ip,
        user_agent=(context.user_agent or "")[:300] or None,
        request_id=context.request_id,
    )


async def audit(
    sessions: async_sessionmaker[AsyncSession],
    context: AuditContext,
    action: str,
    outcome: Outcome,
    **target: str | None,
) -> None:
    """Write one audit row in its own transaction (so a rolled-back request still leaves it)."""
    async with sessions.begin() as session:
        session.add(audit_row(context, action, outcome, **target))
