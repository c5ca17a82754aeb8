"""Booking benchmark: N concurrent clients book random free slots over HTTP, on SQLite and PostgreSQL.

For each database: `caunoi serve` in its own process, one resource with a month of 5-minute slots,
N clients (one logged-in session each, staff booking for a patient) picking random slots from the
published list (so some collide). Prints one JSON document with bookings/s, latency p50/p99,
conflicts (409) returned, and double bookings found afterwards by a query (must be 0).

    python bench/booking.py [--quick] [--clients 32] [--seconds 10] [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.demo import DEMO_PASSWORD

CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
DOUBLE_BOOKINGS = text(
    "SELECT count(*) FROM (SELECT b.resource_id, b.starts_at FROM bookings b "
    "JOIN bookable_resources r ON r.id = b.resource_id WHERE b.status = 'booked' "
    "GROUP BY b.resource_id, b.starts_at, r.capacity HAVING count(*) > r.capacity) AS over"
)


def session(limit: int = 100) -> aiohttp.ClientSession:
    # unsafe=True: keep cookies set by an IP address (127.0.0.1), which aiohttp drops by default.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 connector=aiohttp.TCPConnector(limit=limit))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


async def login(http: aiohttp.ClientSession, base: str, email: str) -> str:
    async with http.get(f"{base}/login") as page:
        token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    async with http.post(f"{base}/login", data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token},
                         allow_redirects=False) as response:
        assert response.status == 302, f"login failed: {response.status}"
    async with http.get(f"{base}/rooms") as page:
        return CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]


async def setup_resource(base: str) -> tuple[str, str, list[str]]:
    async with session() as http:
        csrf = await login(http, base, "quantri@tramyte.demo")
        me = await (await http.get(f"{base}/api/me")).json()
        tenant = me["roles"][0]["tenant_id"]
        resource = await (await http.post(f"{base}/api/scheduling/tenants/{tenant}/resources",
                                          headers={"X-CSRF-Token": csrf},
                                          json={"kind": "service", "name": "bench", "slot_minutes": 5,
                                                "min_notice_minutes": 0, "horizon_days": 60,
                                                "timezone": "UTC"})).json()
        rules = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]  # all day
        await http.put(f"{base}/api/scheduling/resources/{resource['id']}/availability",
                       headers={"X-CSRF-Token": csrf}, json={"rules": rules})
        starts: list[str] = []
        cursor = datetime.now(UTC) + timedelta(hours=1)
        for _ in range(2):  # two 31-day pages of slots
            page = await (await http.get(f"{base}/api/scheduling/resources/{resource['id']}/slots",
                                         params={"from": cursor.isoformat(),
                                                 "to": (cursor + timedelta(days=31)).isoformat()})).json()
            starts += [s["start"] for s in page["slots"]]
            cursor += timedelta(days=31)
    return resource["id"], tenant, starts


async def client_loop(http: aiohttp.ClientSession, csrf: str, base: str, resource_id: str, subject: str,
                      starts: list[str], deadline: float, latencies: list[float], counts: dict[str, int]) -> None:
    url = f"{base}/api/scheduling/resources/{resource_id}/bookings"
    if True:
        while time.perf_counter() < deadline:
            body = {"start": random.choice(starts), "subject_user_id": subject}
            began = time.perf_counter()
            async with http.post(url, headers={"X-CSRF-Token": csrf}, json=body) as response:
                await response.read()
                status = response.status
            latencies.append((time.perf_counter() - began) * 1000)
            key = {201: "booked", 409: "conflicts"}.get(status, f"status_{status}")
            counts[key] = counts.get(key, 0) + 1


async def patient_id(base: str) -> str:
    async with session() as http:
        await login(http, base, "benhnhan1@tramyte.demo")
        return str((await (await http.get(f"{base}/api/me")).json())["id"])


async def run(database: str, url: str, clients: int, seconds: float) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CAUNOI_DATA_DIR": tmp, "CAUNOI_SECRET_KEY": secrets.token_urlsafe(40),
               "CAUNOI_LOG_LEVEL": "WARNING", "CAUNOI_DATABASE_URL": url}
        caunoi = str(Path(sys.executable).with_name("caunoi"))
        subprocess.run([caunoi, "demo"], env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: ASYNC221
        server = subprocess.Popen([caunoi, "serve", "--port", str(port)], env=env,  # noqa: ASYNC220
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            resource_id, _tenant, starts = await setup_resource(base)
            subject = await patient_id(base)
            latencies: list[float] = []
            counts: dict[str, int] = {}
            # Log every client in before the clock starts: Argon2 is slow on purpose.
            sessions = [session(limit=1) for _ in range(clients)]
            csrfs = [await login(http, base, "bacsi@tramyte.demo") for http in sessions]
            began = time.perf_counter()
            await asyncio.gather(*(client_loop(http, csrf, base, resource_id, subject, starts, began + seconds,
                                               latencies, counts) for http, csrf in zip(sessions, csrfs, strict=True)))
            elapsed = time.perf_counter() - began
            for http in sessions:
                await http.close()
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(15)
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            double = int((await connection.execute(DOUBLE_BOOKINGS)).scalar_one())
        await engine.dispose()
    requests = len(latencies)
    return {
        "database": database, "clients": clients, "seconds": round(elapsed, 2), "requests": requests,
        "requests_per_s": round(requests / elapsed, 1), "bookings_per_s": round(counts.get("booked", 0) / elapsed, 1),
        "latency_ms_p50": pct(latencies, 0.5), "latency_ms_p99": pct(latencies, 0.99),
        "booked": counts.get("booked", 0), "conflicts": counts.get("conflicts", 0),
        "other_statuses": {k: v for k, v in counts.items() if k not in ("booked", "conflicts")},
        "double_bookings": double,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description="booking benchmark")
    parser.add_argument("--quick", action="store_true", help="5 s per database")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="an admin DSN; the benchmark creates and drops its own database")
    args = parser.parse_args()
    seconds = 5.0 if args.quick else args.seconds
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", args.clients, seconds))
    name = f"caunoi_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.postgres)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        base = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        runs.append(await run("postgresql", f"{base}/{name}", args.clients, seconds))
    finally:
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(json.dumps({"benchmark": "booking", "runs": runs}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
