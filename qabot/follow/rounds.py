"""One round of ``qabot follow``: read the sources, fetch what is new or changed, archive it.

Steps, in order:

1. **Sources.** Each source (feed, sitemap, sitemap index) is fetched conditionally: a 304
   costs nothing more. A source that fails is recorded with its reason and a time to try again;
   it never stops the round. A source on a non-public network (the operator's intranet, the
   tests' 127.0.0.1) may lead to non-public addresses; any other may not.
2. **Links.** Each listed URL is checked (http(s) only; the source's own site or a host the
   operator lists) and recorded in the state with the source's validators, in one transaction:
   a URL not seen before, or listed with another date (lastmod, updated), becomes *due*. So a
   follower killed after reading a feed still fetches its pages next time, although the feed
   then answers 304. Due pages whose wait (after a failure) is over are fetched: newest first,
   round robin over hosts (one slow host does not hold the others up), at most ``max_pages``
   (the rest stay due), each allowed by robots.txt; one archived before with If-None-Match /
   If-Modified-Since.
3. **Pages.** Each page is fetched, checked with the archive reader's own extraction
   (:func:`qabot.ingest.web.article_from_html`: a page without article text is a failure with
   the reason, never archived) and, when its article is new or changed, appended to the round's
   WARC file and recorded in the state, one transaction a page (:mod:`qabot.follow.warcs`).

The index update after the round is the caller's (:mod:`qabot.follow.loop`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from qabot.follow.addresses import host_of, link_allowed, url_problem
from qabot.follow.fetcher import ANY_TYPE, FEED_TYPES, PAGE_TYPES, Fetched, Fetcher
from qabot.follow.report import Failure, RoundReport, retry_delay
from qabot.follow.robots import MAX_ROBOTS_BYTES, Robots, origin_of, robots_url
from qabot.follow.sources import Link, newest_first, parse_listing
from qabot.follow.state import PageState, State
from qabot.follow.warcs import RoundWarc

DEFAULT_RETRY_AFTER = 60.0  # a 429 / 503 without Retry-After: wait a minute before asking that host again


@dataclass(frozen=True)
class RoundOptions:
    """What a round may do: extra hosts links may lead to, and how much it may fetch."""

    hosts: tuple[str, ...] = ()
    max_pages: int = 1000
    max_sitemaps: int = 50  # child sitemaps read from one sitemap index per round
    software: str = "qabot follow"


@dataclass(frozen=True)
class Origin:
    """Where a link came from: the source URL, the sites its links may go to, and whether it is on
    a non-public network (then its links may be too)."""

    source: str
    sites: tuple[str, ...]
    allow_private: bool


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    steps: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    failures: list[Failure] = field(default_factory=list)
    refusals: list[Failure] = field(default_factory=list)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps[step] += time.perf_counter() - started


class Round:
    """One round over ``sources``; :meth:`run` returns its report. See the module docstring."""

    def __init__(self, sources: Sequence[str], *, archive: Path, state: State, fetcher: Fetcher, options: RoundOptions,
                 now: Callable[[], float] = time.time, progress: bool = False) -> None:
        self.sources, self.archive, self.state, self.fetcher = list(sources), Path(archive), state, fetcher
        self.options, self.now, self.progress = options, now, progress
        self.tally = _Tally()
        self.started = datetime.fromtimestamp(now(), UTC)
        self.warc = RoundWarc(self.archive, state, started=self.started, software=options.software)
        self._robots: dict[str, Robots] = {}
        self._private: dict[str, bool] = {}
        self._unreachable: dict[str, str] = {}  # origin -> why it may not be reached (a refused address)
        self._listed: set[str] = set()  # page links the sources read this round list

    # -- the round -----------------------------------------------------------------------------------------
    def run(self) -> RoundReport:
        began = time.perf_counter()
        try:
            for source in self.sources:
                if self.fetcher.stop.is_set():
                    break
                with self.tally.timed("sources"):
                    self._read_source(source)
            due, waiting = self.state.pages_due(self.now())
            self.tally.counts["waiting"] += waiting
            self._fetch_pages(self._choose(due))
        finally:
            published = self.warc.finish()
        c = self.tally.counts
        return RoundReport(
            started=self.started.strftime("%Y-%m-%dT%H:%M:%SZ"), sources=len(self.sources), sources_read=c["sources_read"],
            sources_unchanged=c["sources_unchanged"], sources_failed=c["sources_failed"], links=len(self._listed), new=c["new"],
            changed=c["changed"], unchanged=c["unchanged"], failed=c["failed"], refused=c["refused"], waiting=c["waiting"],
            left=c["left"], requests=self.fetcher.requests, warc=str(published.relative_to(self.archive)) if published else None,
            seconds=time.perf_counter() - began, steps=dict(self.tally.steps), failures=tuple(self.tally.failures),
            refusals=tuple(self.tally.refusals), stopped=self.fetcher.stop.is_set(),
        )

    # -- sources -------------------------------------------------------------------------------------------
    def _origin(self, source: str) -> Origin:
        return Origin(source, (host_of(source),), self._is_private(source))

    def _is_private(self, url: str) -> bool:
        """Is ``url``'s host on a non-public network (any of its addresses)? Unresolvable: no."""
        host = host_of(url)
        if host not in self._private:
            try:
                addresses = self.fetcher.resolver(host, 443)
            except Exception:  # noqa: BLE001 - any resolver failure: treat as public; the fetch reports it
                addresses = []
            self._private[host] = any(not self.fetcher.public(a) for a in addresses)
        return self._private[host]

    def _source_failed(self, url: str, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        known = self.state.source(url)
        in_a_row = (known.failures if known else 0) + 1
        wait = retry_delay(in_a_row, status=status, retry_after=retry_after)
        self.state.source_failed(url, error=reason, retry_at=self.now() + wait)
        self.tally.counts["sources_failed"] += 1
        self.tally.failures.append(Failure(url, reason, "source", in_a_row, wait))

    def _read_source(self, url: str, *, origin: Origin | None = None, depth: int = 0) -> None:
        """Read one source (a sitemap index: its sitemaps) and record the links it lists, or why not."""
        problem = url_problem(url)
        if problem:
            self._source_failed(url, problem)
            return
        known = self.state.source(url)
        if known and known.failures and known.retry_at > self.now():
            self.tally.counts["waiting"] += 1
            self.tally.failures.append(Failure(url, f"failed before ({known.failures} times); waiting", "source", known.failures,
                                               known.retry_at - self.now()))
            return
        origin = origin or self._origin(url)
        refusal = self._gate(url, origin)
        if refusal and refusal.startswith("the server asked"):
            self.tally.counts["waiting"] += 1  # the host said 429/503: not this source's failure
            return
        if refusal:
            self._source_failed(url, refusal)
            return
        fetched = self.fetcher.fetch(url, accept=FEED_TYPES, allow_private=origin.allow_private,
                                     etag=known.etag if known else None, last_modified=known.last_modified if known else None)
        if fetched.error == "stopped":
            return
        if fetched.not_modified:
            self.state.source_read(url, etag=known.etag if known else None, last_modified=known.last_modified if known else None,
                                   now=self.now())
            self.tally.counts["sources_unchanged"] += 1
            return
        if not fetched.ok:
            self._note_server_wait(fetched)
            self._source_failed(url, fetched.error or f"HTTP {fetched.status}", status=fetched.status,
                                retry_after=fetched.retry_after)
            return
        try:
            listing = parse_listing(fetched.body, base_url=fetched.final_url)
        except ValueError as exc:
            self._source_failed(url, str(exc))
            return
        self.tally.counts["sources_read"] += 1
        # the source may have been redirected (feeds.example.de -> www.example.de): both are its site
        here = Origin(origin.source, tuple(dict.fromkeys((*origin.sites, host_of(fetched.final_url)))), origin.allow_private)
        links: list[tuple[str, str | None]] = []
        if listing.kind == "sitemapindex" and depth == 0:
            for child in newest_first(listing.links)[: self.options.max_sitemaps]:
                if link_allowed(child.url, sites=here.sites, hosts=self.options.hosts):
                    self._read_source(child.url, origin=here, depth=1)
                else:
                    self._refuse(child.url, "a sitemap on another site")
        elif listing.kind != "sitemapindex":
            for link in listing.links:
                problem = url_problem(link.url)
                if problem or not link_allowed(link.url, sites=here.sites, hosts=self.options.hosts):
                    self._refuse(link.url, problem or f"{host_of(link.url)} is not the source's site (list it in QABOT_FOLLOW_HOSTS)")
                else:
                    links.append((link.url, link.date))
                    self._listed.add(link.url)
        # the links and the validators in one transaction: a kill before it reads the source again
        # (one request); after it, the links are due in the state whatever the source answers next
        self.tally.counts["unchanged"] += self.state.source_read(
            url, etag=fetched.headers.get("etag"), last_modified=fetched.headers.get("last-modified"), now=self.now(), links=links)

    # -- gates: robots.txt and a server's request to wait ---------------------------------------------------
    def _robots_for(self, url: str, origin: Origin) -> Robots:
        key = origin_of(url)
        if key not in self._robots:
            cached = self.state.robots(key, self.now())
            if cached is not None:
                robots = Robots(*cached)
            else:
                fetched = self.fetcher.fetch(robots_url(url), accept=ANY_TYPE, allow_private=origin.allow_private,
                                             max_bytes=4 * MAX_ROBOTS_BYTES)
                if fetched.error == "stopped" or (fetched.error or "").startswith("refused:"):
                    # not remembered: a stop asks again next time; a refused address is the reason itself
                    self._unreachable[key] = fetched.error or "stopped"
                    return Robots("deny")
                # RFC 9309: a 200 is read, a 4xx allows all, anything else (5xx, no answer, a redirect
                # loop, an oversized file) disallows all until robots.txt is asked again
                status = fetched.status if fetched.ok or (fetched.status or 0) >= 400 else None
                robots = Robots.from_response(status, fetched.body)
                self.state.set_robots(key, mode=robots.mode, text=robots.text, until=self.now() + robots.keep_seconds)
            self._robots[key] = robots
            delay = robots.crawl_delay()
            if delay:
                self.fetcher.set_interval(host_of(url), delay)
        return self._robots[key]

    def _gate(self, url: str, origin: Origin) -> str | None:
        """Why ``url`` may not be fetched now (robots.txt, a server's wait), or None."""
        wait = self.state.backoff_until(origin_of(url)) - self.now()
        if wait > 0:
            return f"the server asked to wait ({wait:.0f} s left)"
        robots = self._robots_for(url, origin)
        if origin_of(url) in self._unreachable:
            return self._unreachable[origin_of(url)]
        if robots.mode == "deny":
            return "robots.txt could not be read (a server error or no answer); asked again within the hour"
        if not robots.allows(url):
            return "disallowed by robots.txt"
        return None

    def _note_server_wait(self, fetched: Fetched) -> None:
        if fetched.status in (429, 503):
            wait = fetched.retry_after if fetched.retry_after is not None else DEFAULT_RETRY_AFTER
            self.state.set_backoff(origin_of(fetched.final_url), self.now() + wait)

    def _refuse(self, url: str, reason: str) -> None:
        self.tally.counts["refused"] += 1
        self.tally.refusals.append(Failure(url, reason))

    # -- pages ---------------------------------------------------------------------------------------------
    def _choose(self, due: list[PageState]) -> list[tuple[PageState, Origin]]:
        """The due pages to fetch this round: newest first, round robin over hosts, at most max_pages."""
        by_url = {page.url: page for page in due}
        per_host: dict[str, list[tuple[PageState, Origin]]] = defaultdict(list)
        for link in newest_first(Link(page.url, page.listed_date) for page in due):
            page = by_url[link.url]
            # the link passed the host rule when its source listed it; a redirect may go to the source's
            # site or the page's own
            origin = Origin(page.source, (host_of(page.source), host_of(page.url)), self._is_private(page.source))
            per_host[host_of(page.url)].append((page, origin))
        chosen: list[tuple[PageState, Origin]] = []
        lanes = list(per_host.values())
        while lanes:
            chosen.extend(lane.pop(0) for lane in lanes)
            lanes = [lane for lane in lanes if lane]
        self.tally.counts["left"] += max(0, len(chosen) - self.options.max_pages)
        return chosen[: self.options.max_pages]

    def _fetch_pages(self, chosen: list[tuple[PageState, Origin]]) -> None:
        bar = None
        if self.progress and chosen:
            from tqdm import tqdm

            bar = tqdm(total=len(chosen), unit="page", desc="follow", leave=False)
        try:
            for page, origin in chosen:
                if self.fetcher.stop.is_set():
                    break
                self._fetch_page(page, origin)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    def _page_failed(self, page: PageState, reason: str, *, status: int | None = None, retry_after: float | None = None,
                     permanent: bool = False) -> None:
        in_a_row = page.failures + 1
        wait = retry_delay(in_a_row, status=status, retry_after=retry_after, permanent=permanent)
        self.state.page_failed(page.url, error=reason, retry_at=self.now() + wait)
        self.tally.counts["failed"] += 1
        self.tally.failures.append(Failure(page.url, reason, "page", in_a_row, wait))

    def _fetch_page(self, page: PageState, origin: Origin) -> None:
        with self.tally.timed("fetch"):
            refusal = self._gate(page.url, origin)
            if refusal and refusal.startswith("the server asked"):
                self.tally.counts["waiting"] += 1
                return
            if refusal:
                self._refuse(page.url, refusal)
                return
            archived = page.content_hash is not None

            def hop_check(url: str) -> str | None:
                return None if link_allowed(url, sites=origin.sites, hosts=self.options.hosts) else "redirected to another site"

            fetched = self.fetcher.fetch(page.url, accept=PAGE_TYPES, allow_private=origin.allow_private, hop_check=hop_check,
                                         etag=page.etag if archived else None,
                                         last_modified=page.last_modified if archived else None)
        if fetched.error == "stopped":
            return
        if fetched.not_modified and archived:
            self.state.page_checked(page.url, etag=None, last_modified=None, now=self.now())
            self.tally.counts["unchanged"] += 1
            return
        if not fetched.ok:
            self._note_server_wait(fetched)
            reason = fetched.error or f"HTTP {fetched.status}"
            if fetched.retry_after is not None:
                reason += f" (Retry-After {fetched.retry_after:.0f} s)"
            self._page_failed(page, reason, status=fetched.status, retry_after=fetched.retry_after)
            return
        with self.tally.timed("extract"):
            from qabot.ingest.web import article_from_html  # trafilatura is slow to import: only when a page came

            try:
                # no fallback date: the hash must not change with the day the page was fetched
                article = article_from_html(fetched.body, url=fetched.final_url, path=str(self.warc.final.relative_to(self.archive)),
                                            content_type=fetched.headers.get("content-type"))
            except ValueError as exc:
                self._page_failed(page, f"not archived: {exc}", permanent=True)
                return
        if archived and page.content_hash == article.content_hash:
            self.state.page_checked(page.url, etag=fetched.headers.get("etag"), last_modified=fetched.headers.get("last-modified"),
                                    now=self.now())
            self.tally.counts["unchanged"] += 1
            return
        with self.tally.timed("archive"):
            committed = self.warc.append(fetched, datetime.fromtimestamp(self.now(), UTC))
            self.state.page_archived(page.url, etag=fetched.headers.get("etag"), last_modified=fetched.headers.get("last-modified"),
                                     content_hash=article.content_hash, part=self.warc.part_key, committed=committed, now=self.now())
        self.tally.counts["changed" if archived else "new"] += 1


__all__ = ["Origin", "Round", "RoundOptions"]
