"""dpa's digitalwires JSON (the format of dpa's news API): one entry a file, or ``{"entries": [...]}``.

An entry has ``urn`` (the GUID: the id), ``version`` and ``version_created`` (the version),
``headline``, ``byline``, ``dateline``, ``teaser`` and ``article_html`` (the body, HTML: its
paragraphs are read with lxml), ``content_created`` (else ``version_created``: the date),
``language``, ``creditline`` (the source) and ``pubstatus``. dpa's converter turns an entry into
NewsML-G2 with the teaser as the body's first paragraph and the dateline opening the next; so
does this reader (:func:`qabot.ingest.wire.item_to_article`), and the same item reads the same in
both formats. An entry without body text (a picture, an audio item) is skipped
with a reason. :func:`is_digitalwires` tells such a ``.json`` file from a plain JSON archive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import lxml.html
from lxml import etree

from qabot.documents import Article, Problem
from qabot.ingest.versions import Keep, Version, timestamp
from qabot.ingest.wire import WireItem, blocks, item_to_article

__all__ = ["is_digitalwires", "parse_digitalwires"]

_FORMAT = re.compile(r'"format"\s*:\s*"digitalwires')


def is_digitalwires(head: str) -> bool:
    """Does a JSON file that starts with ``head`` (its first few KB) hold digitalwires entries?"""
    return bool(_FORMAT.search(head))


def parse_digitalwires(content: str, *, rel: str, path: str, keep: Keep) -> Iterator[Article | Problem]:
    """The articles of one digitalwires file; ``line`` is the entry's 1-based number in a list of entries."""
    try:
        document = json.loads(content)
    except json.JSONDecodeError as exc:
        yield Problem(path, exc.lineno, f"malformed JSON: {exc.msg}")
        return
    if isinstance(document, dict) and isinstance(document.get("entries"), list):
        entries, numbered = document["entries"], True
    elif isinstance(document, list):
        entries, numbered = document, True
    else:
        entries, numbered = [document], False
    for number, entry in enumerate(entries, 1):
        line = number if numbered else None
        label = f"entry {number}: " if numbered else ""
        if not isinstance(entry, dict):
            yield Problem(path, line, f"{label}not a JSON object but {type(entry).__name__}")
            continue
        try:
            item = _item(entry)
        except (TypeError, ValueError, etree.ParserError) as exc:
            yield Problem(path, line, f"{label}unreadable entry: {exc}")
            continue
        for found in item_to_article(item, path=path, line=line, fallback_id=f"{rel}#{number}", keep=keep,
                                     where=f"{path}:{number}"):
            if isinstance(found, Problem) and label:
                found = Problem(found.path, found.line, label + found.reason, found.skipped)
            yield found


def _string(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _item(entry: dict[str, Any]) -> WireItem:
    html = _string(entry, "article_html")
    paragraphs = blocks(lxml.html.fragment_fromstring(html, create_parent="div")) if html else []
    version = entry.get("version")
    created = _string(entry, "version_created")
    return WireItem(
        guid=_string(entry, "urn"),
        version=Version(version if isinstance(version, int) and not isinstance(version, bool) else 0, timestamp(created) or 0.0),
        paragraphs=tuple(paragraphs),
        headline=_string(entry, "headline"),
        teaser=_string(entry, "teaser") if paragraphs else None,
        byline=_string(entry, "byline"),
        dateline=_string(entry, "dateline"),
        created=_string(entry, "content_created") or created,
        language=_string(entry, "language"),
        source=_string(entry, "creditline"),
        status=_string(entry, "pubstatus"),
    )
