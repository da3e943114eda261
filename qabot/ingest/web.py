"""One HTML page -> one article: the main text and its metadata, from the page itself; pure.

trafilatura finds the article text (boilerplate, navigation, comments and ads left out) and
the title, date (htmldate), author and site name; the page's own ``<link rel="canonical">``
(else ``og:url``) and language (``<html lang>``, else ``Content-Language``, else ``og:locale``)
are read here with lxml, because the canonical URL makes the article's id and an id must not
change when a library changes how it normalises URLs. :func:`canonical_url` is that
normalisation, ours and small. The WARC reader and ``qabot follow`` use the same functions, so
a page gets the same id as an ``.html`` file and inside a web archive.

``Article`` has no author or language field: the author becomes the text's first line
(``Von …`` / ``By …``, so "who wrote …?" has an answer), the language stays on :class:`Page`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit, urlunsplit

import trafilatura
from lxml.html import HtmlElement

from qabot.documents import Article, Problem
from qabot.ingest.charset import decode_page
from qabot.ingest.cleaning import TITLE_LIMIT, normalise_text, one_line, shorten, title_from_text
from qabot.ingest.parsers import parse_date

__all__ = [
    "EXTRACTION",
    "Extraction",
    "Page",
    "article_from_html",
    "canonical_url",
    "date_from_name",
    "extract_page",
    "page_id",
    "parse_html",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extraction:
    """How trafilatura is asked for the main text (``scripts/bench/bench_extraction.py`` compares settings).

    ``recall_fallback``: when the first extraction keeps less than this share of what a
    ``favor_recall`` extraction finds, the recall text is taken instead (None: never asked).
    """

    favor_precision: bool = False
    favor_recall: bool = False
    fast: bool = False
    include_tables: bool = True
    recall_fallback: float | None = None


# Chosen with scripts/bench/bench_extraction.py on the even-numbered half of its 181 pages and
# confirmed on the odd half (docs/sources.md has the figures).
EXTRACTION = Extraction(favor_precision=True, recall_fallback=0.5)


@dataclass(frozen=True)
class Page:
    """What an HTML page says about its article. ``date`` is ``YYYY-MM-DD``; ``text`` has blank lines
    between paragraphs; ``url`` is canonical (:func:`canonical_url`); ``language`` a code like ``de``."""

    text: str
    title: str | None = None
    date: str | None = None
    author: str | None = None
    url: str | None = None
    language: str | None = None
    site: str | None = None


_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")  # 2025-08-15-alaska.html, 20250815.html
_HEAD_END = re.compile(r"</head\s*>|<body\b", re.IGNORECASE)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?=$|[-_])")
_WORD = re.compile(r"[^\W_]+")
# What a page without an article still yields (menus, link lists, cookie notices) comes in short
# lines; a news article has at least one paragraph of this many words.
_PROSE_WORDS = 8
_AUTHOR_PREFIX = {"de": "Von"}  # the byline's word in the page's language; "By" otherwise


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` (resolved against ``base``) as an id: http(s) only, scheme and host lower-cased, the
    default port, user info and ``#fragment`` dropped, an empty path made ``/``; the query is kept
    as written (it can name the article). None for anything that is not an http(s) URL."""
    if not url or not url.strip():
        return None
    url = url.strip()
    if base:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # "http://[::1" or a port that is not a number
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def date_from_name(name: str) -> str | None:
    """``YYYY-MM-DD`` from a file name such as ``2025-08-15-alaska.html`` (the last resort but mtime)."""
    for m in _NAME_DATE.finditer(PurePosixPath(name).name):
        try:
            return parse_date("-".join(m.groups()))
        except ValueError:
            continue
    return None


def _head(text: str) -> HtmlElement | None:
    """The page's ``<head>`` (what comes before ``</head>`` or ``<body>``), parsed; cheap on big pages."""
    m = _HEAD_END.search(text)
    return trafilatura.load_html(text[: m.start()] if m else text[:65536])


def _own_url(tree: HtmlElement | None, url: str | None) -> str | None:
    """The page's canonical link, else its ``og:url``, else ``url``; a canonical link to the site's
    front page from a deeper page is a common misconfiguration and is not believed."""
    given = canonical_url(url)
    if tree is not None:
        candidates = [*tree.xpath("//link[@href][contains(concat(' ', normalize-space(translate(@rel, "
                                  "'CANONICAL', 'canonical')), ' '), ' canonical ')]/@href"),
                      *tree.xpath("//meta[@property='og:url' or @name='og:url'][@content]/@content")]
        for candidate in candidates:
            found = canonical_url(str(candidate), url)
            if found is None:
                continue
            if urlsplit(found).path == "/" and given is not None and urlsplit(given).path != "/":
                continue
            return found
    return given


def page_id(data: bytes, *, url: str | None, rel: str, content_type: str | None = None) -> str:
    """The id the page's article gets, without extracting it (cheap: the ``<head>`` only).

    The canonical URL, else ``og:url``, else ``url`` (a WARC record's target), else ``rel``
    without its extension (an ``.html`` file's path in the archive, as for other one-file articles).
    """
    text, _ = decode_page(data, content_type)
    return _own_url(_head(text), url) or PurePosixPath(rel).with_suffix("").as_posix()


