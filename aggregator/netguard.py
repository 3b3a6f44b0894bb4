"""Refuse to fetch from private networks unless a feed is allowed to.

A feed URL, or a redirect from a public feed, could otherwise make the aggregator request
loopback admin pages, cloud metadata services (169.254.169.254) or hosts on the LAN. Every
address a name resolves to is checked, on every redirect hop.

Limit: the HTTP client resolves the name again when it connects, so a DNS server that answers
differently within seconds (DNS rebinding) is not covered.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

SETTING_HINT = "set allow_private: true for this feed in feeds.yaml if that is intended"


class PrivateAddressError(Exception):
    """The URL's host is (or resolves to) a non-public address."""


class ResolveError(Exception):
    """The host name could not be resolved."""


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, link-local, private, shared (CGNAT),
    unspecified, multicast, reserved or documentation ranges."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    return address.is_global and not address.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for `host`."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolveError(f"cannot resolve {host}: {exc}") from exc
    return [str(info[4][0]) for info in infos]


async def check_public_url(url: str, resolver: Resolver = system_resolver) -> None:
    """Raise PrivateAddressError unless every address of the URL's host is public."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise PrivateAddressError(f"no host in {url}")
    literal = _ip_literal(host)
    addresses = [literal] if literal else [_parse(a) for a in await resolver(host, _port(parts))]
    if not addresses:
        raise ResolveError(f"cannot resolve {host}: no addresses")
    private = [a for a in addresses if a is None or not is_public(a)]
    if private:
        shown = ", ".join(str(a) for a in private if a) or "an unparsable address"
        raise PrivateAddressError(f"refused: {host} is a private address ({shown}); {SETTING_HINT}")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _parse(address: str) -> IPAddress | None:
    return _ip_literal(address)


def _port(parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError:  # out of range: let the HTTP client report it
        port = None
    return port or (443 if parts.scheme == "https" else 80)
