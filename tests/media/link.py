"""An impaired network link for media tests: a user-space UDP proxy between the relay and one peer.

`tc netem` is not available in this kernel (see the namespace notes), so a subscriber's bad link is
made here: the SDP candidates of both sides are rewritten to two sockets of this proxy, which
forward between them and can cap the bandwidth towards the subscriber or stall entirely.
"""

from __future__ import annotations

import asyncio
import random
import re
import time

_CANDIDATE = re.compile(r"^a=candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ host(.*)$")


class _Face(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: object) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)  # type: ignore[operator]


class LinkProxy:
    """Relay <-> proxy <-> subscriber. ``rate_bps`` caps relay->subscriber, ``loss`` drops that share of
    its packets at random (seeded), ``stalled`` drops everything both ways."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.rate_bps: int | None = None
        self.burst_bytes = 16_000  # a small router queue: a capped link drops, it does not delay
        self.stalled = False
        self.loss = 0.0
        self._random = random.Random(3)
        self.forwarded = 0
        self.dropped = 0
        self._tokens = 0.0
        self._refilled = time.monotonic()
        self._server_addr: tuple[str, int] | None = None
        self._client_addr: tuple[str, int] | None = None
        self._to_server = _Face(self._from_server)  # the relay sends here, taking it for the subscriber
        self._to_client = _Face(self._from_client)  # the subscriber sends here, taking it for the relay

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self._to_server, local_addr=(self.host, 0))
        await loop.create_datagram_endpoint(lambda: self._to_client, local_addr=(self.host, 0))

    def close(self) -> None:
        for face in (self._to_server, self._to_client):
            if face.transport is not None:
                face.transport.close()

    def _port(self, face: _Face) -> int:
        assert face.transport is not None
        return int(face.transport.get_extra_info("sockname")[1])

    # --- SDP: both sides see only the proxy -------------------------------------------------------

    def server_offer(self, sdp: str) -> str:
        """The relay's offer as the subscriber should see it; remembers the relay's address."""
        sdp, address = self._rewrite(sdp, self._port(self._to_client))
        self._server_addr = self._server_addr or address
        return sdp

    def client_answer(self, sdp: str) -> str:
        sdp, address = self._rewrite(sdp, self._port(self._to_server))
        self._client_addr = self._client_addr or address
        return sdp

    def _rewrite(self, sdp: str, port: int) -> tuple[str, tuple[str, int] | None]:
        lines, first = [], None
        for line in sdp.splitlines():
            match = _CANDIDATE.match(line)
            if match is None:
                lines.append(line)
                continue
            foundation, component, transport, priority, address, real_port, rest = match.groups()
            if component != "1" or transport.lower() != "udp" or ":" in address:
                continue  # one IPv4 UDP candidate is all a test link needs
            if first is None:
                first = (address, int(real_port))
            lines.append(f"a=candidate:{foundation} 1 {transport} {priority} {self.host} {port} typ host{rest}")
        return "\r\n".join(lines) + "\r\n", first

    # --- forwarding -------------------------------------------------------------------------------

    def _from_server(self, data: bytes, addr: tuple[str, int]) -> None:
        self._server_addr = addr
        lost = self.loss > 0 and self._random.random() < self.loss
        if self.stalled or lost or not self._take(len(data)) or self._client_addr is None:
            self.dropped += 1
            return
        assert self._to_client.transport is not None
        self._to_client.transport.sendto(data, self._client_addr)
        self.forwarded += 1

    def _from_client(self, data: bytes, addr: tuple[str, int]) -> None:
        self._client_addr = addr
        if self.stalled or self._server_addr is None:
            return
        assert self._to_server.transport is not None
        self._to_server.transport.sendto(data, self._server_addr)

    def _take(self, size: int) -> bool:
        if self.rate_bps is None:
            return True
        now = time.monotonic()
        self._tokens = min(self.burst_bytes, self._tokens + (now - self._refilled) * self.rate_bps / 8)
        self._refilled = now
        if self._tokens < size:
            return False
        self._tokens -= size
        return True
