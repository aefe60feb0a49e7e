"""The client's address, for throttling only: never logged, never stored in clear.

It is the socket's peer, unless that peer is one of the configured
``trusted_proxies``: then X-Forwarded-For is read from the right, skipping
trusted proxies, and the first address that is not one of them is the client.
Everything left of it could have been written by the client itself.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"


def _parse(text: str | None) -> Address | None:
    text = (text or "").strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(request: web.Request, trusted_proxies: Sequence[Network]) -> str:
    """The client as a string: an IPv4 address, or the /64 network of an IPv6 address
    (one household or device usually holds a whole /64)."""
    address = _parse(request.remote)
    if address is not None and trusted_proxies:
        hops = [hop for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]
        while hops and any(address in net for net in trusted_proxies):
            address = _parse(hops.pop())
            if address is None:  # a proxy we trust wrote something that is no address
                break
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
