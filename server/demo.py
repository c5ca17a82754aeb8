"""Demo data: one health facility and one school, with people to log in as.

The plugins add their own part (the clinics plugin a consultation room, the classrooms plugin a
class); this module makes the tenants and accounts they build on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.accounts import assign_role, create_user
from server.auth.models import Role, Tenant, TenantKind, User
from server.auth.passwords import hash_password
from server.plugins import Plugin

DEMO_PASSWORD = "caunoi-demo"  # noqa: S105  (published on purpose) printed by `make run`; demo data is for a local trial only


@dataclass
class Demo:
    facility: Tenant
    school: Tenant
    users: dict[str, User] = field(default_factory=dict)  # key: a short handle ("doctor", "student1")
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (label, email, password)


PEOPLE: list[tuple[str, str, str, Role, str]] = [
    # handle, e-mail, display name, role, tenant ("facility" | "school")
    ("facility_admin", "quantri@tramyte.demo", "Lê Thị Quản Trị", Role.FACILITY_ADMIN, "facility"),
    ("doctor", "bacsi@tramyte.demo", "BS. Nguyễn Văn An", Role.DOCTOR, "facility"),
    ("nurse", "dieuduong@tramyte.demo", "ĐD. Trần Thị Bình", Role.NURSE, "facility"),
    ("patient1", "benhnhan1@tramyte.demo", "Phạm Văn Cường", Role.PATIENT, "facility"),
    ("patient2", "benhnhan2@tramyte.demo", "Võ Thị Dung", Role.PATIENT, "facility"),
    ("school_admin", "hieutruong@truong.demo", "Đặng Văn Hiệu", Role.SCHOOL_ADMIN, "school"),
    ("teacher", "giaovien@truong.demo", "Cô Huỳnh Thị Giang", Role.TEACHER, "school"),
    *[
        (f"student{i}", f"hocsinh{i}@truong.demo", name, Role.STUDENT, "school")
        for i, name in enumerate(
            ["Lâm Gia Hân", "Ngô Minh Khang", "Bùi Ngọc Lan", "Dương Quốc Minh", "Tạ Thu Ngân"], start=1
        )
    ],
]


async def seed_demo(db: AsyncSession, plugins: list[Plugin]) -> Demo | None:
    """Create the demo data once; returns None if it is already there."""
    if (await db.execute(select(Tenant).where(Tenant.slug == "tyt-demo"))).scalar_one_or_none():
        return None
    facility = Tenant(kind=TenantKind.FACILITY, name="Trạm Y tế xã Tân Phú Thạnh", slug="tyt-demo")
    school = Tenant(kind=TenantKind.SCHOOL, name="Trường Tiểu học Cái Răng", slug="th-demo")
    db.add_all([facility, school])
    await db.flush()
    demo = Demo(facility=facility, school=school)
    tenants = {"facility": facility, "school": school}
    shared_hash = hash_password(DEMO_PASSWORD)  # one published password: hashing it twelve times buys nothing
    for handle, email, name, role, tenant in PEOPLE:
        user = await create_user(db, email=email, display_name=name, password_hash=shared_hash)
        await assign_role(db, user, tenants[tenant], role)
        demo.users[handle] = user
        demo.logins.append((f"{role.value}", email, DEMO_PASSWORD))
    for plugin in plugins:
        if plugin.seed_demo is not None:
            await plugin.seed_demo(db, demo)
    return demo
