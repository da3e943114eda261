"""NewsML-G2 and NITF ``.xml`` files: a news agency's text items as articles (lxml).

NewsML-G2 (IPTC): a ``newsItem`` (or a ``newsMessage`` holding several) whose ``itemClass`` is
``ninat:text``; the text is its ``inlineXML`` (XHTML, or NITF inside) or ``inlineData``.
Headline, dateline and byline (``by``) come from ``contentMeta``; the date from
``contentCreated``, else ``firstCreated``, else ``versionCreated``; the source from the
credit line, else the provider's name. The ``guid`` is the id and ``version`` (then
``versionCreated``) the version. NITF: ``docdata/doc-id/@id-string`` is the id, ``du-key/@version``
the version, ``date.issue`` the date, ``hedline/hl1``, ``byline`` and ``dateline`` the rest.

Packages, pictures, videos, concept, knowledge, planning and catalog items are not articles:
each is skipped with a reason naming it and its line. XML that is neither format is a
problem, and so is XML that declares entities (NewsML-G2 and NITF need none; refusing them
keeps billion-laughs and external-entity files out); the parser resolves none and fetches nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from qabot.documents import Article, Problem
from qabot.ingest.versions import Keep, Version, timestamp
from qabot.ingest.wire import WireItem, blocks, item_to_article, safe_xml_parser

__all__ = ["parse_newsml"]

_ITEMS = {"newsItem": None, "packageItem": "a package", "conceptItem": "a concept item",
          "knowledgeItem": "a knowledge item", "planningItem": "a planning item", "catalogItem": "a catalog item"}


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _first(element: etree._Element | None, path: str) -> etree._Element | None:
    """The first element at ``path`` (local names joined by ``/``, any namespace) under ``element``."""
    if element is None:
        return None
    found = element.xpath("./" + "/".join(f"*[local-name()='{step}']" for step in path.split("/")))
    return found[0] if found else None


def _text(element: etree._Element | None, path: str = "") -> str | None:
    node = _first(element, path) if path else element
    if node is None:
        return None
    return " ".join("".join(node.itertext()).split()) or None


def parse_newsml(data: bytes, *, rel: str, path: str, keep: Keep) -> Iterator[Article | Problem]:
    """The articles of one NewsML-G2 or NITF file (problems for what is not one)."""
    try:
        tree = etree.fromstring(data, safe_xml_parser())
    except etree.XMLSyntaxError as exc:
        yield Problem(path, getattr(exc, "lineno", None), f"malformed XML: {' '.join(str(exc).split())[:200]}")
        return
    info = tree.getroottree().docinfo
    if info.internalDTD is not None and any(True for _ in info.internalDTD.iterentities()):
        yield Problem(path, 1, "XML that declares entities (a DOCTYPE with <!ENTITY>) is refused: NewsML-G2 and NITF need none")
        return
    root = _local(tree)
    if root == "nitf":
        yield from item_to_article(_nitf_item(tree), path=path, line=tree.sourceline, fallback_id=rel, keep=keep,
                                   where=path)
        return
    if root == "newsMessage":
        items = [e for e in tree.xpath("./*[local-name()='itemSet']/*") if _local(e) in _ITEMS]
        if not items:
            yield Problem(path, tree.sourceline, "a newsMessage without items")
    elif root in _ITEMS:
        items = [tree]
    else:
        yield Problem(path, tree.sourceline, f"not NewsML-G2 or NITF (the root element is <{root}>)")
        return
    for number, item in enumerate(items, 1):
        yield from _g2_item(item, number, rel=rel, path=path, keep=keep)


def _g2_item(item: etree._Element, number: int, *, rel: str, path: str, keep: Keep) -> Iterator[Article | Problem]:
    guid = item.get("guid")
    label = f"{_local(item)} {guid or number}"
    line = item.sourceline
    if (kind := _ITEMS[_local(item)]) is not None:
        yield Problem(path, line, f"{label}: {kind}, not a text article; skipped")
        return
    meta = _first(item, "itemMeta")
    item_class = (_first(meta, "itemClass").get("qcode") or "") if _first(meta, "itemClass") is not None else ""
    if not item_class.endswith(":text"):
        yield Problem(path, line, f"{label}: itemClass {item_class or 'missing'}, not a text article; skipped")
        return
    content = _first(item, "contentMeta")
    paragraphs, nitf, teaser = _g2_body(item)
    if paragraphs is None:
        yield Problem(path, line, f"{label}: no inline text (inlineXML or inlineData); skipped")
        return
    headlines = sorted(item.xpath("./*[local-name()='contentMeta']/*[local-name()='headline']"),
                       key=lambda h: int(h.get("rank") or 0) if (h.get("rank") or "0").isdigit() else 0)
    version_created = _text(meta, "versionCreated")
    provider = _first(meta, "provider")
    status = _first(meta, "pubStatus")
    wire = WireItem(
        guid=guid,
        version=Version(int(item.get("version") or 0) if (item.get("version") or "").isdigit() else 0,
                        timestamp(version_created) or 0.0),
        paragraphs=tuple(paragraphs),
        headline=_text(headlines[0]) if headlines else _text(nitf, "body/body.head/hedline/hl1"),
        teaser=teaser or _teaser(content) or _text(nitf, "body/body.head/abstract"),
        byline=_text(content, "by") or _byline(nitf),
        dateline=_text(content, "dateline") or _text(nitf, "body/body.head/dateline"),
        created=_text(content, "contentCreated") or _text(meta, "firstCreated") or version_created,
        language=_language(content, item),
        source=_text(content, "creditline") or _text(provider, "name") or _qcode_name(provider),
        status=(status.get("qcode") or "").rpartition(":")[2] if status is not None else None,
    )
    yield from item_to_article(wire, path=path, line=line, fallback_id=f"{rel}#{number}", keep=keep,
                               where=f"{path}:{number}")


def _g2_body(item: etree._Element) -> tuple[list[str] | None, etree._Element | None, str | None]:
    """The item's paragraphs (None without inline text), its NITF document if that carries them,
    and the teaser when the body holds one (dpa's ``<p class="teaser">``)."""
    for inline in item.xpath("./*[local-name()='contentSet']/*[local-name()='inlineXML' or local-name()='inlineData']"):
        if _local(inline) == "inlineData":
            text = "".join(inline.itertext())
            return [p for p in text.split("\n\n") if p.strip()], None, None
        nitf = _first(inline, "nitf")
        if nitf is not None:
            content = _first(nitf, "body/body.content")
            return blocks(content if content is not None else nitf), nitf, None
        html = _first(inline, "html")
        body = _first(html, "body") if html is not None else inline
        mains = [s for s in body.iter() if isinstance(s.tag, str) and _local(s) == "section"
                 and "main" in (s.get("class") or "").split()]
        teasers = [p for main in mains for p in main.iter() if isinstance(p.tag, str)
                   and "teaser" in (p.get("class") or "").split()]
        found = [p for main in mains for p in blocks(main, skip=("teaser",))] if mains else blocks(body, skip=("header",))
        return found, None, _text(teasers[0]) if teasers else None
    return None, None, None


def _teaser(content: etree._Element | None) -> str | None:
    found = content.xpath("./*[local-name()='description'][@role='drol:teaser']") if content is not None else []
    return _text(found[0]) if found else None


def _nitf_item(nitf: etree._Element) -> WireItem:
    docdata = _first(nitf, "head/docdata")
    doc_id = _first(docdata, "doc-id")
    du_key = _first(docdata, "du-key")
    issued = _first(docdata, "date.issue")
    release = _first(docdata, "date.release")
    when = (issued.get("norm") if issued is not None else None) or (release.get("norm") if release is not None else None)
    version = du_key.get("version") if du_key is not None else None
    content = _first(nitf, "body/body.content")
    copyright_ = _first(docdata, "doc.copyright")
    pubdata = _first(nitf, "head/pubdata")
    return WireItem(
        guid=doc_id.get("id-string") if doc_id is not None else None,
        version=Version(int(version) if version and version.isdigit() else 0, timestamp(when) or 0.0),
        paragraphs=tuple(blocks(content if content is not None else nitf)),
        headline=_text(nitf, "body/body.head/hedline/hl1") or _text(nitf, "head/title"),
        byline=_byline(nitf),
        dateline=_text(nitf, "body/body.head/dateline"),
        created=_nitf_date(when),
        language=nitf.get("{http://www.w3.org/XML/1998/namespace}lang"),
        source=(pubdata.get("name") if pubdata is not None else None) or (copyright_.get("holder") if copyright_ is not None else None),
    )


def _nitf_date(norm: str | None) -> str | None:
    """``YYYY-MM-DD`` from NITF's ``norm`` (``20250128T091834+0100`` or ISO); the date as written."""
    if not norm:
        return None
    digits = norm.strip()
    if len(digits) >= 8 and digits[:8].isdigit():
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"
    return digits


def _byline(nitf: etree._Element | None) -> str | None:
    return _text(nitf, "body/body.head/byline")


def _language(content: etree._Element | None, item: etree._Element) -> str | None:
    language = _first(content, "language")
    return (language.get("tag") if language is not None else None) or item.get("{http://www.w3.org/XML/1998/namespace}lang")


def _qcode_name(provider: etree._Element | None) -> str | None:
    """``dpa`` from ``qcode="dnlprov:dpa"`` (or the literal) when the provider has no name."""
    if provider is None:
        return None
    code = provider.get("qcode") or provider.get("literal") or ""
    return code.rpartition(":")[2] or None
