"""A small signalling client for tests: connect with a room token, send, and read until a type."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from server.signalling.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX


async def room_token(client: TestClient, csrf: str, room: str) -> dict[str, Any]:
    response = await client.post(f"/api/rooms/{room}/token", headers={"X-CSRF-Token": csrf})
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def connect(client: TestClient, token: str, **kwargs: Any) -> ClientWebSocketResponse:
    return await client.ws_connect("/ws", protocols=(SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token), **kwargs)


async def receive(ws: ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type == WSMsgType.TEXT, f"expected a text message, got {message.type} {message.data!r}"
    data: dict[str, Any] = json.loads(message.data)
    return data


async def receive_type(ws: ClientWebSocketResponse, wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    """Read until a message of type ``wanted`` arrives; fail naming what came instead."""
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no {wanted!r} within {timeout} s; saw {seen}")
        message = await receive(ws, remaining)
        if message["type"] == wanted:
            return message
        seen.append(message["type"] + (f":{message.get('code')}" if message["type"] == "error" else ""))


async def expect_close(ws: ClientWebSocketResponse, code: int, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        message = await ws.receive(timeout=deadline - loop.time())
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            break
    assert ws.close_code == code, f"closed with {ws.close_code}, expected {code}"
