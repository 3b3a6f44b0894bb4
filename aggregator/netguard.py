"""Refuse to fetch from private networks unless a feed is allowed to.

A feed URL, an article link, or a redirect from either could otherwise make the aggregator
request loopback admin pages, cloud metadata services (169.254.169.254) or hosts on the LAN.
Every address a name resolves to is checked, on every redirect hop. `allow_private` lets a
feed (and its article pages) use loopback and LAN addresses, never link-local ones
(169.254.0.0/16, fe80::/10): that is where cloud metadata services answer, and no feed lives
there.

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
    """The URL's host is (or resolves to) a non-public address."""


class ResolveError(Exception):
    """The host name could not be resolved."""


def is_allowed(address: IPAddress, allow_private: bool) -> bool:
    """Public, or (with allow_private) private but not link-local or multicast."""
    if is_public(address):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return allow_private and not (address.is_link_local or address.is_multicast)


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
        if allow_private:
            raise PrivateAddressError(
                f"refused: {host} is a link-local address ({shown}), where cloud metadata "
                "services answer; never fetched, even with allow_private"
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
