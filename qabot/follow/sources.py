"""What a source lists: RSS/Atom feeds, sitemaps, sitemap indexes, news sitemaps; and source lists.

Pure: bytes in, :class:`Listing` out. The kind is told by the document's root element, not by
its URL or content type: ``urlset`` (a sitemap, news sitemap included), ``sitemapindex`` (a
list of sitemaps), anything else goes to feedparser (RSS 0.9x-2.0, RDF, Atom).

XML is parsed with lxml's safe settings (no entity expansion, no DTD, no network), since a
source is someone else's document.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

from lxml import etree

MAX_LINKS = 50_000  # the sitemap protocol's own limit per file; a feed listing more is cut here


@dataclass(frozen=True)
class Link:
    """A URL a source lists, with the date the source gives it (lastmod, updated or published;
    a changed date is how the follower notices a changed article without fetching it)."""

    url: str
    date: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Listing:
    """A parsed source: ``kind`` "feed", "sitemap" or "sitemapindex" (whose links are sitemaps)."""

    kind: str
    links: tuple[Link, ...]
    title: str | None = None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=True, remove_pis=True)


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(element: etree._Element, *path: str) -> str | None:
    """The text of the first descendant along local names ``path`` (namespace-agnostic)."""
    current = [element]
    for name in path:
        current = [c for e in current for c in e if _local(c.tag) == name]
        if not current:
            return None
    text = (current[0].text or "").strip()
    return text or None


def _sitemap(root: etree._Element, base_url: str) -> Listing:
    kind = "sitemapindex" if _local(root.tag) == "sitemapindex" else "sitemap"
    item = "sitemap" if kind == "sitemapindex" else "url"
    links = []
    for element in root:
        if _local(element.tag) != item:
            continue
        loc = _child_text(element, "loc")
        if not loc:
            continue
        date = _child_text(element, "lastmod") or _child_text(element, "news", "publication_date")
        links.append(Link(urljoin(base_url, loc), date, _child_text(element, "news", "title")))
        if len(links) >= MAX_LINKS:
            break
    return Listing(kind, tuple(links))


def _iso(parsed: time.struct_time | None) -> str | None:
    if parsed is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat().replace("+00:00", "Z")


def _feed(body: bytes, base_url: str) -> Listing:
    import feedparser  # imported here: only a feed needs it (and it is slow to import)

    parsed = feedparser.parse(body, response_headers={"content-location": base_url})
    if not parsed.get("version"):  # feedparser names the format it recognised; nothing: not a feed
        if b"<html" in body[:4096].lower():
            raise ValueError("an HTML page, not a feed or sitemap")
        reason = parsed.get("bozo_exception")
        raise ValueError(f"neither a feed nor a sitemap ({reason or 'no feed elements'})")
    links = []
    for entry in parsed.entries[:MAX_LINKS]:
        href = entry.get("link") or next((li.get("href") for li in entry.get("links", []) if li.get("href")), None)
        if not href:
            continue
        # "updated" first (a changed article gets a new one); asked by key: feedparser warns when
        # updated_parsed is read from an entry that has only a published date
        stamp = entry["updated_parsed"] if "updated" in entry.keys() else entry.get("published_parsed")  # noqa: SIM118
        date = _iso(stamp) or entry.get("updated") or entry.get("published")
        links.append(Link(urljoin(base_url, href.strip()), date, entry.get("title")))
    return Listing("feed", tuple(links), parsed.feed.get("title"))


def parse_listing(body: bytes, *, base_url: str) -> Listing:
    """The links a feed or sitemap lists (relative ones resolved against ``base_url``).

    Raises ValueError with a reason when ``body`` is neither.
    """
    if not body.strip():
        raise ValueError("empty document")
    try:
        root = etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError:
        root = None  # feedparser reads some broken feeds; it says so when it cannot
    if root is not None and _local(root.tag) in {"urlset", "sitemapindex"}:
        return _sitemap(root, base_url)
    if root is not None and _local(root.tag) == "html":
        raise ValueError("an HTML page, not a feed or sitemap")
    return _feed(body, base_url)


def read_source_list(text: str) -> list[str]:
    """The URLs in a source list file: one a line; blank lines and ``#`` comments skipped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def newest_first(links: Iterable[Link]) -> list[Link]:
    """Links with the newest date first (undated last, in listed order): a capped round fetches
    the most recent articles first and leaves older ones for the next round."""
    listed = list(links)
    return sorted(listed, key=lambda link: (link.date is None, _negated(link.date or "")))


def _negated(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


__all__ = ["MAX_LINKS", "Link", "Listing", "newest_first", "parse_listing", "read_source_list"]
