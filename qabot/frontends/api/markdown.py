"""Archive text inside the chat reply's Markdown: always text, never markup.

Titles, dates, answer sentences, LLM replies and notes come from the archive (or from a model
that read it), and the chat endpoint's clients render its Markdown, many with raw HTML on
(markdown-it's commonmark preset, the chat UIs built on it). :func:`escape` makes a string
render as exactly its characters: a backslash before every character that could start HTML, an
entity, emphasis, code, a link or an image, and before a block marker at its start.
:func:`link_target` makes a stored URL a link destination that goes where the archive said, or
nothing when it is not http(s). Pure functions, no I/O.

    >>> escape("<img src=x onerror=alert(1)> *fett*")
    '\\\\<img src=x onerror=alert(1)\\\\> \\\\*fett\\\\*'
    >>> link("Gipfel", "https://example.org/a b")
    '[Gipfel](<https://example.org/a%20b>)'
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

__all__ = ["escape", "link", "link_target"]

# Inline syntax: HTML and autolinks (< >), entities (&), emphasis (* _), code (`), links and
# images ([ ]; "(" and "!" mean nothing without them), GFM's strikethrough and tables (~ |).
_INLINE = re.compile(r"([\\`*_\[\]<>&~|])")
# What makes a line a heading, quote, list item or rule; "*" and "_" are escaped anyway.
_BLOCK_START = re.compile(r"^([#>+=-])|^(\d{1,9})([.)])")
# Inside a <...> destination: "<", ">", a backslash, spaces and controls must not stand as they
# are; "%" stays (the URL's own escapes), and so does every character a URL may hold.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~-._"
_MARKER = re.compile(r"\\\[(\d{1,3})\\\]")


def escape(text: str, *, keep_markers: bool = False) -> str:
    """``text`` on one line (whitespace collapsed), rendering as exactly its characters.

    ``keep_markers`` leaves citation markers (``[1]``) bare, for a reply that carries its own: a
    bare ``[1]`` is a link only where a line starting with ``[1]:`` defines one, and no escaped
    text can start such a line.
    """
    flat = _INLINE.sub(r"\\\1", " ".join(text.split()))
    flat = _BLOCK_START.sub(lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", flat)
    return _MARKER.sub(r"[\1]", flat) if keep_markers else flat


def link_target(url: str | None) -> str | None:
    """A Markdown link destination (``<...>``) for ``url``; None unless it is http(s) with a host.

    Characters that may not stand in a destination are percent-encoded; ``&`` gets a backslash,
    so that ``&amp;`` in a URL stays those five characters instead of becoming an entity.
    """
    if not url or not url.strip():
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return "<" + quote(url, safe=_URL_SAFE).replace("&", "\\&") + ">"


def link(label: str, url: str | None) -> str:
    """``[label](<url>)`` with both made safe; the escaped label alone without a usable URL."""
    target = link_target(url)
    return f"[{escape(label)}]({target})" if target else escape(label)
