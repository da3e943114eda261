"""Which addresses and hosts the follower may reach: pure rules, no network.

Two rules keep an unattended follower from being turned against the operator's own network:

* **Addresses.** A host name is resolved, and every address it gives is classified; only a
  *public* address (globally routable unicast) is connected to, unless the source itself is on
  a non-public network (then the operator asked for it: a feed on the intranet, or the tests'
  server on 127.0.0.1). The check is made on the address actually connected to (see
  :mod:`qabot.follow.guard`), so DNS rebinding or a redirect cannot slip past it.
* **Hosts.** A link in a feed is followed only to the feed's own site (same host, or the same
  registrable domain: ``rss.example.de`` may link to ``www.example.de``) or to a host the
  operator lists (QABOT_FOLLOW_HOSTS).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits: judge that address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Second-level labels under which registries sell names (example.co.uk, example.com.au): the
# registrable domain then has three labels. An approximation of the public suffix list, which
# qabot does not ship; an operator whose site spans other names lists them in QABOT_FOLLOW_HOSTS.
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "ac", "edu", "or", "ne", "go", "gv", "lg"})
SCHEMES = frozenset({"http", "https"})


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped ``::ffff:a.b.c.d``, NAT64), else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public(address: str | IPAddress) -> bool:
    """True for a globally routable unicast address; False for private, loopback, link-local
    (169.254.169.254, the cloud metadata service), shared (100.64/10), reserved, multicast,
    unspecified and documentation ranges, also when wrapped in IPv6."""
    ip = embedded_ipv4(ipaddress.ip_address(address) if isinstance(address, str) else address)
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def host_of(url: str) -> str:
    """The URL's host, lower case, without a trailing dot ('' when it has none)."""
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched at all (scheme, missing host, credentials), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in SCHEMES:
        return f"only http and https are fetched, not {parts.scheme or 'a URL without scheme'!r}"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "a URL with a user name or password is not fetched"
    return None


def site_of(host: str) -> str:
    """The registrable domain of ``host`` (last two labels, three under co.uk-like names); an IP
    address is its own site."""
    host = host.rstrip(".").lower()
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    labels = host.split(".")
    keep = 3 if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2 else 2
    return ".".join(labels[-keep:])


def link_allowed(url: str, *, sites: Iterable[str], hosts: Iterable[str] = ()) -> bool:
    """May a link to ``url`` be followed from a source on one of ``sites`` (hosts whose registrable
    domain counts), or to one of the operator's ``hosts`` (exact names)?"""
    host = host_of(url)
    if not host:
        return False
    return host in {h.lower().rstrip(".") for h in hosts} or site_of(host) in {site_of(s) for s in sites}


__all__ = ["SCHEMES", "IPAddress", "embedded_ipv4", "host_of", "is_public", "link_allowed", "site_of", "url_problem"]
