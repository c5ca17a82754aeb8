"""Signalling benchmark: N WebSocket clients join one room of the real app (no media).

Prints one JSON document: for each N, join latency (connect + join → joined), ping round trip and
presence fan-out (one more join → participant_joined at every other client), p50/p95 in ms.

    python bench/signalling.py [--quick] [--sizes 10,50,100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from server.auth.tokens import Grants, mint_room_token
from server.signalling.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX

ROOM = "bench-room"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


async def wait_type(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict[str, object]:
    while True:
        message = await ws.receive(timeout=30)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"connection ended while waiting for {wanted}: {message.type}")
        data: dict[str, object] = json.loads(message.data)
        if data["type"] == wanted:
            return data


async def run_size(base: str, secret: str, n: int) -> dict[str, object]:
    grants = Grants(can_publish=True, can_subscribe=True)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        joins: list[float] = []
        for i in range(n):
            token = mint_room_token(secret, room=ROOM, identity=f"user{i}", grants=grants, ttl_seconds=600)
            start = time.perf_counter()
            ws = await http.ws_connect(f"{base}/ws", protocols=(SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token))
            await ws.send_json({"type": "join", "room": ROOM})
            await wait_type(ws, "joined")
            joins.append((time.perf_counter() - start) * 1000)
            sockets.append(ws)
        # Drain the presence events of the joins above.
        for index, ws in enumerate(sockets):
            for _ in range(n - index - 1):
                await wait_type(ws, "participant_joined")

        async def ping(ws: aiohttp.ClientWebSocketResponse) -> float:
            start = time.perf_counter()
            await ws.send_json({"type": "ping"})
            await wait_type(ws, "pong")
            return (time.perf_counter() - start) * 1000

        pings = await asyncio.gather(*(ping(ws) for ws in sockets))

        token = mint_room_token(secret, room=ROOM, identity="late", grants=grants, ttl_seconds=600)
        start = time.perf_counter()
        late = await http.ws_connect(f"{base}/ws", protocols=(SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token))
        await late.send_json({"type": "join", "room": ROOM})

        async def seen(ws: aiohttp.ClientWebSocketResponse) -> float:
            await wait_type(ws, "participant_joined")
            return (time.perf_counter() - start) * 1000

        fanout = await asyncio.gather(*(seen(ws) for ws in sockets))
        for ws in [*sockets, late]:
            await ws.close()
    return {
        "clients": n,
        "join_ms_p50": pct(joins, 0.5), "join_ms_p95": pct(joins, 0.95),
        "ping_ms_p50": pct(list(pings), 0.5), "ping_ms_p95": pct(list(pings), 0.95),
        "fanout_ms_p50": pct(list(fanout), 0.5), "fanout_ms_max": round(max(fanout), 2),
        "join_ms_mean": round(statistics.fmean(joins), 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 50 clients only")
    parser.add_argument("--sizes", default="10,50,100,200")
    args = parser.parse_args()
    sizes = [10, 50] if args.quick else [int(s) for s in args.sizes.split(",")]
    secret = secrets.token_urlsafe(40)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        # The server runs in its own process, as in production, so clients do not share its event loop.
        env = {**os.environ, "CAUNOI_DATA_DIR": tmp, "CAUNOI_SECRET_KEY": secret, "CAUNOI_LOG_LEVEL": "WARNING"}
        caunoi = str(Path(sys.executable).with_name("caunoi"))
        server = subprocess.Popen([caunoi, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,  # noqa: ASYNC220
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base)
            runs = [await run_size(base, secret, n) for n in sizes]
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(10)
    print(json.dumps({"benchmark": "signalling", "server": "caunoi serve (own process, SQLite)",
                      "runs": runs}, indent=2))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("caunoi serve did not become ready in 10 s")


if __name__ == "__main__":
    asyncio.run(main())
