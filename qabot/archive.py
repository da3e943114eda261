"""Read an archive of news articles: a folder (read recursively) or one file.

Formats, chosen by file extension:

``.txt`` or no extension   the seed format: `` date YYYY-MM-DD `` then the body; one article
``.jsonl`` / ``.ndjson``    one JSON object a line: id, title, date, url, source, text (text required)
``.csv`` / ``.tsv``         a header naming the same columns (aliases such as body, headline,
                            link, published are understood), or the headerless 10kGNAD layout
                            ``label;'text'`` (the label is a category, not a source: it is dropped)

Nothing here stops at a bad input: each problem goes to ``on_problem`` (logged by default)
and reading goes on. The parsers (``parse_*``) are pure functions of the decoded text; only
:func:`iter_articles` and :func:`read_file` touch the disk.
"""

from __future__ import annotations

import _csv
import codecs
import csv
import html
import io
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from qabot.documents import Article, Problem
from qabot.errors import ArchiveError
from qabot.sentences import split_sentences

__all__ = [
    "decode",
    "iter_articles",
    "normalise_text",
    "parse_csv",
    "parse_date",
    "parse_jsonl",
    "parse_seed",
    "read_file",
    "title_from_text",
]

logger = logging.getLogger(__name__)

SEED_SUFFIXES = frozenset({".txt", ""})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
CSV_SUFFIXES = frozenset({".csv", ".tsv"})
TITLE_MAX = 90

ProblemHandler = Callable[[Problem], None]
Parsed = Iterator[Article | Problem]

