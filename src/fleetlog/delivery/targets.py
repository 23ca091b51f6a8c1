"""Which network addresses pushes may go to (`FLEETLOG_DELIVERY_DENY_NETWORKS`).

A connector's URL is chosen by a tenant's admin, and fleetlog makes the request: without a
guard, a tenant could make fleetlog POST to addresses only fleetlog can reach (its own host,
the private network, a cloud metadata service). An operator who runs fleetlog for several
tenants lists the networks pushes must not reach; `private` stands for every loopback,
private, link-local, shared and unique-local network. Empty (the default) allows every address:
fleetlog on an edge box often pushes to systems beside it.

The check runs where the address is known: on the URL's host when a connector is created or
changed (an IP literal, or what a name resolves to then), and on every connection a push makes
(names are resolved again then, so a name that later points somewhere denied is caught too).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RESOLVE_SECONDS = 5.0  # an API request waits at most this long for a name to resolve

PRIVATE = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, cloud metadata services
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::/128",
    "::1/128",
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
)


class TargetDenied(OSError):
    """The address is in a network pushes may not go to."""


class TargetPolicy:
    def __init__(self, denied: Iterable[Network] = ()) -> None:
        self.denied = tuple(denied)

    @classmethod
    def parse(cls, spec: str) -> TargetPolicy:
        """Comma-separated networks (CIDR) and the word `private`; ValueError names a bad one."""
        networks: list[Network] = []
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            names = PRIVATE if item.lower() == "private" else (item,)
            for name in names:
                try:
                    networks.append(ipaddress.ip_network(name, strict=False))
                except ValueError as exc:
                    raise ValueError(f"not a network: {item!r} ({exc})") from None
        return cls(networks)

    def __bool__(self) -> bool:
        return bool(self.denied)

    def denies(self, address: str) -> bool:
        """True if `address` (an IP address) is in a denied network. An IPv4 address mapped
        into IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it stands for."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.denied)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to now ([] if it does not resolve within a few seconds)."""
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return []
    return [str(info[4][0]) for info in infos]
