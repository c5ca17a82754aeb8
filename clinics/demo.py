"""Demo consultations: one room per patient, hosted by the doctor, with the nurse assisting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from server.rooms.models import Room, RoomKind, RoomMember, RoomRole

if TYPE_CHECKING:
    from server.demo import Demo


async def seed_demo(db: AsyncSession, demo: Demo) -> None:
    from datetime import date

    from clinics.models import FacilityLevel, FacilityProfile

    db.add(FacilityProfile(tenant_id=demo.facility.id, level=FacilityLevel.COMMUNE_STATION, province_code="92",
                           telemedicine_enabled=True, eligibility_reference="Demo: thông báo đủ điều kiện KCB từ xa",
                           eligibility_date=date(2025, 7, 1)))
    await seed_people(db, demo)
    for handle in ("patient1", "patient2"):
        patient = demo.users[handle]
        room = Room(tenant_id=demo.facility.id, kind=RoomKind.CONSULTATION,
                    title=f"Khám từ xa · {patient.display_name}")
        db.add(room)
        await db.flush()
        db.add_all([
            RoomMember(room_id=room.id, user_id=demo.users["doctor"].id, role=RoomRole.HOST),
            RoomMember(room_id=room.id, user_id=demo.users["nurse"].id, role=RoomRole.PARTICIPANT),
            RoomMember(room_id=room.id, user_id=patient.id, role=RoomRole.PARTICIPANT),
        ])
    await db.flush()
    await seed_schedule(db, demo)
    await seed_hospital(db, demo)
    await seed_departments(db, demo)


async def seed_schedule(db: AsyncSession, demo: Demo) -> None:
    """The doctor's remote-consultation hours: weekday mornings and afternoons, Saturday mornings."""
    from datetime import time

    from server.scheduling.models import AvailabilityRule, Resource, ResourceKind

    resource = Resource(tenant_id=demo.facility.id, kind=ResourceKind.PRACTITIONER, user_id=demo.users["doctor"].id,
                        name=f"{demo.users['doctor'].display_name} · khám từ xa", slot_minutes=15,
                        buffer_minutes=5, min_notice_minutes=60, horizon_days=30)
    db.add(resource)
    await db.flush()
    hours = [(time(7, 30), time(11, 30)), (time(13, 30), time(16, 30))]
    for weekday in range(6):
        for start, end in hours[:1] if weekday == 5 else hours:
            db.add(AvailabilityRule(resource_id=resource.id, weekday=weekday, start_time=start, end_time=end))
    await db.flush()


async def seed_people(db: AsyncSession, demo: Demo) -> None:
    """Licences for the staff; date of birth, identifiers and (for the child) a guardian for patients."""
    from datetime import date

    from clinics.models import PatientProfile, PractitionerProfile, Sex

    db.add_all([
        PractitionerProfile(user_id=demo.users["doctor"].id, tenant_id=demo.facility.id,
                            licence_number="000123/CT-CCHN", specialty="Y học gia đình",
                            scope_of_practice="Khám bệnh, chữa bệnh đa khoa"),
        PractitionerProfile(user_id=demo.users["nurse"].id, tenant_id=demo.facility.id,
                            licence_number="004567/CT-CCHN", specialty="Điều dưỡng",
                            scope_of_practice="Chăm sóc người bệnh"),
        PatientProfile(user_id=demo.users["patient1"].id, tenant_id=demo.facility.id, birth_date=date(1956, 3, 14),
                       sex=Sex.MALE, phone="0901234567", address="Ấp Tân Long, xã Tân Phú Thạnh, TP. Cần Thơ",
                       cccd="093056000123", bhyt="HT3920930561234"),
        PatientProfile(user_id=demo.users["patient2"].id, tenant_id=demo.facility.id, birth_date=date(2016, 9, 2),
                       sex=Sex.FEMALE, address="Ấp Tân Thạnh, xã Tân Phú Thạnh, TP. Cần Thơ",
                       bhyt="TE1920930567890", guardian_name="Võ Văn Em", guardian_phone="0912345678",
                       guardian_relationship="cha"),
    ])
    await db.flush()


