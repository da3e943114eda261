"""Who may use the API: bearer keys from QABOT_API_KEYS, and where it may listen without them.

Keys are kept only as sha256 digests and compared with :func:`hmac.compare_digest`, so neither
a log line, a repr nor a timing difference gives one away. A request is known by its *key id*
(the first 8 hex digits of the digest), never by its key; without keys by its client address.
Without keys the server may listen on loopback only (:func:`check_bind`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

from qabot.config import Secret
from qabot.errors import ConfigError

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def key_id(key: str) -> str:
    """A short, stable name for a key that does not reveal it (for logs and rate limits)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


class KeyRing:
    """The accepted keys, as digests. Empty: no key is needed (loopback only)."""

    def __init__(self, keys: Iterable[Secret]) -> None:
        self._digests = tuple(hashlib.sha256(k.get().encode("utf-8")).digest() for k in keys if k)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._digests)} keys)"

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def check(self, authorization: str | None) -> str | None:
        """The key id for an ``Authorization: Bearer <key>`` header value, or None when not accepted."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        # compare against every key (no early exit): the time taken says nothing about which matched
        matched = [hmac.compare_digest(digest, known) for known in self._digests]
        return key_id(token) if any(matched) else None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names for them."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys: KeyRing) -> None:
    """Refuse to listen beyond loopback without keys: ConfigError, one clear line."""
    if not keys.required and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without API keys: set QABOT_API_KEYS (comma-separated, "
            "each at least 16 characters) or listen on 127.0.0.1"
        )
