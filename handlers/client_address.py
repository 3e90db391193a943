"""Which address a request came from, for counting failed logins per client.

`X-Forwarded-For` is written by whoever sends the request, so it is read only when the
connected peer is a proxy listed in `--trusted-proxies`. Then the header's entries are
walked from the right (the end the proxies append to), past every trusted proxy, and
the first address that is not one is the client: what lies left of it was sent by the
client and proves nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@cache
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in trusted)


def _parsed(address: str) -> IPAddress | None:
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they are the IPv4 address.
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[str, ...]
) -> str | None:
    """The client's address: `peer`, or from `forwarded_for` (the header's values) when
    `peer` is a trusted proxy. Addresses come back in canonical form."""
    peer_address = _parsed(peer) if peer else None
    if peer_address is None:
        return peer
    networks = _networks(trusted)

    def is_trusted(address: IPAddress) -> bool:
        return any(address in network for network in networks)

    client = peer_address
    if is_trusted(client):
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _parsed(hop)
            if address is None:
                # Not an address: the proxies' chain is broken here, so the nearest
                # trusted proxy stands for the client.
                break
            client = address
            if not is_trusted(address):
                break
    return str(client)
