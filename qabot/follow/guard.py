"""The follower's HTTP client: every connection goes to a checked address (resolve, check, pin).

httpx resolves and connects inside httpcore's network backend, so the check sits there: the
backend resolves the host itself, drops every address :func:`qabot.follow.addresses.is_public`
refuses (unless private networks are allowed for this client), and connects to one of those
it kept. The address checked is the address connected to, on every request and every redirect
hop, so neither DNS rebinding nor a redirect to ``http://169.254.169.254/`` gets through.
A refusal is a :class:`RefusedAddress` (an httpcore.ConnectError, so httpx raises ConnectError
from it).

Proxies from the environment are ignored (trust_env=False): a proxy would connect on the
follower's behalf to addresses this check never sees.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Callable

import httpcore
import httpx

from qabot.follow.addresses import is_public

Resolver = Callable[[str, int], list[str]]
AddressRule = Callable[[str], bool]


class RefusedAddress(httpcore.ConnectError):
    """The host resolves only to addresses the follower may not reach."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal is its own), in the resolver's order."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]).split("%")[0], None)
    return list(seen)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's own backend, but it connects only to addresses ``allowed`` accepts."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = resolve, public: AddressRule = is_public) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.public = public

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        addresses = self.resolver(host, port)
        allowed = [a for a in addresses if self.allow_private or self.public(a)]
        if not allowed:
            raise RefusedAddress(f"refused: {host} is on a private, loopback or link-local network "
                                 f"({', '.join(addresses[:3]) or 'no address'}) and the source is not")
        last: Exception | None = None
        for address in allowed:  # the pinned, checked address; TLS still verifies the host name
            try:
                return super().connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                           socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last


def guarded_client(*, allow_private: bool, timeout: httpx.Timeout, user_agent: str,
                   resolver: Resolver = resolve, public: AddressRule = is_public) -> httpx.Client:
    """An httpx client whose connections pass :class:`GuardedBackend`; redirects are not followed
    (the fetcher follows them itself, checking each hop)."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx 0.28 takes no network backend; its pool is replaced by one with the guarded backend
    # (tests/test_follow_fetcher.py proves a refused address is never connected to).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), max_connections=8, max_keepalive_connections=8, keepalive_expiry=5.0,
        network_backend=GuardedBackend(allow_private=allow_private, resolver=resolver, public=public),
    )
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False,
                        headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"})


__all__ = ["AddressRule", "GuardedBackend", "RefusedAddress", "Resolver", "guarded_client", "resolve"]
