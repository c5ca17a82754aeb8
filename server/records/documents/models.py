"""Documents, their versions and signatures. A change never overwrites: it adds a version."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, IdMixin, UTCDateTime, str_enum, utcnow


class DocumentKind(enum.StrEnum):
    NOTE = "note"  # a visit note (SOAP), a lesson note
    MINUTES = "minutes"  # biên bản hội chẩn, a meeting's minutes
    REPORT = "report"
    PRESCRIPTION = "prescription"
    CONSENT = "consent"
    ATTACHMENT = "attachment"  # an image, a PDF the patient or a colleague sent


class SubjectType(enum.StrEnum):
    PATIENT = "patient"
    STUDENT = "student"
    CLASS = "class"


class Document(IdMixin, Base):
    __tablename__ = "documents"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind, 16))
    title: Mapped[str] = mapped_column(String(200))
    subject_type: Mapped[SubjectType] = mapped_column(str_enum(SubjectType, 16))
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    context_type: Mapped[str | None] = mapped_column(String(32), default=None)  # encounter, session, booking
    context_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DocumentVersion(IdMixin, Base):
    __tablename__ = "document_versions"
    __table_args__ = (Index("uq_document_version", "document_id", "version", unique=True),)

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text, default=None)  # text documents live in the database
    storage_key: Mapped[str | None] = mapped_column(String(200), default=None)  # files live in storage
    filename: Mapped[str | None] = mapped_column(String(200), default=None)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Signature(IdMixin, Base):
    """Who signed which version, when, and the hash of what they signed."""

    __tablename__ = "document_signatures"
    __table_args__ = (Index("uq_signature_once", "document_id", "version", "signer_id", unique=True),)

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    signer_id: Mapped[str] = mapped_column(String(36))
    signer_role: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
