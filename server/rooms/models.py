"""Room and membership tables."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.auth.models import Tenant, User
from server.db.base import Base, IdMixin, UTCDateTime, str_enum, utcnow


def new_room_name() -> str:
    # The room name travels in tokens and URLs: unguessable, URL-safe, short.
    return "r-" + secrets.token_urlsafe(12)


class RoomKind(enum.StrEnum):
    CONSULTATION = "consultation"
    CLASS = "class"
    MEETING = "meeting"


class RoomRole(enum.StrEnum):
    HOST = "host"  # the doctor, the teacher: may admit, mute, end (room_admin grant)
    PARTICIPANT = "participant"  # may publish and subscribe
    VIEWER = "viewer"  # may only subscribe


class Room(IdMixin, Base):
    __tablename__ = "rooms"

    name: Mapped[str] = mapped_column(String(64), unique=True, default=new_room_name)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RoomKind] = mapped_column(str_enum(RoomKind, 16))
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="raise_on_sql")
    members: Mapped[list[RoomMember]] = relationship(
        back_populates="room", lazy="raise_on_sql", cascade="all, delete-orphan"
    )


class RoomMember(IdMixin, Base):
    __tablename__ = "room_members"
    __table_args__ = (UniqueConstraint("room_id", "user_id"),)

    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[RoomRole] = mapped_column(str_enum(RoomRole, 16))

    room: Mapped[Room] = relationship(back_populates="members", lazy="raise_on_sql")
    user: Mapped[User] = relationship(lazy="raise_on_sql")
