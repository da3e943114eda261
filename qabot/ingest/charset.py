"""The bytes of a web page as text: the charset it declares, checked against its bytes; pure.

A page says its charset in the HTTP header (a WARC record's ``Content-Type``), in a BOM, or in
``<meta charset>`` / ``<meta http-equiv="Content-Type">``. Pages lie: the usual lie is a page
saved as UTF-8 that still declares ``iso-8859-1`` (read as declared it turns ``München`` into
``MÃ¼nchen``, and nothing fails, since every byte is valid latin-1). So a declared single-byte
charset is believed only when the bytes are not valid UTF-8 with non-ASCII in them; any other
declaration is believed when the bytes decode with it. A misdeclared or unknown charset is a
warning, and the page is read as what its bytes are.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["declared_charset", "decode_page"]

_SNIFF = 4096  # the HTML spec looks for a <meta charset> in the first 1024 bytes; pages are sloppier
_META = re.compile(rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HEADER = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Charsets in which every byte string decodes, so a failed decode never shows the lie.
_SINGLE_BYTE = frozenset({"iso8859_1", "iso8859_15", "cp1252", "ascii"})
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def declared_charset(data: bytes, content_type: str | None = None) -> str | None:
    """The charset the page declares: its HTTP ``Content-Type`` first, else its ``<meta>``; None without one."""
    if content_type and (m := _HEADER.search(content_type)):
        return m.group(1).lower()
    if m := _META.search(data[:_SNIFF]):
        return m.group(1).decode("ascii").lower()
    return None


def decode_page(data: bytes, content_type: str | None = None) -> tuple[str, str | None]:
    """The page's text and a warning (None when it is what it says it is).

    A BOM wins over any declaration (browsers do the same). Without a usable declaration the
    bytes are read as UTF-8, else as cp1252 (the web's de facto default for undeclared pages).
    """
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding, "replace").lstrip("\ufeff"), None
    declared = declared_charset(data, content_type)
    codec = _codec(declared)
    if declared and codec is None:
        text, actual = _undeclared(data)
        return text, f"unknown charset {declared!r}; read as {actual}"
    if codec is not None:
        if codec in _SINGLE_BYTE:
            if _NON_ASCII.search(data) and _is_utf8(data):
                return data.decode("utf-8"), f"declares charset {declared!r} but the bytes are UTF-8; read as UTF-8"
            return data.decode("cp1252" if codec in ("iso8859_1", "ascii") else codec, "replace"), None
        try:
            return data.decode(codec), None
        except UnicodeDecodeError as exc:
            text, actual = _undeclared(data)
            return text, f"declares charset {declared!r} but byte {exc.start} is not {declared}; read as {actual}"
    text, actual = _undeclared(data)
    return text, None if actual == "UTF-8" else f"no charset declared and not UTF-8; read as {actual}"


def _codec(name: str | None) -> str | None:
    """Python's codec name for a declared charset (None when unknown or undeclared)."""
    if not name:
        return None
    try:
        return codecs.lookup(name).name.replace("-", "_")
    except LookupError:
        return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _undeclared(data: bytes) -> tuple[str, str]:
    """Text and the charset it was read as: UTF-8 when the bytes are, else cp1252 (``replace`` for its 5 holes)."""
    if _is_utf8(data):
        return data.decode("utf-8"), "UTF-8"
    return data.decode("cp1252", "replace"), "cp1252"
