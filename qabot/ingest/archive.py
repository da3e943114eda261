"""Read an archive of news articles: a folder (read recursively) or one file.

Formats, chosen by file extension (case does not matter):

``.txt`` or no extension   the seed format: `` date YYYY-MM-DD `` then the body; one article
``.jsonl`` / ``.ndjson``    one JSON object a line: id, title, date, url, source, text (text required)
``.json``                   an array of such objects (or objects one after another)
``.csv`` / ``.tsv``         a header naming the same columns (aliases such as body, headline,
                            link, published are understood), or the headerless 10kGNAD layout
                            ``label;'text'`` (the label is a category, not a source: it is dropped)
``.html`` / ``.htm``        one article a page (:mod:`qabot.ingest.web`)
``.warc`` / ``.warc.gz``    every HTML page answered 200 (:mod:`qabot.ingest.warc`)
``.xml``                    NewsML-G2 or NITF (:mod:`qabot.ingest.newsml`)
``.json`` (digitalwires)    dpa's news API entries (:mod:`qabot.ingest.digitalwires`)

The last four can hold an article more than once (a page captured again, version 2 of an
agency item): the archive is read in two passes, and only the newest version of each id is
read (:mod:`qabot.ingest.versions`).

Nothing here stops at a bad input: each problem goes to ``on_problem`` (logged by default)
and reading goes on. Bytes become text here (:func:`decode`); the parsers in
:mod:`qabot.ingest.parsers` and the text cleaning in :mod:`qabot.ingest.cleaning` are pure.
Only :func:`iter_articles` and :func:`read_file` touch the disk.
"""

from __future__ import annotations

import codecs
import errno
import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from qabot.documents import Article, Problem
from qabot.errors import ArchiveError
from qabot.ingest.digitalwires import is_digitalwires, parse_digitalwires
from qabot.ingest.newsml import parse_newsml
from qabot.ingest.parsers import Parsed, parse_csv, parse_jsonl, parse_seed
from qabot.ingest.versions import Keep, Latest, Version, keep_all
from qabot.ingest.warc import is_warc, read_warc
from qabot.ingest.web import date_from_name, page_id, parse_html

__all__ = ["decode", "iter_articles", "read_file", "require_readable"]

logger = logging.getLogger(__name__)