_SEED_DATE = re.compile(r"\A\s*date[ \t]+(\S+)(?:[ \t]+|\n|\Z)", re.IGNORECASE)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Only known element names count as markup, so that "x<y and z>w" in plain text survives.
_TAG = re.compile(
    r"<!--.*?-->|</?(?:a|abbr|article|b|blockquote|body|br|cite|code|div|em|figcaption|figure|"
    r"footer|h[1-6]|head|header|hr|html|i|iframe|img|li|link|meta|nav|noscript|ol|p|pre|q|"
    r"script|section|small|span|strong|style|sub|sup|table|tbody|td|th|thead|time|title|tr|"
    r"u|ul)\b[^<>]*>",
    re.DOTALL | re.IGNORECASE,
)
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
_DROP_ELEMENTS = re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_BLOCK_END = re.compile(r"</(?:p|div|h[1-6]|li|blockquote|tr|table|ul|ol)\s*>", re.IGNORECASE)
_LINE_BREAK = re.compile(r"<br\b[^<>]*>", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n{3,}")
_LABEL = re.compile(r"[^\W\d][\w-]{0,39}")  # a 10kGNAD category such as "Wirtschaft"

# Column names (lower-cased) understood in JSONL keys and CSV headers, and what they mean.
_FIELDS = {
    "id": "id", "guid": "id",
    "text": "text", "body": "text", "content": "text", "article": "text",
    "title": "title", "headline": "title",
    "date": "date", "published": "date", "published_at": "date", "pubdate": "date",
    "url": "url", "link": "url",
    "source": "source", "publisher": "source",
}  # fmt: skip


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
        yield from read_file(root, root.name, on_problem=report)
        return
    if not root.is_dir():
        raise ArchiveError(str(root), "not a file or folder" if root.exists() else "no such file or folder")
    for rel in _walk(root, report):
        yield from read_file(root / rel, rel, on_problem=report)


def _log_problem(problem: Problem) -> None:
    logger.warning("%s", problem)


def _walk(root: Path, report: ProblemHandler) -> list[str]:
    """Relative posix paths of the visible files under ``root``, sorted so ids and order are stable."""

    def unreadable(exc: OSError) -> None:
        report(Problem(str(exc.filename), None, f"cannot read folder: {exc.strerror}"))

    found: list[str] = []
    for folder, dirs, files in os.walk(root, onerror=unreadable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_folder = Path(folder).relative_to(root)
        found.extend((rel_folder / f).as_posix() for f in files if not f.startswith("."))
    return sorted(found)


def read_file(path: Path, rel: str, *, on_problem: ProblemHandler) -> Iterator[Article]:
    """Read one archive file; ``rel`` is its path relative to the archive root (it makes the ids)."""
    where = str(path)
    suffix = path.suffix.lower()
    parse = _PARSERS.get(suffix)
    if parse is None:
        on_problem(Problem(where, None, f"unsupported file type {suffix}"))
        return
    if not path.is_file():  # a FIFO or a dangling link: reading could block or fail
        on_problem(Problem(where, None, "not a regular file"))
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
    for item in parse(text, rel=rel, path=where):
        if isinstance(item, Problem):
            on_problem(item)
        else:
            yield item


def decode(data: bytes) -> tuple[str, str | None]:
    """Bytes to text and an optional warning; ValueError("binary file" or "empty file") otherwise.

    UTF-8 (a BOM is dropped) first; text that is not valid UTF-8 is old Windows or Latin-1
    export, so cp1252 is tried next (it has the curly quotes latin-1 lacks), then latin-1.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text, warning = data.decode("utf-16"), None  # its NUL bytes are not a sign of binary
    elif b"\x00" in data[:8192]:
        raise _Skip("binary file")
    else:
        try:
            text, warning = data.decode("utf-8-sig"), None
        except UnicodeDecodeError:
            try:
                text, warning = data.decode("cp1252"), "not valid UTF-8; read as cp1252"
            except UnicodeDecodeError:
                text, warning = data.decode("latin-1"), "not valid UTF-8; read as latin-1"
        # Text that decodes but is mostly control characters is binary all the same.
        sample = text[:8192]
        controls = sum(1 for ch in sample if (ch < " " and ch not in "\t\n\r\f") or "\x7f" <= ch <= "\x9f")
        if controls > 0.1 * len(sample):
            raise _Skip("binary file")
    if not text.strip():
        raise _Skip("empty file")
    return text, warning


def normalise_text(text: str) -> str:
    """The text as articles store it: ``\\n`` newlines, no trailing spaces, one blank line between paragraphs.

    HTML markup, when there is any, is reduced to its text first (tags stripped, entities
    unescaped). This runs before an Article is built, because chunk offsets point into it.
    """
    # NFC: decomposed accents ("e" + U+0301) tokenize differently from composed ones.
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    is_html = bool(_TAG.search(text))
    if is_html:
        # In HTML, newlines and runs of spaces mean one space; paragraphs come from the tags.
        text = " ".join(text.split())
        text = _DROP_ELEMENTS.sub("", text)
        text = _LINE_BREAK.sub("\n", _BLOCK_END.sub("\n\n", text))
        text = _TAG.sub("", text)
    if _ENTITY.search(text):
        text = html.unescape(text)
    lines = text.split("\n")
    text = "\n".join(line.strip() if is_html else line.rstrip() for line in lines)
    return _BLANK_LINES.sub("\n\n", text).strip()


def title_from_text(text: str) -> str:
    """A title for an article without one: its first sentence, cut at a word to at most 90 characters."""
    sentences = split_sentences(text)
    first = " ".join((sentences[0].text if sentences else text).split())
    if len(first) <= TITLE_MAX:
        return first
    cut = first[: TITLE_MAX - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-–") + "…"


def parse_date(value: str) -> str:
    """``YYYY-MM-DD`` from a date or an ISO datetime (its date part, as written).

    Raises ValueError whose message is the Problem reason: a malformed or an impossible date.
    """
    value = value.strip()
    try:
        if _ISO_DATE.fullmatch(value):
            return date.fromisoformat(value).isoformat()
        if _ISO_DATE.match(value) and len(value) > 10 and value[10] in "T ":
            return datetime.fromisoformat(value).date().isoformat()
    except ValueError as exc:  # the shape is right, the numbers are not: 2025-13-45
        raise ValueError(f"impossible date {value!r}: {exc}") from None
    raise ValueError(f"malformed date {value!r} (want YYYY-MM-DD)")


def parse_seed(content: str, *, rel: str, path: str = "") -> Parsed:
    """The seed format: one article, `` date YYYY-MM-DD `` then the body (same line or next).

    The id is ``rel`` without its extension, so it stays the same from run to run.
    """
    path = path or rel
    content = content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    m = _SEED_DATE.match(content)
    if not m:
        yield Problem(path, 1, "no ' date YYYY-MM-DD ' line at the start")
        return
    try:
        when = parse_date(m.group(1))
    except ValueError as exc:
        yield Problem(path, 1, str(exc))
        return
    text = normalise_text(content[m.end() :])
    if not text:
        yield Problem(path, 1, "no text after the date line")
        return
    article_id = PurePosixPath(rel).with_suffix("").as_posix()
    yield Article(id=article_id, text=text, title=title_from_text(text), date=when, path=path)


def parse_jsonl(content: str, *, rel: str, path: str = "") -> Parsed:
    """JSON Lines: one object a line; a bad line is a Problem with its line number."""
    path = path or rel
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends unescaped.
    content = content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    for number, line in enumerate(content.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Problem(path, number, f"bad JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(record, dict):
            yield Problem(path, number, f"not a JSON object but {type(record).__name__}")
            continue
        yield _record_to_article(record, rel=rel, path=path, line=number)


def parse_csv(content: str, *, rel: str, path: str = "") -> Parsed:
    """CSV/TSV with a header row, or the headerless 10kGNAD ``label;'text'`` layout.

    The delimiter (``,`` ``;`` or tab) and quote character are sniffed. Line numbers are
    physical lines where a row starts (a quoted field may span lines).
    """
    path = path or rel
    content = content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # One article can be longer than csv's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))
    for dialect in _dialects(content, rel):
        header = next(_reader(content, dialect), [])
        if "text" in (_FIELDS.get(name.strip().lower()) for name in header):
            for number, row in _rows(content, dialect, path, skip_first=True):
                if isinstance(row, Problem):
                    yield row
                elif len(row) != len(header):
                    yield Problem(path, number, f"expected {len(header)} columns, got {len(row)}")
                else:
                    yield _record_to_article(dict(zip(header, row)), rel=rel, path=path, line=number)
            return
    gnad = (";", "'")
    first = next(_reader(content, gnad), [])
    if len(first) != 2 or not _LABEL.fullmatch(first[0].strip()):
        yield Problem(path, 1, "no header naming a text column (text, body, content) and not label;text rows")
        return
    for number, row in _rows(content, gnad, path, skip_first=False):
        if isinstance(row, Problem):
            yield row
        elif len(row) != 2:
            yield Problem(path, number, f"expected 2 columns (label;text), got {len(row)}")
        else:
            yield _record_to_article({"text": row[1]}, rel=rel, path=path, line=number)


def _dialects(content: str, rel: str) -> list[tuple[str, str]]:
    """Candidate (delimiter, quote char) pairs for a headed file: the sniffed one, then a guess."""
    first_line = content.split("\n", 1)[0]
    guess = "\t" if rel.lower().endswith(".tsv") else max(",;\t", key=first_line.count)
    found = [(guess, '"')]
    try:
        sniffed = csv.Sniffer().sniff(content[:8192], delimiters=",;\t")
        found.insert(0, (sniffed.delimiter, sniffed.quotechar or '"'))
    except csv.Error:
        pass  # the sniffer gives up on prose-heavy samples; the guess remains
    return found


def _reader(content: str, dialect: tuple[str, str]) -> _csv.Reader:
    delimiter, quotechar = dialect
    return csv.reader(io.StringIO(content), delimiter=delimiter, quotechar=quotechar)


def _rows(
    content: str, dialect: tuple[str, str], path: str, *, skip_first: bool
) -> Iterator[tuple[int, list[str] | Problem]]:
    """(start line, row) pairs, or (line, Problem) for a row the csv module rejects."""
    reader = _reader(content, dialect)
    line = 0  # physical lines consumed so far; the next row starts on line + 1
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num == line:
                return  # no progress: give up rather than loop
            yield start, Problem(path, start, f"bad CSV row: {exc}")
            line = reader.line_num
            continue
        line = reader.line_num
        if skip_first:
            skip_first = False
        elif row and any(cell.strip() for cell in row):
            yield start, row


def _record_to_article(record: dict[str, Any], *, rel: str, path: str, line: int) -> Article | Problem:
    """An Article from a JSONL object or CSV row; keys are mapped through ``_FIELDS`` (first non-empty wins)."""
    fields: dict[str, Any] = {}
    for key, value in record.items():
        name = _FIELDS.get(str(key).strip().lower())
        if name and name not in fields and value is not None and str(value).strip():
            fields[name] = value
    raw_text = fields.get("text")
    if raw_text is not None and not isinstance(raw_text, str):
        return Problem(path, line, f"'text' is not a string but {type(raw_text).__name__}")
    text = normalise_text(raw_text) if raw_text else ""
    if not text:
        return Problem(path, line, "missing or empty 'text'")
    when = None
    if "date" in fields:
        try:
            when = parse_date(str(fields["date"]))
        except ValueError as exc:
            return Problem(path, line, str(exc))
    url = _one_line(fields.get("url"))
    title = _one_line(normalise_text(str(fields["title"]))) if "title" in fields else None
    return Article(
        id=_one_line(fields.get("id")) or url or f"{rel}:{line}",
        text=text,
        title=title or title_from_text(text),
        date=when,
        url=url,
        source=_one_line(fields.get("source")),
        path=path,
        line=line,
    )


def _one_line(value: Any) -> str | None:
    """A metadata value as one trimmed line, or None when empty."""
    if value is None:
        return None
    return " ".join(str(value).split()) or None


# The parser for each file extension; each takes (content, *, rel, path). Defined last
# because it names the parsers above.
_PARSERS: dict[str, Callable[..., Parsed]] = {
    **dict.fromkeys(SEED_SUFFIXES, parse_seed),
    **dict.fromkeys(JSONL_SUFFIXES, parse_jsonl),
    **dict.fromkeys(CSV_SUFFIXES, parse_csv),
}
