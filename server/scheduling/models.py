"""Bookable resources, their weekly availability and exceptions, and bookings."""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import cast

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Table, Text, Time, func, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db.base import Base, IdMixin, UTCDateTime, str_enum, utcnow

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


class ResourceKind(enum.StrEnum):
    PRACTITIONER = "practitioner"
    TEACHER = "teacher"
    CLASS = "class"
    ROOM = "room"
    SERVICE = "service"


class ExceptionKind(enum.StrEnum):
    CLOSED = "closed"  # a public holiday, leave: no slots in this period
    OPEN = "open"  # extra hours outside the weekly rules


class BookingStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"


class Resource(IdMixin, Base):
    """Something with a calendar: a doctor, a teacher, a class, a consultation room, a service."""

    __tablename__ = "bookable_resources"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ResourceKind] = mapped_column(str_enum(ResourceKind, 16))
    name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=15)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=60)
    horizon_days: Mapped[int] = mapped_column(Integer, default=30)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    rules: Mapped[list[AvailabilityRule]] = relationship(
        lazy="raise_on_sql", cascade="all, delete-orphan", order_by="AvailabilityRule.weekday"
    )
    exceptions: Mapped[list[AvailabilityException]] = relationship(lazy="raise_on_sql", cascade="all, delete-orphan")


class AvailabilityRule(IdMixin, Base):
    """Every <weekday> from <start> to <end>, local time of the resource, within an optional period."""

    __tablename__ = "availability_rules"

    resource_id: Mapped[str] = mapped_column(ForeignKey("bookable_resources.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # Monday = 0 … Sunday = 6 (datetime.weekday())
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    valid_from: Mapped[date | None] = mapped_column(Date, default=None)
    valid_until: Mapped[date | None] = mapped_column(Date, default=None)


class AvailabilityException(IdMixin, Base):
    __tablename__ = "availability_exceptions"

    resource_id: Mapped[str] = mapped_column(ForeignKey("bookable_resources.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ExceptionKind] = mapped_column(str_enum(ExceptionKind, 16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")


class Booking(IdMixin, Base):
    """One seat of one slot. The database makes double booking impossible, whatever Python does: the
    partial unique index below (two transactions cannot both hold (resource, start, seat) while
    booked) and, on PostgreSQL, the exclusion constraint after the class (nor one seat over two
    overlapping times that start differently, e.g. an old booking across a slot of a new grid)."""

    __tablename__ = "bookings"
    __table_args__ = (
        Index(
            "uq_bookings_active_seat",
            "resource_id",
            "starts_at",
            "seat",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
        Index("ix_bookings_resource_time", "resource_id", "starts_at"),
    )

    resource_id: Mapped[str] = mapped_column(ForeignKey("bookable_resources.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seat: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[BookingStatus] = mapped_column(str_enum(BookingStatus, 16), default=BookingStatus.BOOKED)
    subject_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_by: Mapped[str | None] = mapped_column(String(36), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")
    rescheduled_from_id: Mapped[str | None] = mapped_column(String(36), default=None)


# Migration 0014 (PostgreSQL only, with btree_gist; SQLite checks overlaps under its write lock in
# service.claim_seat). Declared here too so that the model says what the database holds.
_bookings = cast(Table, Booking.__table__)
_bookings.append_constraint(ExcludeConstraint(
    (func.tstzrange(_bookings.c.starts_at, _bookings.c.ends_at), "&&"), ("resource_id", "="), ("seat", "="),
    name="ex_bookings_active_seat", using="gist", where=text("status = 'booked'"),
).ddl_if(dialect="postgresql"))


class CalendarFeed(IdMixin, Base):
    """A secret .ics URL: of one user's bookings, or of one resource's. Only the token's hash is kept."""

    __tablename__ = "calendar_feeds"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[str | None] = mapped_column(
        ForeignKey("bookable_resources.id", ondelete="CASCADE"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ReminderStatus(enum.StrEnum):
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class ReminderDelivery(IdMixin, Base):
    """One reminder of one booking. The unique key is claimed *before* sending, so a restart or a
    second worker never sends the same reminder twice (at most once: a crash mid-send loses it)."""

    __tablename__ = "reminder_deliveries"
    __table_args__ = (Index("uq_reminder_once", "booking_id", "offset_minutes", "channel", unique=True),)

    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    offset_minutes: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[ReminderStatus] = mapped_column(str_enum(ReminderStatus, 16), default=ReminderStatus.SENDING)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error: Mapped[str] = mapped_column(String(200), default="")


class Series(IdMixin, Base):
    """Recurring sessions (RFC 5545 RRULE), e.g. a class every Monday and Wednesday 07:30 for a term.

    The rule is kept in local wall-clock time of its zone, as calendar apps do, so that 07:30 stays
    07:30 across a DST change; occurrences are expanded on demand, never stored one by one."""

    __tablename__ = "recurring_series"

    resource_id: Mapped[str] = mapped_column(ForeignKey("bookable_resources.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    rrule: Mapped[str] = mapped_column(String(500))
    first_start_local: Mapped[datetime] = mapped_column(DateTime(timezone=False))  # naive local time
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OccurrenceChange(IdMixin, Base):
    """One occurrence cancelled or moved (RFC 5545 EXDATE / RECURRENCE-ID)."""

    __tablename__ = "occurrence_changes"
    __table_args__ = (Index("uq_occurrence_change", "series_id", "original_start", unique=True),)

    series_id: Mapped[str] = mapped_column(ForeignKey("recurring_series.id", ondelete="CASCADE"))
    original_start: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    new_start: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    new_end: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    note: Mapped[str] = mapped_column(String(200), default="")
