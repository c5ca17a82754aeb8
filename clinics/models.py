"""Clinic data: facility profiles and their effective-dated parents, practitioners, patients."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, IdMixin, UTCDateTime, str_enum, utcnow


class FacilityLevel(enum.StrEnum):
    PROVINCIAL_HOSPITAL = "provincial_hospital"
    REGIONAL_HOSPITAL = "regional_hospital"  # the former district hospitals (no district level since 2025)
    COMMUNE_STATION = "commune_station"  # trạm y tế xã/phường
    CLINIC = "clinic"
    OTHER = "other"


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"


class FacilityProfile(Base):
    """What a health-facility tenant is, and whether it may run remote consultations.

    Decree 96/2023 Art. 87: a facility announces its eligibility for remote examination; without that
    announcement (reference and date recorded here) it cannot open remote consultations."""

    __tablename__ = "facility_profiles"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[FacilityLevel] = mapped_column(str_enum(FacilityLevel, 24))
    facility_code: Mapped[str | None] = mapped_column(String(5), default=None)  # mã cơ sở KCB
    province_code: Mapped[str | None] = mapped_column(String(3), default=None)  # 2025 code (e.g. 92 Cần Thơ)
    telemedicine_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    eligibility_reference: Mapped[str] = mapped_column(String(200), default="")
    eligibility_date: Mapped[date | None] = mapped_column(Date, default=None)


class FacilityParent(IdMixin, Base):
    """"Facility X reported to Y from … until …": provinces merge and re-parent facilities, and the
    history must stay correct for records made before the change."""

    __tablename__ = "facility_parents"

    child_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, default=None)  # exclusive; None: still valid


class PractitionerProfile(IdMixin, Base):
    __tablename__ = "practitioner_profiles"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    licence_number: Mapped[str] = mapped_column(String(40))  # số chứng chỉ hành nghề / giấy phép hành nghề
    specialty: Mapped[str] = mapped_column(String(100), default="")
    scope_of_practice: Mapped[str] = mapped_column(Text, default="")
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"),
                                                      default=None, index=True)


class PatientProfile(IdMixin, Base):
    """A patient of one facility. Identifiers are validated (clinics/identifiers.py); a CCCD is unique
    within a facility, so the same person is not registered twice."""

    __tablename__ = "patient_profiles"
    __table_args__ = (
        UniqueConstraint("user_id", "tenant_id"),
        Index("uq_patient_cccd", "tenant_id", "cccd", unique=True,
              sqlite_where=text("cccd IS NOT NULL"), postgresql_where=text("cccd IS NOT NULL")),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[Sex] = mapped_column(str_enum(Sex, 8))
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    address: Mapped[str] = mapped_column(String(300), default="")
    cccd: Mapped[str | None] = mapped_column(String(12), default=None)
    bhyt: Mapped[str | None] = mapped_column(String(15), default=None)
    guardian_name: Mapped[str | None] = mapped_column(String(200), default=None)
    guardian_phone: Mapped[str | None] = mapped_column(String(20), default=None)
    guardian_relationship: Mapped[str | None] = mapped_column(String(50), default=None)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EncounterStatus(enum.StrEnum):
    PLANNED = "planned"  # booked; the patient has not arrived
    WAITING = "waiting"  # in the virtual waiting room
    IN_PROGRESS = "in_progress"  # admitted: the call is on
    FINISHED = "finished"
    CANCELLED = "cancelled"


class Encounter(IdMixin, Base):
    """One remote visit (FHIR Encounter, class VR): who, with whom, in which room, and where it stands.
    The room token is minted for the patient only once the visit is in progress (admitted)."""

    __tablename__ = "encounters"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    booking_id: Mapped[str | None] = mapped_column(String(36), default=None)
    status: Mapped[EncounterStatus] = mapped_column(str_enum(EncounterStatus, 16), default=EncounterStatus.PLANNED)
    walk_in: Mapped[bool] = mapped_column(Boolean, default=False)
    scheduled_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JoinLink(IdMixin, Base):
    """A one-time link that lets a patient without a password into their visit (sent by SMS or e-mail).
    Only the token's hash is kept; the first use consumes it and opens a session for the patient."""

    __tablename__ = "join_links"

    encounter_id: Mapped[str] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Whom the link logs in: the patient (None), or an invited guest (a relative, an interpreter, a
    # specialist from another facility), who goes straight into the call once it is in progress.
    guest_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), default=None)
    guest_role: Mapped[str | None] = mapped_column(String(16), default=None)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentPurpose(enum.StrEnum):
    REMOTE_EXAMINATION = "remote_examination"
    RECORDING = "recording"
    DATA_SHARING_CONSULTATION = "data_sharing_consultation"


