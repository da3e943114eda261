"""A polite, bounded HTTP fetcher for an unattended follower.

Polite: one request at a time (the fetcher is used from one thread) and at least
``min_interval`` seconds between two requests to the same host (more when robots.txt asks
for a Crawl-delay); a User-Agent naming qabot and the operator's contact; conditional GET
(If-None-Match / If-Modified-Since), so an unchanged feed costs a 304 and no body.

Bounded, because it reads other people's servers: only http and https; connections only to
checked addresses (:mod:`qabot.follow.guard`); a timeout per read and a deadline per request
(a server dripping one byte a second never trips a read timeout); a size cap on the decoded
body (a gzip bomb or an endless body stops at the cap); at most ``max_redirects`` hops, each
one checked like the first (scheme, address, and the caller's host rule); only the content
types the caller accepts. Nothing here raises for a bad response: every outcome is a
:class:`Fetched` whose ``error`` says why in a few words, and 429/503 carry ``retry_after``.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx

from qabot.follow.addresses import host_of, is_public, url_problem
from qabot.follow.guard import AddressRule, RefusedAddress, Resolver, guarded_client, resolve

log = logging.getLogger(__name__)

PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml", "text/xml",
                        "application/feed+xml", "application/x-rss+xml"})
ANY_TYPE = frozenset({"*"})  # robots.txt: read whatever a server calls it
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_RETRY_AFTER = 24 * 3600.0  # a server asking for a week's pause gets a day; the next round asks again
HopCheck = Callable[[str], str | None]


@dataclass(frozen=True)
class Fetched:
    """What one fetch gave: the body of a 200, a 304, or why not (``error``)."""

    url: str
    final_url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    error: str | None = None
    retry_after: float | None = None  # seconds the server asked for (429 / 503)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200

    @property
    def not_modified(self) -> bool:
        return self.error is None and self.status == 304


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Retry-After as seconds from ``now`` (epoch): a number of seconds or an HTTP date; None
    when absent or unreadable; clipped to 0 .. one day."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def media_type(content_type: str | None) -> str:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def type_accepted(content_type: str | None, accepted: frozenset[str]) -> bool:
    kind = media_type(content_type)
    return "*" in accepted or kind in accepted or ("application/xml" in accepted and kind.endswith("+xml"))


class Fetcher:
    """Fetches one URL at a time, politely; see the module docstring. Close it (or use ``with``)."""

    def __init__(self, *, user_agent: str, min_interval: float = 1.0, timeout: float = 20.0, deadline: float = 60.0,
                 max_bytes: int = 5_000_000, max_redirects: int = 5, stop: threading.Event | None = None,
                 resolver: Resolver = resolve, public: AddressRule = is_public, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.user_agent = user_agent
        self.min_interval = min_interval
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.stop = stop or threading.Event()
        self.clock, self.wall = clock, wall
        self.requests = 0  # requests sent, for the round's report and the tests
        self._timeout = httpx.Timeout(timeout)
        self.resolver, self.public = resolver, public  # the round asks them whether a source is on a private network
        self._clients: dict[bool, httpx.Client] = {}
        self._next_at: dict[str, float] = {}
        self._intervals: dict[str, float] = {}

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def set_interval(self, host: str, seconds: float) -> None:
        """A longer interval for one host (robots.txt's Crawl-delay); never shorter than the minimum."""
        self._intervals[host] = max(self.min_interval, seconds)

    def _client(self, allow_private: bool) -> httpx.Client:
        # One client (and pool) per network rule: a connection opened for a private source is
        # never reused for a request that must reach public addresses only.
        if allow_private not in self._clients:
            self._clients[allow_private] = guarded_client(allow_private=allow_private, timeout=self._timeout,
                                                          user_agent=self.user_agent, resolver=self.resolver, public=self.public)
        return self._clients[allow_private]

    def _wait_turn(self, host: str) -> bool:
        """Sleep until ``host`` may be asked again; False when told to stop meanwhile."""
        delay = self._next_at.get(host, 0.0) - self.clock()
        return not (delay > 0 and self.stop.wait(delay)) and not self.stop.is_set()

    def _done_with(self, host: str) -> None:
        self._next_at[host] = self.clock() + self._intervals.get(host, self.min_interval)

    def fetch(self, url: str, *, accept: frozenset[str], allow_private: bool, etag: str | None = None,
              last_modified: str | None = None, hop_check: HopCheck | None = None, max_bytes: int | None = None) -> Fetched:
        """GET ``url`` (following redirects, each hop checked by ``url_problem`` and ``hop_check``)."""
        started = self.clock()
        headers = {"Accept": _accept_header(accept)}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current, seen = url, {url}
        for _hop in range(self.max_redirects + 1):
            problem = url_problem(current) or (hop_check(current) if hop_check and current != url else None)
            if problem:
                return Fetched(url, current, error=problem, seconds=self.clock() - started)
            result = self._one(current, url, headers, accept=accept, allow_private=allow_private, started=started,
                               max_bytes=max_bytes or self.max_bytes)
            if result.status not in REDIRECTS or result.error:
                return result
            location = result.headers.get("location")
            if not location:
                return Fetched(url, current, status=result.status, error=f"HTTP {result.status} without a Location",
                               seconds=self.clock() - started)
            current = urljoin(current, location.strip())
            if current in seen:
                return Fetched(url, current, status=result.status, error="redirect loop", seconds=self.clock() - started)
            seen.add(current)
        return Fetched(url, current, error=f"more than {self.max_redirects} redirects", seconds=self.clock() - started)

    def _one(self, target: str, url: str, headers: dict[str, str], *, accept: frozenset[str], allow_private: bool,
             started: float, max_bytes: int) -> Fetched:
        """One request, no redirects followed; the body read only for a 200 of an accepted type."""
        host = host_of(target)
        if not self._wait_turn(host):
            return Fetched(url, target, error="stopped", seconds=self.clock() - started)
        self.requests += 1
        try:
            with self._client(allow_private).stream("GET", target, headers=headers) as response:
                found = {k.lower(): v for k, v in response.headers.items()}
                status = response.status_code
                if status in (429, 503):
                    wait = retry_after_seconds(found.get("retry-after"), now=self.wall())
                    return Fetched(url, target, status=status, headers=found, error=f"HTTP {status}", retry_after=wait,
                                   seconds=self.clock() - started)
                if status != 200:
                    error = None if status in REDIRECTS or status == 304 else f"HTTP {status}"
                    return Fetched(url, target, status=status, headers=found, error=error, seconds=self.clock() - started)
                if not type_accepted(found.get("content-type"), accept):
                    return Fetched(url, target, status=status, headers=found, seconds=self.clock() - started,
                                   error=f"content type {media_type(found.get('content-type')) or 'missing'} is not accepted here")
                declared = found.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in found:
                    return Fetched(url, target, status=status, headers=found, seconds=self.clock() - started,
                                   error=f"larger than the cap of {max_bytes} bytes")
                body, error = self._read(response, started=started, max_bytes=max_bytes)
                return Fetched(url, target, status=status, headers=found, body=body, error=error, seconds=self.clock() - started)
        except httpx.TimeoutException:
            return Fetched(url, target, error="timed out", seconds=self.clock() - started)
        except httpx.HTTPError as exc:
            cause = exc.__cause__
            reason = str(cause) if isinstance(cause, RefusedAddress) else f"{type(exc).__name__}: {exc}"
            return Fetched(url, target, error=reason, seconds=self.clock() - started)
        finally:
            self._done_with(host)

    def _read(self, response: httpx.Response, *, started: float, max_bytes: int) -> tuple[bytes, str | None]:
        """The decoded body, stopped at the size cap, the deadline or a stop request."""
        parts: list[bytes] = []
        size = 0
        for part in response.iter_bytes():
            size += len(part)
            if size > max_bytes:
                return b"", f"larger than the cap of {max_bytes} bytes"
            parts.append(part)
            if self.clock() - started > self.deadline:
                return b"", f"not complete after {self.deadline:g} s"
            if self.stop.is_set():
                return b"", "stopped"
        return b"".join(parts), None


def _accept_header(accept: frozenset[str]) -> str:
    if "*" in accept:
        return "*/*"
    return ", ".join(sorted(accept))


__all__ = ["ANY_TYPE", "FEED_TYPES", "PAGE_TYPES", "Fetched", "Fetcher", "media_type", "retry_after_seconds", "type_accepted"]
