"""ICE settings of the server-side peers: STUN/TURN servers, host addresses, announced address."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer


@dataclass(frozen=True)
class IceServerConfig:
    urls: list[str]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class IceConfig:
    servers: Sequence[IceServerConfig] = field(default_factory=tuple)
    host_addresses: Sequence[str] = field(default_factory=tuple)
    """Gather host candidates only on these addresses (all interfaces when empty)."""
    announced_address: str | None = None
    """Write this address into host candidates (a server behind 1:1 NAT)."""

    def rtc_configuration(self) -> RTCConfiguration:
        # An explicit list: aiortc's default would be a public STUN server.
        return RTCConfiguration(
            iceServers=[RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                        for s in self.servers]
        )

    def browser_ice_servers(self) -> list[dict[str, object]]:
        """The same servers in the shape RTCPeerConnection in a browser expects."""
        result: list[dict[str, object]] = []
        for server in self.servers:
            entry: dict[str, object] = {"urls": list(server.urls)}
            if server.username is not None:
                entry["username"] = server.username
            if server.credential is not None:
                entry["credential"] = server.credential
            result.append(entry)
        return result


_original_get_host_addresses = aioice.ice.get_host_addresses


def apply_host_addresses(addresses: Sequence[str]) -> None:
    """Restrict host candidates to ``addresses`` (or restore the default when empty).

    aioice reads the interface list through a module-level function, so this setting is
    process-wide; it is also how a server bound to loopback only offers 127.0.0.1, which aioice
    otherwise skips.
    """
    if not addresses:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return
    chosen = list(addresses)

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured


_HOST_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.MULTILINE)


def announce_address(sdp: str, address: str | None) -> str:
    """Replace the address of every host candidate in ``sdp`` with ``address``."""
    if not address:
        return sdp
    return _HOST_CANDIDATE.sub(lambda m: m.group(1) + address + m.group(3), sdp)
