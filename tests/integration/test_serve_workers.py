"""`caunoi serve --workers N`: N processes on one port (SO_REUSEPORT), run as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.integration.test_cli import CAUNOI, caunoi, cli_env, free_port

STARTUP_LIMIT = 60.0  # migrations run first, then every worker imports the application
STOP_LIMIT = 15.0
REDIS = "redis://127.0.0.1:6379/14"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on 127.0.0.1:port (state 0A) in /proc/net/tcp."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            inodes.add(fields[9])
    return inodes


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its parent counts as exited)."""
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.scandir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(fd.path)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


async def wait_healthy(base: str, server: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while True:
            assert server.poll() is None, server.communicate()
            if time.monotonic() - started > STARTUP_LIMIT:
                pytest.fail(f"no answer on {base}/healthz within {STARTUP_LIMIT} s")
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)


def start(tmp_path: Path, port: int, workers: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(CAUNOI), "serve", "--port", str(port), "--workers", str(workers)], cwd=tmp_path,
                            env=cli_env(tmp_path / "data", **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


async def test_workers_share_the_port_answer_and_stop_together(tmp_path: Path) -> None:
    port = free_port()
    server = start(tmp_path, port, 2, CAUNOI_REDIS_URL=REDIS)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server)
        workers = children_of(server.pid)
        assert len(workers) == 2
        # Two listening sockets on the one port, one in each worker: the kernel spreads connections.
        # (The second worker may still be importing when the first answers.)
        for _ in range(int(STARTUP_LIMIT / 0.2)):
            if len(listening := listening_inodes(port)) >= 2:
                break
            await asyncio.sleep(0.2)
        assert len(listening) == 2
        assert all(len(socket_inodes(pid) & listening) == 1 for pid in workers)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(20):  # a new connection each time, so both workers get some
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    assert response.status == 200
                    assert (await response.json())["bus"] is True
        server.send_signal(signal.SIGINT)
        server.wait(STOP_LIMIT)
        assert server.returncode == 0
        assert all(gone(pid) for pid in workers)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


async def test_a_worker_that_dies_stops_the_others(tmp_path: Path) -> None:
    port = free_port()
    server = start(tmp_path, port, 2, CAUNOI_REDIS_URL=REDIS)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server)
        first, second = children_of(server.pid)
        os.kill(first, signal.SIGKILL)
        server.wait(STOP_LIMIT)
        assert server.returncode == 1  # a supervisor sees the failure and restarts the whole service
        assert gone(second)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


async def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    server = start(tmp_path, port, 2, CAUNOI_REDIS_URL=REDIS)
    workers: list[int] = []
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server)
        workers = children_of(server.pid)
        assert len(workers) == 2
        server.kill()  # SIGKILL: the parent cannot forward anything
        server.wait()
        for _ in range(int(STOP_LIMIT / 0.2)):
            if all(gone(pid) for pid in workers):
                break
            await asyncio.sleep(0.2)
        assert all(gone(pid) for pid in workers)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in workers:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_several_workers_need_the_redis_bus(tmp_path: Path) -> None:
    result = caunoi(tmp_path, cli_env(tmp_path / "data"), "serve", "--workers", "2")
    assert result.returncode == 2
    assert "CAUNOI_REDIS_URL" in result.stderr
    assert caunoi(tmp_path, cli_env(tmp_path / "data"), "serve", "--workers", "0").returncode == 2
