"""Text as the index stores it: markup reduced, invisible characters removed, titles made; pure.

:func:`normalise_text` runs on every article text (and title) before an Article is built,
because chunk offsets point into the result. :func:`one_line` does the same for metadata
values (ids, URLs, sources). :func:`title_from_text` makes a title for an article without one.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

from qabot.ingest.sentences import split_sentences

__all__ = ["TITLE_LIMIT", "TITLE_MAX", "clean_chars", "normalise_text", "one_line", "shorten", "title_from_text"]

TITLE_MAX = 90  # a title made from the text
TITLE_LIMIT = 200  # a title given in the input is cut beyond this

# Only known element names count as markup, so that "x<y and z>w" in plain text survives.
_ELEMENTS = (
    r"a|abbr|address|article|aside|audio|b|big|blockquote|body|br|button|caption|center|cite|code|col|"
    r"colgroup|dd|del|details|dfn|div|dl|dt|em|embed|figcaption|figure|font|footer|form|h[1-6]|head|"
    r"header|hr|html|i|iframe|img|input|ins|kbd|label|li|link|main|mark|meta|nav|noscript|ol|option|p|"
    r"picture|pre|q|s|samp|script|section|select|small|source|span|strike|strong|style|sub|summary|sup|"
    r"svg|table|tbody|td|template|textarea|tfoot|th|thead|time|title|tr|tt|u|ul|var|video|wbr"
)
_TAG = re.compile(
    rf"<!--.*?-->|<!DOCTYPE[^<>]*>|<\?xml[^<>]*\?>|</?(?:{_ELEMENTS})\b[^<>]*>", re.DOTALL | re.IGNORECASE
)
# Block elements: where they occur, the text is an HTML page or fragment, whose newlines and
# runs of spaces mean one space and whose paragraphs come from the tags. Inline tags alone
# (<b>, <a href>) are only stripped, and the text's own line breaks stay.
_BLOCK = re.compile(
    r"</?(?:p|div|br|h[1-6]|li|ul|ol|dl|table|tr|blockquote|article|section|body|html|main|pre|hr)\b[^<>]*>",
    re.IGNORECASE,
)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
_DROP_ELEMENTS = re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_BLOCK_END = re.compile(r"</(?:p|div|h[1-6]|li|blockquote|tr|table|ul|ol|dl)\s*>", re.IGNORECASE)
_LINE_BREAK = re.compile(r"<br\b[^<>]*>", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t]{2,}")

# Vertical tab, form feed, NEL and the Unicode line separator end a line; U+2029 a paragraph.
_LINE_ENDS = str.maketrans({"\x0b": "\n", "\x0c": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n"})
# Removed outright: C0/C1 controls but tab and newline, soft hyphens and zero-width spaces
# (they split words: "Bundes\u00adregierung"), BOMs inside text, and the bidi embeddings,
# overrides and isolates, whose scope leaks into whatever text is shown next to a citation.
# Kept: ZWJ/ZWNJ (emoji sequences, Persian and Indic spelling) and the LRM/RLM marks.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069]")
# Lone surrogates (a JSON "\ud800" escape) cannot be encoded as UTF-8 for hashing or SQLite.
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_chars(text: str) -> str:
    """``text`` with ``\\n`` line ends, without invisible or control characters, NFC-composed.

    NFC because decomposed accents ("o" + U+0308) tokenize and match differently from composed ones.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_LINE_ENDS)
    text = _INVISIBLE.sub("", _SURROGATE.sub("\ufffd", text))
    return unicodedata.normalize("NFC", text)


def normalise_text(text: str) -> str:
    """The text as articles store it: ``\\n`` newlines, no trailing spaces, one blank line between paragraphs.

    HTML markup, when there is any, is reduced to its text first (tags stripped, entities
    unescaped); invisible and control characters are removed (see :func:`clean_chars`).
    """
    text = _CDATA.sub(r"\1", clean_chars(text))
    is_page = bool(_BLOCK.search(text))
    has_tags = is_page or bool(_TAG.search(text))
    if has_tags:
        text = _DROP_ELEMENTS.sub("", text)
    if is_page:
        text = " ".join(text.split())
        text = _LINE_BREAK.sub("\n", _BLOCK_END.sub("\n\n", text))
    if has_tags:
        text = _SPACES.sub(" ", _TAG.sub("", text))
    if _ENTITY.search(text):
        # Entities may stand for anything, "&shy;" and "&#8203;" included: clean again.
        text = clean_chars(html.unescape(text))
    lines = text.split("\n")
    text = "\n".join(line.strip() if is_page else line.rstrip() for line in lines)
    return _BLANK_LINES.sub("\n\n", text).strip()


def one_line(value: Any) -> str | None:
    """A metadata value (id, URL, source, title) as one trimmed, clean line, or None when empty."""
    if value is None:
        return None
    return " ".join(clean_chars(str(value)).split()) or None


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word to at most ``limit`` characters (``…`` marks a cut)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-–") + "…"


def title_from_text(text: str) -> str:
    """A title for an article without one: its first sentence, cut at a word to at most 90 characters."""
    head = text[: TITLE_MAX * 4]  # the first sentence is all that is needed, even of a 5 MB text
    sentences = split_sentences(head)
    return shorten(sentences[0].text if sentences else head, TITLE_MAX)