def _language(tree: HtmlElement) -> str | None:
    values = [*tree.xpath("/html/@lang"), *tree.xpath("/html/@xml:lang"),
              *tree.xpath("//meta[translate(@http-equiv, 'CONTENT-LANGUAGE', 'content-language')='content-language']/@content"),
              *tree.xpath("//meta[@property='og:locale']/@content")]
    for value in values:
        if m := _LANGUAGE.match(str(value).strip()):
            return m.group().lower()
    return None


def _paragraphs(text: str | None) -> str:
    """trafilatura's text (a line a paragraph) as qabot stores it: a blank line between paragraphs."""
    if not text:
        return ""
    return normalise_text("\n\n".join(line for line in text.split("\n") if line.strip()))


def _extract(tree: HtmlElement, url: str | None, settings: Extraction, *, with_metadata: bool,
             precision: bool, recall: bool) -> trafilatura.settings.Document | None:
    return trafilatura.bare_extraction(
        tree, url=url, with_metadata=with_metadata, include_comments=False, include_tables=settings.include_tables,
        fast=settings.fast, favor_precision=precision, favor_recall=recall,
    )


def extract_page(html: str, *, url: str | None = None, settings: Extraction = EXTRACTION) -> Page:
    """The page's article and metadata. Raises ValueError (the reason) when it holds no article text."""
    tree = trafilatura.load_html(html)
    if tree is None:
        raise ValueError("not an HTML page (nothing to parse)")
    document = _extract(tree, url, settings, with_metadata=True, precision=settings.favor_precision,
                        recall=settings.favor_recall)
    text = _paragraphs(document.text if document else None)
    if settings.recall_fallback is not None and not settings.favor_recall:
        wider = _extract(tree, url, settings, with_metadata=False, precision=False, recall=True)
        wider_text = _paragraphs(wider.text if wider else None)
        if len(text) < settings.recall_fallback * len(wider_text):
            text = wider_text  # the precise extraction lost most of the article
    meta = document if document is not None else trafilatura.bare_extraction(tree, url=url, with_metadata=True, fast=True)
    title = one_line(getattr(meta, "title", None))
    first, _, rest = text.partition("\n\n")
    if title and rest and one_line(first) == title:
        text = rest  # the headline heads the text too; it is the article's title already
    if not any(len(_WORD.findall(paragraph)) >= _PROSE_WORDS for paragraph in text.split("\n\n")):
        raise ValueError(f"no article text on the page (no paragraph of {_PROSE_WORDS} words or more)")
    return Page(
        text=text,
        title=title,
        date=_page_date(getattr(meta, "date", None)),
        author=one_line(getattr(meta, "author", None)),
        url=_own_url(_head(html), url),  # what page_id reads, so both give the same id
        language=_language(tree),
        site=one_line(getattr(meta, "sitename", None)) or one_line(getattr(meta, "hostname", None)),
    )


def _page_date(value: str | None) -> str | None:
    try:
        return parse_date(value) if value else None
    except ValueError:
        return None


def parse_html(
    data: bytes, *, rel: str, path: str, line: int | None = None, url: str | None = None,
    content_type: str | None = None, fallback_date: str | None = None, settings: Extraction = EXTRACTION,
) -> Iterator[Article | Problem]:
    """One page's article, after warnings about it (a misdeclared charset); or one Problem.

    ``url`` is where the page was fetched (a WARC record's target), ``rel`` its file's path in
    the archive (the id when the page names no URL), ``fallback_date`` the date when the page
    shows none (from the file name, its mtime or the capture).
    """
    text, warning = decode_page(data, content_type)
    record = "" if line is None else f"record {line}: "  # ``line`` counts a WARC file's records
    if warning:
        yield Problem(path, line, record + warning, skipped=False)
    try:
        page = extract_page(text, url=url, settings=settings)
    except ValueError as exc:
        yield Problem(path, line, record + str(exc))
        return
    body = page.text
    if page.author and page.author.split(";")[0].strip() not in body[:500]:
        body = f"{_AUTHOR_PREFIX.get(page.language or '', 'By')} {page.author.replace('; ', ', ')}\n\n{body}"
    title = shorten(page.title, TITLE_LIMIT) if page.title else title_from_text(page.text)
    yield Article(id=page.url or PurePosixPath(rel).with_suffix("").as_posix(), text=body, title=title,
                  date=page.date or fallback_date, url=page.url, source=page.site, path=path, line=line)


def article_from_html(
    data: bytes, *, url: str | None, path: str, line: int | None = None, fallback_date: str | None = None,
    rel: str | None = None, content_type: str | None = None,
) -> Article:
    """The article of one HTML page (``qabot follow`` calls this for a page it fetched).

    Raises ValueError with the reason when the page holds no article text; a warning (a
    misdeclared charset) is logged. The id is the page's canonical URL, else ``url``, else
    ``rel`` (or ``path``) without its extension.
    """
    article = None
    for item in parse_html(data, rel=rel or path, path=path, line=line, url=url, content_type=content_type,
                           fallback_date=fallback_date):
        if isinstance(item, Article):
            article = item
        elif item.skipped:
            raise ValueError(item.reason)
        else:
            logger.warning("%s", item)
    if article is None:  # parse_html yields an article or a skipping problem; never neither
        raise ValueError("no article text on the page")
    return article
