"""The client's address behind a reverse proxy (MOTCUA_TRUSTED_PROXIES).

Behind nginx every request comes from nginx's address, so a per-address limit (the staff
login's) would count every officer together. nginx passes the real address in
``X-Forwarded-For``; that header is believed only when the request comes from a proxy listed in
MOTCUA_TRUSTED_PROXIES, and then read from the right: each trusted proxy appends the address it
received from, so the first address from the right that is not a trusted proxy is the client.
Anything further left was written by the client and is never believed.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """``["127.0.0.1", "10.0.0.0/8"]`` -> networks; ValueError names a value that is not one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return networks


@functools.cache
def networks_of(values: tuple[str, ...]) -> list[Network]:
    """``parse_networks`` of a setting, parsed once per distinct value."""
    return parse_networks(values)


def _trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(remote: str | None, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The address to count a request against (see the module)."""
    remote = remote or ""
    if not trusted or not forwarded_for or not _trusted(remote, trusted):
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return remote  # garbage where an address should be: count the proxy
    return hops[0] if hops else remote
