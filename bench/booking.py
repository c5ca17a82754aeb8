"""Booking benchmark: N concurrent clients book random free slots over HTTP, on SQLite and PostgreSQL.

For each database: `caunoi serve` in its own process(es), one resource open all day in 5-minute
slots (two months of them, one more month per 3 s of run beyond 6 s, so the run does not fill the
calendar), N keep-alive connections (sharing a few logged-in sessions: a doctor booking for a
patient) picking random slots from the published list (so some collide). Prints one JSON document with bookings/s,
latency p50/p99, conflicts (409) returned, double bookings found afterwards by a query (must be 0),
and the CPU time each part spent per request during the measured window: the server (all its
processes), the load generator, and the PostgreSQL backends serving the benchmark's database. CPU
per request is what to compare when the machine is shared: wall-clock rates are not.

    python bench/booking.py [--quick] [--clients 64] [--sessions 8] [--seconds 20] [--workers 2] [--generators 1]
                            [--databases sqlite,postgresql] [--postgres postgresql://postgres@127.0.0.1/postgres]

PostgreSQL runs `caunoi serve --workers 2` (one process per core; Redis for the bus), SQLite one
process (it has one writer anyway). Each database gets 1 s of warm-up load before the measured window.

The load generator is a plain HTTP/1.1 client on asyncio protocols: one request in flight per
connection (no pipelining), every response read in full (status line, headers, Content-Length body)
before the next request is sent, requests built from bytes without a client library (its CPU comes
out of the same two cores as the server's). Logins and setup use aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import math
import multiprocessing
import os
import random
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.demo import DEMO_PASSWORD

CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
# Bookings at whose start more active bookings of the resource overlap than it has places. The
# most overlap is always reached at some booking's start, so this finds every double booking, also
# between bookings that start at different times (an old booking off a changed slot grid).
DOUBLE_BOOKINGS = text(
    "SELECT count(*) FROM bookings b JOIN bookable_resources r ON r.id = b.resource_id "
    "WHERE b.status = 'booked' AND (SELECT count(*) FROM bookings o WHERE o.resource_id = b.resource_id "
    "AND o.status = 'booked' AND o.starts_at <= b.starts_at AND o.ends_at > b.starts_at) > r.capacity"
)
AUDITED = text("SELECT count(*) FROM audit_events WHERE action = 'scheduling.booking.create'")
TICKS = os.sysconf("SC_CLK_TCK")
WARMUP = 1.0  # seconds of load before the measured window


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


# --- CPU accounting from /proc (Linux) ----------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields after "pid (comm) "


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (the server's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def backends_of(database: str) -> list[int]:
    """PostgreSQL backends connected to ``database`` (their process title names it)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                title = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    result = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            result[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    return result


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


# --- the load generator -------------------------------------------------------------------------

@dataclass
class Conn:
    """One client: its session cookie and CSRF token (from a real login)."""

    cookie: str
    csrf: str


@dataclass
class Load:
    host: str
    port: int
    path: str
    subject: str
    starts: list[str]
    conns: list[Conn]
    start_at: float  # time.time() at which every generator starts
    warmup: float  # seconds of load before the measured window (pools filled, caches warm)
    seconds: float


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    warmup_requests: int = 0
    cpu_seconds: float = 0.0
    late_start_s: float = 0.0  # how long after start_at this generator began (should be ~0)
    errors: list[str] = field(default_factory=list)


class BookingClient(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending booking requests one after another."""

    def __init__(self, load: Load, conn: Conn, measure_from: float, deadline: float, tally: Tally,
                 done: asyncio.Future[None]) -> None:
        self.head = (f"POST {load.path} HTTP/1.1\r\nHost: {load.host}:{load.port}\r\n"
                     f"Cookie: {conn.cookie}\r\nX-CSRF-Token: {conn.csrf}\r\n"
                     "Content-Type: application/json\r\nContent-Length: ").encode()
        self.bodies = [f'{{"start":"{s}","subject_user_id":"{load.subject}"}}'.encode() for s in load.starts]
        self.measure_from = measure_from
        self.deadline = deadline
        self.tally = tally
        self.done = done
        self.buffer = b""
        self.began = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        now = time.perf_counter()
        if now >= self.deadline:
            self.transport.close()
            return
        body = random.choice(self.bodies)
        self.began = now
        self.transport.write(b"%s%d\r\n\r\n%s" % (self.head, len(body), body))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self.tally.errors.append("response without Content-Length")
            assert self.transport is not None
            self.transport.close()
            return
        length = int(head[at + 17:head.find(b"\r\n", at + 2) if head.find(b"\r\n", at + 2) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return  # the body is not all here yet
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[end + 4 + length:]
        if self.began >= self.measure_from:  # sent inside the measured window
            self.tally.latencies.append((time.perf_counter() - self.began) * 1000)
            self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
        else:
            self.tally.warmup_requests += 1
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def generate(load: Load) -> Tally:
    loop = asyncio.get_running_loop()
    tally = Tally()
    await asyncio.sleep(max(0.0, load.start_at - time.time()))
    tally.late_start_s = round(time.time() - load.start_at, 3)
    measure_from = time.perf_counter() + load.warmup
    deadline = measure_from + load.seconds
    usage: list[resource.struct_rusage] = []
    loop.call_at(loop.time() + load.warmup, lambda: usage.append(resource.getrusage(resource.RUSAGE_SELF)))
    waits = []
    for conn in load.conns:
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(
            lambda c=conn, d=done: BookingClient(load, c, measure_from, deadline, tally, d),  # type: ignore[misc]
            load.host, load.port)
        waits.append(done)
    await asyncio.gather(*waits)
    after = resource.getrusage(resource.RUSAGE_SELF)
    tally.cpu_seconds = (after.ru_utime - usage[0].ru_utime) + (after.ru_stime - usage[0].ru_stime)
    return tally


def generator_process(load: Load) -> Tally:
    return asyncio.run(generate(load))


def warm_up() -> None:
    time.sleep(0.5)  # long enough that the pool starts every worker process, and each imports this module


# --- one run --------------------------------------------------------------------------------------

async def login(http: aiohttp.ClientSession, base: str, email: str) -> str:
    async with http.get(f"{base}/login") as page:
        token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    async with http.post(f"{base}/login", data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token},
                         allow_redirects=False) as response:
        assert response.status == 302, f"login failed: {response.status}"
    async with http.get(f"{base}/rooms") as page:
        return CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]


async def setup_resource(base: str, months: int) -> tuple[str, str, list[str]]:
    async with session() as http:
        csrf = await login(http, base, "quantri@tramyte.demo")
        me = await (await http.get(f"{base}/api/me")).json()
        tenant = me["roles"][0]["tenant_id"]
        resource = await (await http.post(f"{base}/api/scheduling/tenants/{tenant}/resources",
                                          headers={"X-CSRF-Token": csrf},
                                          json={"kind": "service", "name": "bench", "slot_minutes": 5,
                                                "min_notice_minutes": 0, "horizon_days": 31 * months,
                                                "timezone": "UTC"})).json()
        rules = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]  # all day
        await http.put(f"{base}/api/scheduling/resources/{resource['id']}/availability",
                       headers={"X-CSRF-Token": csrf}, json={"rules": rules})
        starts: list[str] = []
        cursor = datetime.now(UTC) + timedelta(hours=1)
        for _ in range(months):  # 31-day pages of slots (8,928 each)
            page = await (await http.get(f"{base}/api/scheduling/resources/{resource['id']}/slots",
                                         params={"from": cursor.isoformat(),
                                                 "to": (cursor + timedelta(days=31)).isoformat()})).json()
            starts += [s["start"] for s in page["slots"]]
            cursor += timedelta(days=31)
    return resource["id"], tenant, starts


async def patient_id(base: str) -> str:
    async with session() as http:
        await login(http, base, "benhnhan1@tramyte.demo")
        return str((await (await http.get(f"{base}/api/me")).json())["id"])


async def logged_in_client(base: str) -> Conn:
    async with session() as http:
        csrf = await login(http, base, "bacsi@tramyte.demo")
        cookie = "; ".join(f"{c.key}={c.value}" for c in http.cookie_jar)
    return Conn(cookie, csrf)


async def run(database: str, url: str, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CAUNOI_DATA_DIR": tmp, "CAUNOI_SECRET_KEY": secrets.token_urlsafe(40),
               "CAUNOI_LOG_LEVEL": "WARNING", "CAUNOI_DATABASE_URL": url}
        workers = args.workers if database == "postgresql" else 1  # SQLite has one writer anyway
        if workers > 1:
            env["CAUNOI_REDIS_URL"] = args.redis
        caunoi = str(Path(sys.executable).with_name("caunoi"))
        phase = time.perf_counter()
        subprocess.run([caunoi, "demo"], env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: ASYNC221
        server = subprocess.Popen([caunoi, "serve", "--port", str(port), "--workers", str(workers)],  # noqa: ASYNC220
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(150):
                try:
                    async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            print(f"{database}: demo data and server up in {time.perf_counter() - phase:.1f} s", file=sys.stderr)
            # Enough free slots that the run does not fill the calendar (~1,500 requests/s at most).
            resource_id, _tenant, starts = await setup_resource(base, months=max(2, math.ceil(seconds / 3)))
            subject = await patient_id(base)
            # Log in before the clock starts (Argon2 is slow on purpose); connections share the sessions
            # round-robin, as several tabs of one user would.
            sessions = await asyncio.gather(*(logged_in_client(base) for _ in range(min(args.sessions, args.clients))))
            conns = [sessions[i % len(sessions)] for i in range(args.clients)]
            print(f"{database}: resource, slots and logins ready at {time.perf_counter() - phase:.1f} s",
                  file=sys.stderr)
            loop = asyncio.get_running_loop()
            with concurrent.futures.ProcessPoolExecutor(args.generators,
                                                        mp_context=multiprocessing.get_context("spawn")) as pool:
                # Start the generator processes first (spawning and importing takes a second or two on a
                # busy machine), then give them a common start time, so that the CPU window matches theirs.
                await asyncio.gather(*(loop.run_in_executor(pool, warm_up) for _ in range(args.generators)))
                start_at = time.time() + 0.5
                loads = [Load("127.0.0.1", port, f"/api/scheduling/resources/{resource_id}/bookings", subject,
                              starts, conns[i::args.generators], start_at, WARMUP, seconds)
                         for i in range(args.generators)]
                futures = [loop.run_in_executor(pool, generator_process, load) for load in loads]
                await asyncio.sleep(max(0.0, start_at + WARMUP - time.time()))
                db_name = url.rsplit("/", 1)[1] if database == "postgresql" else ""
                server_before = cpu_seconds(process_tree(server.pid))
                db_before = cpu_seconds(backends_of(db_name)) if db_name else {}
                await asyncio.sleep(seconds)
                # Processes found now and not before started inside the window: all their CPU counts.
                server_after = cpu_seconds(process_tree(server.pid))
                db_after = cpu_seconds(backends_of(db_name)) if db_name else {}
                tallies = await asyncio.gather(*futures)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(20)
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            double = int((await connection.execute(DOUBLE_BOOKINGS)).scalar_one())
            audited = int((await connection.execute(AUDITED)).scalar_one())
        await engine.dispose()
    latencies = [x for t in tallies for x in t.latencies]
    statuses: dict[int, int] = {}
    for t in tallies:
        for status, n in t.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    requests = len(latencies)

    def per_request_ms(cpu: float) -> float | None:
        return round(cpu * 1000 / requests, 3) if requests else None

    return {
        "database": database, "server_workers": workers, "clients": args.clients, "generators": args.generators,
        "seconds": seconds, "requests": requests,
        "requests_per_s": round(requests / seconds, 1), "bookings_per_s": round(statuses.get(201, 0) / seconds, 1),
        "latency_ms_p50": pct(latencies, 0.5), "latency_ms_p99": pct(latencies, 0.99),
        "booked": statuses.get(201, 0), "conflicts": statuses.get(409, 0),
        "other_statuses": {str(k): v for k, v in statuses.items() if k not in (201, 409)},
        "client_errors": [e for t in tallies for e in t.errors][:5],
        "generator_late_start_s": max(t.late_start_s for t in tallies),
        "double_bookings": double,
        # One audit row per booking request, success or conflict, warm-up included: must be equal.
        "booking_requests_with_warmup": requests + sum(t.warmup_requests for t in tallies),
        "audit_rows": audited,
        "cpu_ms_per_request": {
            "server": per_request_ms(cpu_delta(server_before, server_after)),
            "load_generator": per_request_ms(sum(t.cpu_seconds for t in tallies)),
            "postgresql_backends": per_request_ms(cpu_delta(db_before, db_after)) if db_name else None,
        },
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description="booking benchmark")
    parser.add_argument("--quick", action="store_true", help="5 s per database (under 60 s in all)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent connections (one session each)")
    parser.add_argument("--sessions", type=int, default=8, help="logged-in sessions the connections share")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2,
                        help="server processes on PostgreSQL (caunoi serve --workers)")
    parser.add_argument("--generators", type=int, default=1, help="load generator processes")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="an admin DSN; the benchmark creates and drops its own database")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="the bus when --workers > 1")
    args = parser.parse_args()
    seconds = 5.0 if args.quick else args.seconds
    databases = args.databases.split(",")
    runs = []
    if "sqlite" in databases:
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", args, seconds))
    if "postgresql" in databases:
        name = f"caunoi_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        try:
            base = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            runs.append(await run("postgresql", f"{base}/{name}", args, seconds))
        finally:
            admin = await asyncpg.connect(args.postgres)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    print(json.dumps({"benchmark": "booking", "runs": runs}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