class ConsentRecord(IdMixin, Base):
    """One explicit decision about one purpose, with its evidence: which text (version and hash) was
    shown, who decided (the patient, or the guardian for a minor, plus the child's own assent from age
    7), when, from where. Withdrawal is recorded, never a deletion."""

    __tablename__ = "consent_records"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[ConsentPurpose] = mapped_column(str_enum(ConsentPurpose, 32))
    text_version: Mapped[int] = mapped_column(Integer)
    text_language: Mapped[str] = mapped_column(String(8))
    text_sha256: Mapped[str] = mapped_column(String(64))
    accepted: Mapped[bool] = mapped_column(Boolean)
    decided_by: Mapped[str] = mapped_column(String(36))  # the user whose session gave it
    decided_as: Mapped[str] = mapped_column(String(16))  # "patient" | "guardian"
    guardian_name: Mapped[str | None] = mapped_column(String(200), default=None)
    child_assent: Mapped[bool | None] = mapped_column(Boolean, default=None)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    withdrawn_by: Mapped[str | None] = mapped_column(String(36), default=None)


class VisitMessage(IdMixin, Base):
    """A chat message between the patient and the clinic about one visit (waiting room and call)."""

    __tablename__ = "visit_messages"
    __table_args__ = (Index("ix_visit_messages_order", "encounter_id", "sent_at"),)

    encounter_id: Mapped[str] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"))
    sender_id: Mapped[str] = mapped_column(String(36))
    sender_name: Mapped[str] = mapped_column(String(200))
    from_clinic: Mapped[bool] = mapped_column(Boolean)
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsultationStatus(enum.StrEnum):
    """requested → accepted | declined → scheduled → in_session → concluded → signed (closed)."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    SCHEDULED = "scheduled"
    IN_SESSION = "in_session"
    CONCLUDED = "concluded"  # minutes written, not yet signed by the chair and the secretary
    SIGNED = "signed"  # closed: the current minutes carry the chair's and the secretary's signatures


class ConsultationRole(enum.StrEnum):
    CHAIR = "chair"  # chủ trì
    SECRETARY = "secretary"  # thư ký
    MEMBER = "member"
    REQUESTER = "requester"  # the station's doctor who asked


class Consultation(IdMixin, Base):
    """A hội chẩn (Thông tư 49/2017): a facility asks a department of another facility about one of
    its patients. The patient, the encounter and the minutes stay in the requesting facility's record;
    the consulted facility's people see them only as participants of this consultation."""

    __tablename__ = "consultations"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    consulted_tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    department: Mapped[str] = mapped_column(String(200))
    patient_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    encounter_id: Mapped[str | None] = mapped_column(ForeignKey("encounters.id", ondelete="SET NULL"), default=None)
    room_id: Mapped[str | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"), default=None)
    status: Mapped[ConsultationStatus] = mapped_column(str_enum(ConsultationStatus, 16),
                                                      default=ConsultationStatus.REQUESTED)
    urgency: Mapped[str] = mapped_column(String(16))  # routine | urgent | emergency
    reason: Mapped[str] = mapped_column(Text)
    history: Mapped[str] = mapped_column(Text, default="")  # tóm tắt bệnh sử, diễn biến
    findings: Mapped[str] = mapped_column(Text, default="")  # khám, cận lâm sàng
    decline_reason: Mapped[str | None] = mapped_column(Text, default=None)
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    conclusion: Mapped[str | None] = mapped_column(Text, default=None)  # kết luận chung
    diagnosis_icd10: Mapped[str | None] = mapped_column(String(10), default=None)
    diagnosis_text: Mapped[str | None] = mapped_column(String(300), default=None)
    management: Mapped[str | None] = mapped_column(Text, default=None)  # hướng xử trí
    minutes_document_id: Mapped[str | None] = mapped_column(String(36), default=None)
    requested_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    decided_by: Mapped[str | None] = mapped_column(String(36), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    concluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ConsultationQuestion(IdMixin, Base):
    """One question the requesting facility asks; the chair answers each (kết luận từng vấn đề)."""

    __tablename__ = "consultation_questions"
    __table_args__ = (UniqueConstraint("consultation_id", "position"),)

    consultation_id: Mapped[str] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    conclusion: Mapped[str | None] = mapped_column(Text, default=None)


class ConsultationParticipant(IdMixin, Base):
    """Who takes part, from which facility, in which role; the room's members mirror this list."""

    __tablename__ = "consultation_participants"
    __table_args__ = (UniqueConstraint("consultation_id", "user_id"),)

    consultation_id: Mapped[str] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    role: Mapped[ConsultationRole] = mapped_column(str_enum(ConsultationRole, 16))


class Department(IdMixin, Base):
    """A department (khoa, phòng) of a facility: where its practitioners work and what another
    facility asks for a hội chẩn. Deactivated, never deleted: old records still name it."""

    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(20), default="")  # the facility's own code, e.g. K02
    services: Mapped[str] = mapped_column(Text, default="")  # what it offers, one per line
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