HOSPITAL_SLUG = "bvdk-ct-demo"
HOSPITAL_PEOPLE = [
    # handle, e-mail, display name, specialty: the cardiologist chairs a hội chẩn, the other writes the minutes
    ("hospital_doctor", "bacsi.timmach@bvdkct.demo", "BS.CKII Trần Minh Khoa", "Nội tim mạch", "001890/CT-CCHN"),
    ("hospital_secretary", "thuky.hoichan@bvdkct.demo", "BS. Lý Thu Hà", "Nội tổng hợp", "002345/CT-CCHN"),
]


async def seed_hospital(db: AsyncSession, demo: Demo) -> None:
    """A second facility to ask for a hội chẩn: the city hospital, with two of its doctors; and
    patient1's consent to share their data for one."""
    from datetime import date

    from clinics.consent import load_texts
    from clinics.models import (
        ConsentPurpose,
        ConsentRecord,
        FacilityLevel,
        FacilityProfile,
        PractitionerProfile,
    )
    from server.auth.accounts import assign_role, create_user
    from server.auth.models import Role, Tenant, TenantKind
    from server.auth.passwords import hash_password
    from server.demo import DEMO_PASSWORD

    hospital = Tenant(kind=TenantKind.FACILITY, name="Bệnh viện Đa khoa TP Cần Thơ", slug=HOSPITAL_SLUG)
    db.add(hospital)
    await db.flush()
    db.add(FacilityProfile(tenant_id=hospital.id, level=FacilityLevel.PROVINCIAL_HOSPITAL, province_code="92",
                           telemedicine_enabled=True, eligibility_reference="Demo: thông báo đủ điều kiện KCB từ xa",
                           eligibility_date=date(2025, 7, 1)))
    password = hash_password(DEMO_PASSWORD)
    for _handle, email, name, specialty, licence in HOSPITAL_PEOPLE:
        user = await create_user(db, email=email, display_name=name, password_hash=password)
        await assign_role(db, user, hospital, Role.DOCTOR)
        db.add(PractitionerProfile(user_id=user.id, tenant_id=hospital.id, licence_number=licence,
                                   specialty=specialty, scope_of_practice="Khám bệnh, chữa bệnh chuyên khoa"))
        demo.logins.append((f"doctor ({hospital.name})", email, DEMO_PASSWORD))
    # Demo only: a consent as if patient1 had accepted the data-sharing text (no device or address: none was used).
    text = load_texts()[(ConsentPurpose.DATA_SHARING_CONSULTATION, "vi")]
    db.add(ConsentRecord(tenant_id=demo.facility.id, patient_id=demo.users["patient1"].id,
                         purpose=text.purpose, text_version=text.version, text_language=text.language,
                         text_sha256=text.sha256, accepted=True, decided_by=demo.users["patient1"].id,
                         decided_as="patient",
                         user_agent="demo seed"))
    await db.flush()


DEPARTMENTS = {
    # facility slug: (name, code, services, the handles of who works there)
    "tyt-demo": [("Khám bệnh", "K01", "Khám bệnh đa khoa\nKhám từ xa", ["doctor", "nurse"]),
                 ("Tiêm chủng", "K02", "Tiêm chủng mở rộng", [])],
    HOSPITAL_SLUG: [("Khoa Nội tim mạch", "K03", "Khám và điều trị tim mạch\nHội chẩn từ xa", ["hospital_doctor"]),
                    ("Khoa Nội tổng hợp", "K01", "Khám và điều trị nội khoa", ["hospital_secretary"]),
                    ("Khoa Chẩn đoán hình ảnh", "K20", "X-quang, siêu âm\nHội chẩn hình ảnh từ xa", [])],
}


async def seed_departments(db: AsyncSession, demo: Demo) -> None:
    """Departments of both demo facilities, with their doctors and nurses assigned."""
    from sqlalchemy import select

    from clinics.models import Department, PractitionerProfile
    from server.auth.models import Tenant, User

    emails = {handle: email for handle, email, *_ in HOSPITAL_PEOPLE}
    for slug, departments in DEPARTMENTS.items():
        tenant = await db.scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        for name, code, services, handles in departments:
            department = Department(tenant_id=tenant.id, name=name, code=code, services=services)
            db.add(department)
            await db.flush()
            for handle in handles:
                user_id = demo.users[handle].id if handle in demo.users else await db.scalar(
                    select(User.id).where(User.email == emails[handle]))
                profile = await db.scalar(select(PractitionerProfile).where(
                    PractitionerProfile.user_id == user_id, PractitionerProfile.tenant_id == tenant.id))
                assert profile is not None
                profile.department_id = department.id
    await db.flush()
