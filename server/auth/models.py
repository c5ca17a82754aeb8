"""Tenants, users, role assignments and login sessions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db.base import Base, IdMixin, UTCDateTime, str_enum, utcnow


class TenantKind(enum.StrEnum):
    PLATFORM = "platform"
    FACILITY = "facility"  # a health facility
    SCHOOL = "school"


class Role(enum.StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    FACILITY_ADMIN = "facility_admin"
    DOCTOR = "doctor"
    NURSE = "nurse"
    PATIENT = "patient"
    SCHOOL_ADMIN = "school_admin"
    TEACHER = "teacher"
    STUDENT = "student"


# Which roles make sense in which kind of tenant; assigning others is refused.
ROLES_BY_TENANT_KIND: dict[TenantKind, frozenset[Role]] = {
    TenantKind.PLATFORM: frozenset({Role.PLATFORM_ADMIN}),
    TenantKind.FACILITY: frozenset({Role.FACILITY_ADMIN, Role.DOCTOR, Role.NURSE, Role.PATIENT}),
    TenantKind.SCHOOL: frozenset({Role.SCHOOL_ADMIN, Role.TEACHER, Role.STUDENT}),
}


class Tenant(IdMixin, Base):
    """A health facility or a school: the unit of data isolation."""

    __tablename__ = "tenants"

    kind: Mapped[TenantKind] = mapped_column(str_enum(TenantKind, 16))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(IdMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # Patients may have no password: they join through one-time links.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    locale: Mapped[str | None] = mapped_column(String(8), default=None)
    phone: Mapped[str | None] = mapped_column(String(20), default=None)  # for SMS reminders (E.164)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="user", lazy="raise_on_sql", cascade="all, delete-orphan"
    )


class RoleAssignment(IdMixin, Base):
    """A role a user holds in one tenant (several tenants, several roles are allowed)."""

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id", "role"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, 32))

    user: Mapped[User] = relationship(back_populates="roles", lazy="raise_on_sql")
    tenant: Mapped[Tenant] = relationship(lazy="raise_on_sql")


class LoginSession(Base):
    """A cookie session. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AccountToken(IdMixin, Base):
    """A one-time link that lets a new staff member set their password (or anyone reset it).
    Only the token's hash is kept; the first use consumes it."""

    __tablename__ = "account_tokens"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str | None] = mapped_column(String(36), default=None)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
