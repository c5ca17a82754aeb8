"""Schema migrations, the append-only audit log, UTC timestamps, demo data and room access,
on SQLite and on a fresh PostgreSQL database (the `database_url` fixture runs each test on both)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clinics.demo import HOSPITAL_PEOPLE
from server.auth.models import Role, RoleAssignment, Tenant, TenantKind, User
from server.auth.passwords import verify_password
from server.db.base import UTCDateTime
from server.db.engine import create_engine, session_factory
from server.db.migrate import alembic_config, upgrade
from server.demo import DEMO_PASSWORD, PEOPLE, Demo, seed_demo
from server.plugins import load_plugins
from server.records.audit import AuditContext, AuditEvent, Outcome, audit
from server.rooms.access import room_access, rooms_of
from server.rooms.models import Room, RoomKind, RoomMember

SCHEMA_TABLES = {"tenants", "users", "role_assignments", "login_sessions", "rooms", "room_members",
                 "audit_events"}
ICT = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def current_revisions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


@pytest.fixture
async def raw_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the (still empty) test database."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(database_url: str, raw_engine: AsyncEngine) -> AsyncEngine:
    """An engine on the test database, migrated to head."""
    await upgrade(database_url)
    return raw_engine


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


# --- migrations -----------------------------------------------------------------------------


async def test_upgrade_creates_the_schema(database_url: str, raw_engine: AsyncEngine) -> None:
    assert await table_names(raw_engine) == set()
    await upgrade(database_url)
    tables = await table_names(raw_engine)
    assert tables >= SCHEMA_TABLES | {"alembic_version"}
    assert await current_revisions(raw_engine) == [head_revision(database_url)]

    async with raw_engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("audit_events")}
        )
        unique = await connection.run_sync(lambda sync: inspect(sync).get_unique_constraints("users"))
    assert {"id", "at", "actor_id", "action", "outcome", "target_type", "target_id", "tenant_id"} <= columns
    assert any(c["column_names"] == ["email"] for c in unique)


async def test_upgrade_twice_is_harmless(database_url: str, raw_engine: AsyncEngine) -> None:
    await upgrade(database_url)
    async with session_factory(raw_engine).begin() as db:
        db.add(Tenant(kind=TenantKind.FACILITY, name="Trạm Y tế", slug="tram"))

    await upgrade(database_url)

    assert await table_names(raw_engine) >= SCHEMA_TABLES
    assert await current_revisions(raw_engine) == [head_revision(database_url)]
    async with session_factory(raw_engine)() as db:
        assert (await db.execute(select(Tenant.slug))).scalars().all() == ["tram"]


async def test_downgrade_to_base_then_upgrade_again(database_url: str, raw_engine: AsyncEngine) -> None:
    await upgrade(database_url)
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "base")

    assert not (await table_names(raw_engine)) & SCHEMA_TABLES
    assert await current_revisions(raw_engine) == []

    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "head")

    assert await table_names(raw_engine) >= SCHEMA_TABLES
    assert await current_revisions(raw_engine) == [head_revision(database_url)]
    # The append-only triggers came back with the table.
    sessions = session_factory(raw_engine)
    await audit(sessions, AuditContext(actor_id="u1"), "login", Outcome.SUCCESS)
    with pytest.raises(DBAPIError, match="append-only"):
        async with raw_engine.begin() as connection:
            await connection.execute(text("DELETE FROM audit_events"))
    async with raw_engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM audit_events"))).scalar_one() == 1


# --- the append-only audit log ----------------------------------------------------------------


async def audit_rows(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as connection:
        result = await connection.execute(text("SELECT * FROM audit_events ORDER BY id"))
        return [tuple(row) for row in result]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'forged' WHERE id = :id",
        "UPDATE audit_events SET outcome = 'success'",
        "DELETE FROM audit_events WHERE id = :id",
        "DELETE FROM audit_events",
    ],
)
async def test_audit_log_refuses_update_and_delete(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], statement: str
) -> None:
    context = AuditContext(actor_id="user-1", actor_role="doctor", ip="203.0.113.7", user_agent="pytest",
                           request_id="req-1")
    await audit(sessions, context, "room.join", Outcome.DENIED, target_type="room", target_id="r-1",
                tenant_id="tenant-1")
    before = await audit_rows(engine)
    assert len(before) == 1
    async with sessions() as db:
        event = (await db.execute(select(AuditEvent))).scalar_one()
    assert (event.actor_id, event.actor_role, event.action, event.outcome) == (
        "user-1", "doctor", "room.join", Outcome.DENIED)
    assert (event.target_type, event.target_id, event.tenant_id, event.ip, event.request_id) == (
        "room", "r-1", "tenant-1", "203.0.113.7", "req-1")

    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as connection:
            await connection.execute(text(statement), {"id": event.id})

    assert await audit_rows(engine) == before
    # Appending still works after a refused change.
    await audit(sessions, context, "room.leave", Outcome.SUCCESS)
    assert len(await audit_rows(engine)) == 2


async def test_audit_log_refuses_orm_update_and_delete(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await audit(sessions, AuditContext(actor_id="user-1"), "login", Outcome.FAILURE)
    before = await audit_rows(engine)
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as db:
            event = (await db.execute(select(AuditEvent))).scalar_one()
            event.outcome = Outcome.SUCCESS
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as db:
            await db.delete((await db.execute(select(AuditEvent))).scalar_one())
    assert await audit_rows(engine) == before


@pytest.mark.postgres
async def test_audit_log_refuses_truncate_on_postgresql(postgres_url: str) -> None:
    await upgrade(postgres_url)
    engine = create_engine(postgres_url)
    try:
        await audit(session_factory(engine), AuditContext(actor_id="user-1"), "login", Outcome.SUCCESS)
        before = await audit_rows(engine)
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text("TRUNCATE audit_events"))
        assert await audit_rows(engine) == before
        assert len(before) == 1
    finally:
        await engine.dispose()


# --- UTCDateTime --------------------------------------------------------------------------------

scratch_metadata = MetaData()
scratch = Table(
    "utc_scratch",
    scratch_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=True),
)


async def test_utc_datetime_reads_back_aware_utc(raw_engine: AsyncEngine) -> None:
    async with raw_engine.begin() as connection:
        await connection.run_sync(scratch_metadata.create_all)
    local = datetime(2026, 3, 1, 6, 30, 15, 123456, tzinfo=ICT)  # 23:30:15 UTC the day before
    utc = datetime(2026, 3, 1, 0, 0, 0, tzinfo=UTC)
    async with raw_engine.begin() as connection:
        await connection.execute(scratch.insert(), [{"id": 1, "at": local}, {"id": 2, "at": utc},
                                                    {"id": 3, "at": None}])
    async with raw_engine.connect() as connection:
        rows = {key: value for key, value in await connection.execute(select(scratch.c.id, scratch.c.at))}
        # A bound value in another zone is converted before comparison: only row 2 is after 06:45 ICT.
        later = (await connection.execute(
            select(scratch.c.id).where(scratch.c.at > datetime(2026, 3, 1, 6, 45, tzinfo=ICT))
        )).scalars().all()

    for key in (1, 2):
        value = rows[key]
        assert value is not None
        assert value.tzinfo is not None, f"row {key} read back naive"
        assert value.utcoffset() == timedelta(0)
    assert rows[1] == local
    assert rows[1].replace(tzinfo=None) == datetime(2026, 2, 28, 23, 30, 15, 123456)
    assert rows[2] == utc
    assert rows[3] is None
    assert later == [2]


async def test_utc_datetime_refuses_naive_datetimes(raw_engine: AsyncEngine) -> None:
    async with raw_engine.begin() as connection:
        await connection.run_sync(scratch_metadata.create_all)
    with pytest.raises(StatementError, match="naive datetime") as raised:
        async with raw_engine.begin() as connection:
            await connection.execute(scratch.insert(), {"id": 1, "at": datetime(2026, 3, 1, 6, 30)})
    assert isinstance(raised.value.orig, ValueError)
    async with raw_engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(scratch))).scalar_one() == 0


async def test_model_timestamps_are_aware_utc(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before = datetime.now(UTC)
    await audit(sessions, AuditContext(), "login", Outcome.SUCCESS)
    async with sessions() as db:
        at = (await db.execute(select(AuditEvent.at))).scalar_one()
    assert at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= at <= datetime.now(UTC) + timedelta(seconds=1)


# --- demo data and room access ------------------------------------------------------------------


@pytest.fixture
async def demo(sessions: async_sessionmaker[AsyncSession]) -> Demo:
    async with sessions.begin() as db:
        created = await seed_demo(db, load_plugins())
    assert created is not None
    return created


async def counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as db:
        return {
            model.__tablename__: (await db.execute(select(func.count()).select_from(model))).scalar_one()
            for model in (Tenant, User, RoleAssignment, Room, RoomMember)
        }


async def test_demo_seed_creates_tenants_people_and_rooms(
    sessions: async_sessionmaker[AsyncSession], demo: Demo
) -> None:
    async with sessions() as db:
        by_kind = select(Tenant.kind, func.count()).group_by(Tenant.kind)
        tenants = [(kind, n) for kind, n in await db.execute(by_kind)]
        users = (await db.execute(select(User))).scalars().all()
        roles = [(email, role, kind) for email, role, kind in await db.execute(
            select(User.email, RoleAssignment.role, Tenant.kind)
            .join(RoleAssignment, RoleAssignment.user_id == User.id)
            .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
        )]
        rooms_by_kind = select(Room.kind, func.count()).group_by(Room.kind)
        rooms = [(kind, n) for kind, n in await db.execute(rooms_by_kind)]

    # The station and the school, plus the city hospital the clinics plugin adds for a hội chẩn.
    assert dict(tenants) == {TenantKind.FACILITY: 2, TenantKind.SCHOOL: 1}
    hospital = {email for _h, email, *_rest in HOSPITAL_PEOPLE}
    assert len(users) == 12 + len(hospital)
    assert {u.email for u in users} == {email for _h, email, _n, _r, _t in PEOPLE} | hospital
    assert sorted(roles) == sorted(
        [(email, role, TenantKind.FACILITY if tenant == "facility" else TenantKind.SCHOOL)
         for _h, email, _n, role, tenant in PEOPLE] + [(email, Role.DOCTOR, TenantKind.FACILITY) for email in hospital]
    )
    for user in users:
        assert user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$"), user.password_hash
        assert DEMO_PASSWORD not in user.password_hash
        assert verify_password(user.password_hash, DEMO_PASSWORD)
        assert not verify_password(user.password_hash, DEMO_PASSWORD + "x")
        assert user.is_active
    assert dict(rooms) == {RoomKind.CONSULTATION: 2, RoomKind.CLASS: 1}
    assert len(demo.users) == 12
    assert demo.facility.kind == TenantKind.FACILITY and demo.school.kind == TenantKind.SCHOOL


async def test_demo_seed_is_idempotent(sessions: async_sessionmaker[AsyncSession], demo: Demo) -> None:
    before = await counts(sessions)
    assert before == {"tenants": 3, "users": 14, "role_assignments": 14, "rooms": 3, "room_members": 12}
    async with sessions.begin() as db:
        assert await seed_demo(db, load_plugins()) is None
    assert await counts(sessions) == before


async def room_of(db: AsyncSession, user_id: str, kind: RoomKind) -> Room:
    rooms = [room for room, _role in await rooms_of(db, user_id) if room.kind == kind]
    assert len(rooms) == 1, rooms
    return rooms[0]


async def test_room_access_in_consultations(sessions: async_sessionmaker[AsyncSession], demo: Demo) -> None:
    doctor, nurse = demo.users["doctor"].id, demo.users["nurse"].id
    patient1, patient2 = demo.users["patient1"].id, demo.users["patient2"].id
    async with sessions() as db:
        room1 = await room_of(db, patient1, RoomKind.CONSULTATION)
        room2 = await room_of(db, patient2, RoomKind.CONSULTATION)
        assert room1.id != room2.id

        doctor_access = await room_access(db, doctor, room1.name)
        assert doctor_access is not None
        assert doctor_access[0].id == room1.id
        grants = doctor_access[1]
        assert (grants.room_admin, grants.can_publish, grants.can_subscribe) == (True, True, True)

        nurse_access = await room_access(db, nurse, room1.name)
        assert nurse_access is not None and not nurse_access[1].room_admin

        own = await room_access(db, patient1, room1.name)
        assert own is not None
        assert (own[1].room_admin, own[1].can_publish, own[1].can_subscribe) == (False, True, True)

        assert await room_access(db, patient1, room2.name) is None
        assert await room_access(db, patient2, room1.name) is None
        assert await room_access(db, demo.users["teacher"].id, room1.name) is None
        assert await room_access(db, doctor, "r-no-such-room") is None


async def test_room_access_in_the_class(sessions: async_sessionmaker[AsyncSession], demo: Demo) -> None:
    async with sessions() as db:
        classroom = await room_of(db, demo.users["teacher"].id, RoomKind.CLASS)
        for i in range(1, 6):
            access = await room_access(db, demo.users[f"student{i}"].id, classroom.name)
            assert access is not None
            grants = access[1]
            assert grants.can_publish and grants.can_subscribe
            assert not grants.room_admin

        teacher = await room_access(db, demo.users["teacher"].id, classroom.name)
        assert teacher is not None and teacher[1].room_admin
        assert await room_access(db, demo.users["doctor"].id, classroom.name) is None
        assert await room_access(db, demo.users["patient1"].id, classroom.name) is None