SEED_SUFFIXES = frozenset({".txt", ""})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
CSV_SUFFIXES = frozenset({".csv", ".tsv"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
XML_SUFFIXES = frozenset({".xml"})
_SNIFF_JSON = 65536  # characters of a .json file searched for digitalwires' "format" key

ProblemHandler = Callable[[Problem], None]

# The parser for each file extension; each takes (content, *, rel, path).
_PARSERS: dict[str, Callable[..., Parsed]] = {
    **dict.fromkeys(SEED_SUFFIXES, parse_seed),
    **dict.fromkeys(JSONL_SUFFIXES, parse_jsonl),
    **dict.fromkeys(CSV_SUFFIXES, parse_csv),
}

_SAMPLE = 8192  # bytes (or characters) looked at to tell text from binary
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8
_UTF8_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")  # a character that was valid UTF-8 beyond ASCII
_NOT_CP1252 = frozenset(b"\x81\x8d\x8f\x90\x9d")  # the five bytes cp1252 leaves undefined


class _Skip(ValueError):
    """A whole file cannot be read; the message is the Problem's reason."""


def iter_articles(path: Path, *, on_problem: ProblemHandler | None = None) -> Iterator[Article]:
    """Yield every article under ``path`` (a folder, read recursively in sorted order, or a file).

    Hidden files and folders are skipped silently. Every unreadable file or line is passed to
    ``on_problem`` (default: logged as a warning) and reading goes on.
    Raises :class:`~qabot.errors.ArchiveError` when ``path`` does not exist.
    """
    root = Path(path)
    report = on_problem or _log_problem
    if root.is_file():
        files = [(root, root.name)]
    elif root.is_dir():
        files = [(root / rel, rel) for rel in _walk(root, report)]
    else:
        raise ArchiveError(str(root), "not a file or folder" if root.exists() else "no such file or folder")
    latest = Latest()
    for file, rel in files:  # the first pass: which version of each article to read
        if _versioned(file):
            for _ in read_file(file, rel, on_problem=_ignore, keep=latest.offer):
                pass
    for file, rel in files:
        yield from read_file(file, rel, on_problem=report, keep=latest.is_latest)


def _ignore(problem: Problem) -> None:
    """The first pass's problems: the second pass reports them."""


def _versioned(path: Path) -> bool:
    """Can this file hold an article that another version replaces (read in the first pass too)?"""
    suffix = path.suffix.lower()
    if is_warc(path.name) or suffix in HTML_SUFFIXES or suffix in XML_SUFFIXES:
        return True
    if suffix == ".json" and path.is_file():
        try:
            with path.open("rb") as stream:
                return is_digitalwires(stream.read(_SNIFF_JSON).decode("utf-8", "replace"))
        except OSError:
            return False
    return False


def require_readable(path: Path) -> None:
    """ArchiveError unless ``path`` is a folder or a regular file that this process can read:
    asked before an indexing run locks, creates or stages anything."""
    root = Path(path)
    if root.is_dir():
        readable = os.access(root, os.R_OK | os.X_OK)
    elif root.is_file():
        readable = os.access(root, os.R_OK)
    elif root.exists() or root.is_symlink():
        raise ArchiveError(str(root), _not_regular(root).replace("regular file", "regular file or folder")
                           + (" (a device, FIFO or socket)" if root.exists() and not root.is_symlink() else ""))
    else:
        raise ArchiveError(str(root), "no such file or folder")
    if not readable:
        raise ArchiveError(str(root), "permission denied")


def _log_problem(problem: Problem) -> None:
    logger.warning("%s", problem)


def _walk(root: Path, report: ProblemHandler) -> list[str]:
    """Relative posix paths of the visible files under ``root``, sorted so ids and order are stable.

    Links to folders are reported, not followed: following them risks loops and reading
    the same articles twice under two ids. Index the target folder itself instead.
    """

    def unreadable(exc: OSError) -> None:
        report(Problem(str(exc.filename), None, f"cannot read folder: {exc.strerror}"))

    found: list[str] = []
    for folder, dirs, files in os.walk(root, onerror=unreadable):
        visible = sorted(d for d in dirs if not d.startswith("."))
        for name in visible:
            if os.path.islink(os.path.join(folder, name)):
                report(Problem(os.path.join(folder, name), None, "link to a folder: not followed"))
        dirs[:] = visible
        rel_folder = Path(folder).relative_to(root)
        found.extend((rel_folder / f).as_posix() for f in files if not f.startswith("."))
    return sorted(found)


def read_file(path: Path, rel: str, *, on_problem: ProblemHandler, keep: Keep = keep_all) -> Iterator[Article]:
    """Read one archive file; ``rel`` is its path relative to the archive root (it makes the ids).

    ``keep`` says which versions of a page or an agency item to read (default: all of them).
    """
    where = str(path)
    suffix = path.suffix.lower()
    binary = is_warc(path.name) or suffix in HTML_SUFFIXES or suffix in XML_SUFFIXES
    parse = _PARSERS.get(suffix)
    if parse is None and not binary:
        on_problem(Problem(where, None, f"unsupported file type {suffix}"))
        return
    if not path.is_file():  # a FIFO or a dangling link: reading could block or fail
        on_problem(Problem(where, None, _not_regular(path)))
        return
    if binary:
        yield from _read_binary(path, rel, on_problem=on_problem, keep=keep)
        return
    try:
        text, warning = decode(path.read_bytes())
    except OSError as exc:
        on_problem(Problem(where, None, f"cannot read: {exc.strerror or exc}"))
        return
    except _Skip as exc:
        on_problem(Problem(where, None, str(exc)))
        return
    if warning:
        on_problem(Problem(where, None, warning, skipped=False))
    if suffix == ".json" and is_digitalwires(text[:_SNIFF_JSON]):
        yield from _guarded(parse_digitalwires(text, rel=rel, path=where, keep=keep), where, on_problem)
        return
    found = False
    try:
        for item in parse(text, rel=rel, path=where):  # type: ignore[misc]
            found = True
            if isinstance(item, Problem):
                on_problem(item)
            else:
                yield item
    except Exception as exc:  # a parser bug must cost one file, never the whole run
        logger.warning("%s: cannot parse", where, exc_info=True)
        on_problem(Problem(where, None, f"cannot parse: {type(exc).__name__}: {exc}"))
        return
    if not found:
        on_problem(Problem(where, None, "no articles in the file"))


def _read_binary(path: Path, rel: str, *, on_problem: ProblemHandler, keep: Keep) -> Iterator[Article]:
    """A web page, web archive or NewsML/NITF file: each reader decodes its bytes itself."""
    where = str(path)
    if is_warc(path.name):
        yield from _guarded(read_warc(path, rel, keep=keep), where, on_problem)
        return
    try:
        data = path.read_bytes()
        mtime = path.stat().st_mtime
    except OSError as exc:
        on_problem(Problem(where, None, f"cannot read: {exc.strerror or exc}"))
        return
    if not data.strip():
        on_problem(Problem(where, None, "empty file"))
        return
    if path.suffix.lower() in XML_SUFFIXES:
        yield from _guarded(parse_newsml(data, rel=rel, path=where, keep=keep), where, on_problem)
        return
    if b"\x00" in data[:_SAMPLE] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        on_problem(Problem(where, None, "binary file"))
        return
    # The page's own date first; then the file's name; its mtime only as the last resort.
    fallback = date_from_name(rel) or datetime.fromtimestamp(mtime, UTC).date().isoformat()
    if not keep(page_id(data, url=None, rel=rel), Version(0, mtime), where):
        return
    yield from _guarded(parse_html(data, rel=rel, path=where, fallback_date=fallback), where, on_problem)


def _guarded(items: Parsed, where: str, on_problem: ProblemHandler) -> Iterator[Article]:
    """The articles of ``items``, its problems to ``on_problem``; a reader's bug costs its file, not the run."""
    try:
        for item in items:
            if isinstance(item, Problem):
                on_problem(item)
            else:
                yield item
    except Exception as exc:
        logger.warning("%s: cannot parse", where, exc_info=True)
        on_problem(Problem(where, None, f"cannot parse: {type(exc).__name__}: {exc}"))


def _not_regular(path: Path) -> str:
    """Why ``path`` (not a regular file) is not read."""
    if not path.is_symlink():
        return "not a regular file"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "link loop: the link points (through other links) back at itself"
        return f"broken link: {exc.strerror}"
    return "link to something that is not a regular file"


def decode(data: bytes) -> tuple[str, str | None]:
    """Bytes to text and an optional warning; ValueError("binary file" or "empty file") otherwise.

    UTF-8 (a BOM is dropped) or UTF-16/32 with a BOM. Bytes that are not UTF-8 are old
    Windows or Latin-1 export: each is read as cp1252 (it has the € and the curly quotes
    latin-1 lacks) or, for the five bytes cp1252 leaves undefined, as latin-1. That also
    rescues a UTF-8 file with a few such bytes pasted in. A few stray NUL bytes are removed;
    more than a few NUL or other control characters mean binary.
    """
    warnings: list[str] = []
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        text = data.decode("utf-32")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")  # its NUL bytes are not a sign of binary
    else:
        text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
        bad = _ESCAPED_BYTE.findall(text)
        if bad:
            mixed = _UTF8_NON_ASCII.search(text) is not None
            text = _ESCAPED_BYTE.sub(_byte_as_cp1252, text)
            encoding = "latin-1" if any(ord(c) - 0xDC00 in _NOT_CP1252 for c in bad) else "cp1252"
            if mixed:
                warnings.append(f"mixed encodings: {_count(len(bad), 'byte')} not valid UTF-8, read as {encoding}")
            else:
                warnings.append(f"not valid UTF-8; read as {encoding}")
    # Text has next to no C0 control characters but tab and newline; binary data (read as
    # cp1252, most bytes are printable) has one in nine. C1 controls come from latin-1 text too.
    sample = text[:_SAMPLE]
    c0 = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\f")
    c1 = sum(1 for ch in sample if "\x7f" <= ch <= "\x9f")
    if c0 > 0.02 * len(sample) or c0 + c1 > 0.1 * len(sample):
        raise _Skip("binary file")
    nuls = text.count("\x00")
    if nuls:
        text = text.replace("\x00", "")
        warnings.append(f"removed {_count(nuls, 'NUL byte')}")
    if not text.strip():
        raise _Skip("empty file")
    return text, "; ".join(warnings) or None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _byte_as_cp1252(m: re.Match[str]) -> str:
    byte = ord(m.group()) - 0xDC00
    return chr(byte) if byte in _NOT_CP1252 else bytes([byte]).decode("cp1252")
