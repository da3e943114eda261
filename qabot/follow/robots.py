"""robots.txt: what a fetch of it means (RFC 9309), and whether it lets qabot fetch a URL.

Pure: the follower fetches ``/robots.txt`` with its own fetcher (polite and bounded like any
request), keeps the text in its state, and asks :class:`Robots` about each URL. RFC 9309's
reading of the outcomes: a 200 is parsed; a 4xx (no robots.txt, or hidden from us) allows
everything; a 5xx or no answer at all disallows everything until it is asked again, an hour
later, since a site that is down may be down because of crawlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

AGENT = "qabot"  # the product token robots.txt groups are matched against (User-agent: qabot)
MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309: at least 500 KiB must be parsed; more is not read
KEEP_SECONDS = 24 * 3600.0  # RFC 9309: a cached robots.txt should not be used for more than a day
RETRY_SECONDS = 3600.0  # after a 5xx or no answer
MAX_CRAWL_DELAY = 60.0  # a Crawl-delay beyond this is taken as 60 s (a sitemap of 1000 pages must end)


def robots_url(url: str) -> str:
    """``https://example.de:8443/robots.txt`` for any URL on that origin."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "/robots.txt", "", ""))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@dataclass(frozen=True)
class Robots:
    """One origin's rules: ``mode`` is "rules" (``text`` parsed), "allow" or "deny" (everything)."""

    mode: str
    text: str = ""

    @classmethod
    def from_response(cls, status: int | None, body: bytes) -> Robots:
        """RFC 9309's reading of a fetch of robots.txt (``status`` None: no answer)."""
        if status == 200:
            return cls("rules", body[:MAX_ROBOTS_BYTES].decode("utf-8", "replace"))
        if status is not None and 400 <= status < 500:
            return cls("allow")
        return cls("deny")

    @property
    def keep_seconds(self) -> float:
        """How long these rules stand before robots.txt is fetched again."""
        return RETRY_SECONDS if self.mode == "deny" else KEEP_SECONDS

    @cached_property
    def _parser(self) -> RobotFileParser:  # parsed once per Robots (frozen: cached_property writes __dict__)
        parser = RobotFileParser()
        parser.parse(self.text.splitlines())
        return parser

    def allows(self, url: str, agent: str = AGENT) -> bool:
        if self.mode != "rules":
            return self.mode == "allow"
        return self._parser.can_fetch(agent, url)

    def crawl_delay(self, agent: str = AGENT) -> float | None:
        """The Crawl-delay for ``agent`` (capped at MAX_CRAWL_DELAY), or None."""
        if self.mode != "rules":
            return None
        delay = self._parser.crawl_delay(agent)
        return None if delay is None else min(float(delay), MAX_CRAWL_DELAY)


__all__ = ["AGENT", "KEEP_SECONDS", "MAX_ROBOTS_BYTES", "RETRY_SECONDS", "Robots", "origin_of", "robots_url"]
