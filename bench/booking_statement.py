"""Micro-measurement of the PostgreSQL fast path's booking statement (server/scheduling/fast_booking.BOOK).

No HTTP, no server: a fresh database migrated to head with the demo seeded, one resource open all day
in 5-minute slots (capacity 1), then N bookings of successive slots one after another on one asyncpg
connection ("book"), then the same N slots again, every one refused ("taken"). Prints, per statement:
wall-clock ms, this process's CPU ms (asyncpg's share of the server's work) and the PostgreSQL
backend's CPU ms (from /proc). Seconds, not a benchmark: for comparing a change to the statement.

    python bench/booking_statement.py [--bookings 3000] [--rounds 2] [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import asyncpg

from server.db.base import new_id
from server.db.engine import create_engine, session_factory
from server.db.migrate import upgrade
from server.demo import seed_demo
from server.scheduling.fast_booking import BOOK, FastBooking
from server.scheduling.models import AvailabilityRule, Resource, ResourceKind

TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def prepare(dsn: str) -> tuple[str, str, str, str]:
    url = dsn.replace("postgresql://", "postgresql+asyncpg://")
    await upgrade(url)
    engine = create_engine(url)
    async with session_factory(engine).begin() as db:
        demo = await seed_demo(db, [])
        assert demo is not None
        resource = Resource(tenant_id=demo.facility.id, kind=ResourceKind.SERVICE, name="micro", slot_minutes=5,
                            min_notice_minutes=0, horizon_days=400, timezone="UTC", capacity=1)
        db.add(resource)
        await db.flush()
        db.add_all(AvailabilityRule(resource_id=resource.id, weekday=d, start_time=clock(0), end_time=clock(0))
                   for d in range(7))
    await engine.dispose()
    return resource.id, demo.facility.id, demo.users["doctor"].id, demo.users["patient1"].id


async def measure(dsn: str, bookings: int) -> dict[str, dict[str, float]]:
    resource_id, tenant, doctor, patient = await prepare(dsn)
    fast = FastBooking(dsn, max_connections=1)
    cached = await fast.resource(resource_id)
    assert cached is not None
    await fast.close()
    connection = await asyncpg.connect(dsn)
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)

    async def book(start: datetime) -> asyncpg.Record:
        return await connection.fetchrow(
            BOOK, resource_id, cached.fingerprint, patient, doctor, tenant, 1, start, new_id(),
            start + timedelta(minutes=5), "", datetime.now(UTC), new_id(), "doctor", "127.0.0.1", "micro", "m")

    for i in range(300):  # warm-up: plans and caches, on slots far from the measured ones
        await book(base + timedelta(days=300, minutes=5 * i))
    result = {}
    for label in ("book", "taken"):
        wall, cpu, pg = time.perf_counter(), time.process_time(), backend_cpu(pid)
        for i in range(bookings):
            row = await book(base + timedelta(minutes=5 * i))
            assert (row["seat"] is None) == (label == "taken"), row
        result[label] = {"wall_ms": (time.perf_counter() - wall) * 1000 / bookings,
                         "client_cpu_ms": (time.process_time() - cpu) * 1000 / bookings,
                         "postgres_cpu_ms": (backend_cpu(pid) - pg) * 1000 / bookings}
    await connection.close()
    return {label: {k: round(v, 3) for k, v in values.items()} for label, values in result.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1/postgres")
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        name = f"caunoi_micro_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        try:
            rounds.append(await measure(args.postgres.rsplit("/", 1)[0] + f"/{name}", args.bookings))
        finally:
            admin = await asyncpg.connect(args.postgres)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    print(json.dumps({"bookings_per_round": args.bookings, "rounds": rounds}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
