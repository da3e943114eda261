"""A news agency's item, whatever format carried it, as an article; pure (no I/O).

:mod:`qabot.ingest.newsml` (NewsML-G2 and NITF) and :mod:`qabot.ingest.digitalwires` (dpa's
JSON) read their formats into a :class:`WireItem`; :func:`item_to_article` makes the article
the same way for both, so the same dpa item sent as JSON and as NewsML-G2 reads the same. The
item's GUID is the article's id and its version the :class:`~qabot.ingest.versions.Version`
(a later version replaces an earlier one). The byline opens the text when the body does not
already hold it; the dateline opens the first paragraph, likewise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lxml import etree

from qabot.documents import Article, Problem
from qabot.ingest.cleaning import TITLE_LIMIT, normalise_text, one_line, shorten, title_from_text
from qabot.ingest.parsers import parse_date
from qabot.ingest.versions import Keep, Version

__all__ = ["BLOCKS", "WireItem", "blocks", "item_to_article", "safe_xml_parser"]

# Elements whose text is a paragraph: XHTML's and NITF's (hl2 is NITF's subheading, block its box).
BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "pre", "blockquote", "hl2", "tr", "dd", "dt"})
_WITHDRAWN = frozenset({"canceled", "cancelled", "withheld"})


def safe_xml_parser() -> etree.XMLParser:
    """An lxml parser for untrusted XML: no entities resolved, no DTD loaded, nothing fetched,
    no huge-tree mode (libxml2's limits against amplification stay on)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def blocks(root: etree._Element, *, skip: Iterable[str] = ()) -> list[str]:
    """The text of each paragraph-like element under ``root`` in document order (outermost ones only),
    whitespace collapsed; elements named in ``skip`` (a local name or a class) are left out with all they hold."""
    skipped = frozenset(skip)
    found: list[str] = []

    def walk(element: etree._Element) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name in skipped or skipped & set((child.get("class") or "").split()):
                continue
            if name in BLOCKS:
                if name == "tr":  # a table row is one line, its cells apart
                    text = " | ".join(t for cell in child if (t := " ".join("".join(cell.itertext()).split())))
                else:
                    text = " ".join("".join(child.itertext()).split())
                if text:
                    found.append(text)
            else:
                walk(child)

    walk(root)
    return found


@dataclass(frozen=True)
class WireItem:
    """One agency item: what the formats share. ``status`` is its pubStatus (``usable``, ``canceled``…)."""

    guid: str | None
    version: Version
    paragraphs: tuple[str, ...]
    headline: str | None = None
    teaser: str | None = None  # the lead, before the body (and before the dateline, as dpa sends it)
    byline: str | None = None
    dateline: str | None = None
    created: str | None = None  # first created (or the version's time): the article's date
    language: str | None = None
    source: str | None = None
    status: str | None = None


def item_to_article(item: WireItem, *, path: str, line: int | None, fallback_id: str, keep: Keep,
                    where: str) -> Iterator[Article | Problem]:
    """The article of ``item`` when ``keep`` says this version is the one to read; else nothing.

    A withdrawn item (pubStatus canceled) is a Problem, so an earlier version is not indexed either.
    """
    article_id = one_line(item.guid) or fallback_id
    if not keep(article_id, item.version, where):
        return
    label = f"item {article_id}"
    if (item.status or "").lower() in _WITHDRAWN:
        yield Problem(path, line, f"{label}: withdrawn by the agency (pubStatus {item.status}); not indexed")
        return
    paragraphs = [p for p in (normalise_text(x) for x in item.paragraphs) if p]
    if not paragraphs:
        yield Problem(path, line, f"{label}: no text in the item")
        return
    headline = one_line(item.headline)
    if headline and len(paragraphs) > 1 and one_line(paragraphs[0]) == headline:
        paragraphs.pop(0)  # the headline heads the body too; it is the title already
    dateline = one_line(item.dateline)
    if dateline and not any(_flat(p).startswith(_flat(dateline).rstrip(" -–")) for p in paragraphs[:2]):
        joiner = " " if dateline.endswith(("-", "–")) else " – "
        paragraphs[0] = f"{dateline}{joiner}{paragraphs[0]}"
    teaser = normalise_text(item.teaser or "")
    if teaser and _flat(teaser) not in {_flat(p) for p in paragraphs[:2]}:
        paragraphs.insert(0, teaser)
    byline = one_line(item.byline)
    if byline and not any(byline in _flat(p) for p in paragraphs[:3]):
        paragraphs.insert(0, byline)
    text = "\n\n".join(paragraphs)
    when = None
    if item.created:
        try:
            when = parse_date(item.created)
        except ValueError as exc:
            yield Problem(path, line, f"{label}: {exc}; indexed without a date", skipped=False)
    yield Article(id=article_id, text=text, title=shorten(headline, TITLE_LIMIT) if headline else title_from_text(text),
                  date=when, url=None, source=one_line(item.source), path=path, line=line)


def _flat(text: str) -> str:
    """``text`` with every run of whitespace (no-break spaces too) one space, for comparisons."""
    return " ".join(text.split())
