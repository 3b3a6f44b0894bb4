"""Refuse to fetch from private networks unless a feed is allowed to.

A feed URL, an article link, or a redirect from either could otherwise make the aggregator
request loopback admin pages, cloud metadata services (169.254.169.254) or hosts on the LAN.
Every address a name resolves to is checked, on every redirect hop. `allow_private` lets a
feed (and its article pages) use loopback and LAN addresses, never link-local ones
(169.254.0.0/16, fe80::/10) or other known metadata addresses (fd00:ec2::254,
100.100.100.200): that is where cloud metadata services answer, and no feed lives there. An
IPv6 address that embeds an IPv4 one (NAT64, 6to4, SIIT, IPv4-mapped or -compatible) is judged
by the IPv4 address it reaches.

Two checks, one verdict: `check_public_url` before a request gives a clear early refusal (and
is all a test transport or an HTTP proxy allows), and `GuardedBackend`, the HTTP client's
network backend, resolves the name itself when it opens a connection, checks every address and
connects to the checked address only. A DNS server that answers differently between a check
and the connection (DNS rebinding) therefore gains nothing: what is checked is what is
connected to. Through an HTTP proxy (HTTP_PROXY and friends, mounted by poller.http_clients)
the proxy resolves the name, so only the first check applies there (and for allow_private feeds, whose names the first check leaves to the second,
the link-local rule then does not apply).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import SplitResult, urlsplit

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

SETTING_HINT = "set allow_private: true for this feed in feeds.yaml if that is intended"


class PrivateAddressError(Exception):
    """The URL's host is (or resolves to) a non-public address. `fixable`: allow_private
    would allow it (a private address, not a link-local or metadata one)."""

    def __init__(self, message: str, *, fixable: bool = True) -> None:
        super().__init__(message)
        self.fixable = fixable


class ResolveError(Exception):
    """The host name could not be resolved."""


# Where cloud metadata services answer outside the link-local ranges: never fetched, even with
# allow_private (AWS's IPv6 IMDS, Alibaba Cloud's metadata service).
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
# IPv6 prefixes that embed an IPv4 address in their last 32 bits: what they reach is that
# IPv4 address (NAT64 64:ff9b::/96, SIIT ::ffff:0:0:0/96, IPv4-compatible ::/96); 6to4
# (2002::/16) embeds it in bits 16-47 and ::ffff:0:0/96 is IPv4-mapped.
_EMBEDDING_LOW_32 = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96")
)
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: any embedding, local only


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, SIIT, NAT64, 6to4,
    IPv4-compatible), or None."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _EMBEDDING_LOW_32):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_allowed(address: IPAddress, allow_private: bool) -> bool:
    """Public, or (with allow_private) private but not link-local, multicast or a cloud
    metadata address."""
    if is_public(address):
        return True
    reached = embedded_ipv4(address) or address
    never = reached.is_link_local or reached.is_multicast or reached in METADATA_ADDRESSES
    return allow_private and not never and address not in METADATA_ADDRESSES


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, link-local, private, shared (CGNAT),
    unspecified, multicast, reserved or documentation ranges; an IPv6 address that embeds an
    IPv4 one (e.g. NAT64 64:ff9b::7f00:1 reaches 127.0.0.1) is judged by that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address in _LOCAL_NAT64:
        return False
    reached = embedded_ipv4(address) or address
    return reached.is_global and not reached.is_multicast and reached not in METADATA_ADDRESSES


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for `host`."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolveError(f"cannot resolve {host}: {exc}") from exc
    return [str(info[4][0]) for info in infos]


async def check_public_url(
    url: str, resolver: Resolver = system_resolver, *, allow_private: bool = False
) -> None:
    """Raise PrivateAddressError unless every address of the URL's host is allowed."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise PrivateAddressError(f"no host in {url}")
    if allow_private and ip_literal(host) is None:
        return  # a name: GuardedBackend checks it when connecting, with no extra lookup here
    await allowed_addresses(host, _port(parts), resolver, allow_private=allow_private)


async def allowed_addresses(
    host: str, port: int, resolver: Resolver, *, allow_private: bool = False
) -> list[str]:
    """The addresses of `host`, all allowed; else PrivateAddressError (or ResolveError).
    One refused address refuses the host: a client may pick any of them."""
    literal = ip_literal(host)
    addresses = [literal] if literal else [_parse(a) for a in await resolver(host, port)]
    if not addresses:
        raise ResolveError(f"cannot resolve {host}: no addresses")
    refused = [a for a in addresses if a is None or not is_allowed(a, allow_private)]
    if refused:
        shown = ", ".join(str(a) for a in refused if a) or "an unparsable address"
        fixable = all(a is not None and is_allowed(a, True) for a in refused)
        if not fixable:
            raise PrivateAddressError(
                f"refused: {host} is a link-local or metadata address ({shown}), where cloud "
                "metadata services answer; never fetched, even with allow_private",
                fixable=False,
            )
        raise PrivateAddressError(f"refused: {host} is a private address ({shown}); {SETTING_HINT}")
    return [str(a) for a in addresses if a is not None]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to public addresses: it resolves the
    host with `resolver`, refuses it if any address is private, and connects to the checked
    addresses (TLS still verifies the host name: httpcore sends it as SNI)."""

    def __init__(
        self, resolver: Resolver = system_resolver, *, allow_private: bool = False
    ) -> None:
        self.resolver = resolver
        self.allow_private = allow_private
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await allowed_addresses(
            host, port, self.resolver, allow_private=self.allow_private
        )
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # allowed_addresses never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise PrivateAddressError(f"refused: a Unix socket ({path}) is not a public address")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _parse(address: str) -> IPAddress | None:
    return ip_literal(address)


def _port(parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError:  # out of range: let the HTTP client report it
        port = None
    return port or (443 if parts.scheme == "https" else 80)
