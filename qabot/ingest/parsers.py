"""The archive formats, parsed from decoded text; pure functions (no I/O).

Each parser takes ``(content, *, rel, path)`` and yields Articles and Problems in file order:
``rel`` (the path relative to the archive root) makes the ids, ``path`` names the file in
Problems. A Problem with ``skipped=False`` is a warning about an article that was still read.
:mod:`qabot.ingest.archive` picks the parser by file extension.
"""

from __future__ import annotations

import _csv
import csv
import email.utils
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from qabot.documents import Article, Problem
from qabot.ingest.cleaning import (
    TITLE_LIMIT,
    normalise_text,
    one_line,
    shorten,
    title_from_text,
)

__all__ = ["parse_csv", "parse_date", "parse_jsonl", "parse_seed"]

Parsed = Iterator[Article | Problem]

_SEED_DATE = re.compile(r"\A\s*date[ \t]+(\S+)(?:[ \t]+|\n|\Z)", re.IGNORECASE)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC_2822 = re.compile(r"(?:[A-Za-z]{3}, *)?\d{1,2} [A-Za-z]{3} \d{4}\b.*")  # RSS: "Fri, 15 Aug 2025 10:00:00 +0200"
_LABEL = re.compile(r"[^\W\d][\w-]{0,39}")  # a 10kGNAD category such as "Wirtschaft"
_WORDY = re.compile(r"[^\W_]")  # a letter or digit: text without one has nothing to find
_PRETTY_START = frozenset({"[", "{", "[{"})  # the first line of a pretty-printed JSON document

# Column names (lower-cased) understood in JSONL keys and CSV headers, and what they mean.
_FIELDS = {
    "id": "id", "guid": "id",
    "text": "text", "body": "text", "content": "text", "article": "text",
    "title": "title", "headline": "title",
    "date": "date", "published": "date", "published_at": "date", "pubdate": "date",
    "url": "url", "link": "url",
    "source": "source", "publisher": "source",
}  # fmt: skip


def parse_date(value: str) -> str:
    """``YYYY-MM-DD`` from a date, an ISO datetime or an RFC 2822 date (its date part, as written).

    Raises ValueError whose message is the Problem reason: a malformed or an impossible date.
    """
    value = value.strip()
    try:
        if _ISO_DATE.fullmatch(value):
            return date.fromisoformat(value).isoformat()
        if _ISO_DATE.match(value) and len(value) > 10 and value[10] in "T ":
            return datetime.fromisoformat(value).date().isoformat()
        if _RFC_2822.fullmatch(value):
            return email.utils.parsedate_to_datetime(value).date().isoformat()
    except (ValueError, TypeError) as exc:  # the shape is right, the numbers are not: 2025-13-45
        raise ValueError(f"impossible date {value!r}: {exc}") from None
    raise ValueError(f"malformed date {value!r} (want YYYY-MM-DD)")


def _future(when: str | None, path: str, line: int | None) -> Iterator[Problem]:
    """A warning for a date after tomorrow (a day of slack for time zones): likely a typo."""
    if when is not None and date.fromisoformat(when) > date.today() + timedelta(days=1):
        yield Problem(path, line, f"date {when} is in the future", skipped=False)


def _newlines(content: str) -> str:
    return content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def parse_seed(content: str, *, rel: str, path: str = "") -> Parsed:
    """The seed format: one article, `` date YYYY-MM-DD `` then the body (same line or next).

    The id is ``rel`` without its extension, so it stays the same from run to run.
    """
    path = path or rel
    content = _newlines(content)
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
    if not _WORDY.search(text):
        yield Problem(path, 1, "no words in the text (no letter or digit)")
        return
    yield from _future(when, path, 1)
    article_id = PurePosixPath(rel).with_suffix("").as_posix()
    yield Article(id=article_id, text=text, title=title_from_text(text), date=when, path=path)


# --- JSON Lines (and JSON documents) -----------------------------------------------------------


def parse_jsonl(content: str, *, rel: str, path: str = "") -> Parsed:
    """JSON Lines: one object a line; a bad line is a Problem with its line number.

    A JSON document is read too: an array of objects, or objects pretty-printed over several
    lines; each record's line is where it starts. Ids default to ``rel:line``.
    """
    path = path or rel
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends unescaped.
    content = _newlines(content)
    items = _json_document(content, path)
    if items is None:
        items = _json_lines(content, path)
    per_line = Counter(line for line, record in items if not isinstance(record, Problem))
    seen: Counter[int] = Counter()
    for line, record in items:
        if isinstance(record, Problem):
            yield record
        elif not isinstance(record, dict):
            yield Problem(path, line, f"not a JSON object but {type(record).__name__}")
        else:
            seen[line] += 1
            fallback = f"{rel}:{line}" if per_line[line] == 1 else f"{rel}:{line}:{seen[line]}"
            yield from _record_to_article(record, path=path, line=line, fallback_id=fallback)


Items = list[tuple[int, Any]]


def _json_lines(content: str, path: str) -> Items:
    items: Items = []
    for number, line in enumerate(content.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            # strict=False: a raw tab or other control character inside a string is no reason to lose an article.
            items.append((number, json.loads(line, strict=False)))
        except json.JSONDecodeError as exc:
            items.append((number, Problem(path, number, f"bad JSON: {exc.msg} (column {exc.colno})")))
        except RecursionError:
            items.append((number, Problem(path, number, "bad JSON: nested too deeply")))
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            items.append((number, Problem(path, number, f"bad JSON: {exc}")))
    return items


def _json_document(content: str, path: str) -> Items | None:
    """The records of ``content`` read as JSON values one after another, or None to read it line by line.

    One top-level array holds the records; several top-level values are the records. A
    document that does not parse is None (then each line is tried on its own), except one
    that is plainly pretty-printed JSON: its error is one Problem, not one for every line.
    """
    decoder = json.JSONDecoder()
    values: list[tuple[int, Any]] = []
    i = _skip_space(content, 0)
    try:
        while i < len(content):
            value, end = decoder.raw_decode(content, i)
            values.append((i, value))
            i = _skip_space(content, end)
        if len(values) == 1 and isinstance(values[0][1], list):
            values = _array_items(decoder, content, values[0][0])
    except (ValueError, RecursionError) as exc:
        first = content.lstrip().split("\n", 1)[0].strip()
        if first not in _PRETTY_START:
            return None
        if isinstance(exc, json.JSONDecodeError):
            line, reason = exc.lineno, f"bad JSON: {exc.msg}"
        else:
            line, reason = 1, "bad JSON: nested too deeply" if isinstance(exc, RecursionError) else f"bad JSON: {exc}"
        return [(line, Problem(path, line, f"{reason}; nothing in this JSON document was read"))]
    items: Items = []
    line, previous = 1, 0
    for offset, value in values:
        line += content.count("\n", previous, offset)
        previous = offset
        items.append((line, value))
    return items


def _array_items(decoder: json.JSONDecoder, content: str, start: int) -> list[tuple[int, Any]]:
    """(offset, value) of each element of the array at ``content[start]`` (already known to parse)."""
    items: list[tuple[int, Any]] = []
    i = _skip_space(content, start + 1)
    while content[i] != "]":
        value, end = decoder.raw_decode(content, i)
        items.append((i, value))
        i = _skip_space(content, end)
        if content[i] == ",":
            i = _skip_space(content, i + 1)
    return items


def _skip_space(content: str, i: int) -> int:
    while i < len(content) and content[i] in " \t\n":
        i += 1
    return i


# --- CSV / TSV / 10kGNAD -------------------------------------------------------------------------


def parse_csv(content: str, *, rel: str, path: str = "") -> Parsed:
    """CSV/TSV with a header row, or the headerless 10kGNAD ``label;'text'`` layout.

    The delimiter (``,`` ``;`` or tab) and quote character are sniffed. Line numbers are
    physical lines where a row starts (a quoted field may span lines).
    """
    path = path or rel
    content = _newlines(content)
    # One article can be longer than csv's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))
    for dialect in _dialects(content, rel):
        header = _first_row(content, dialect)
        if "text" in (_FIELDS.get(name.strip().lower()) for name in header):
            for number, row in _rows(content, dialect, path, skip_first=True):
                if isinstance(row, Problem):
                    yield row
                elif len(row) != len(header):
                    yield Problem(path, number, f"expected {len(header)} columns, got {len(row)}")
                else:
                    record = dict(zip(header, row))
                    yield from _record_to_article(record, path=path, line=number, fallback_id=f"{rel}:{number}")
            return
    gnad = (";", "'")
    first = _first_row(content, gnad)
    if len(first) != 2 or not _LABEL.fullmatch(first[0].strip()):
        yield Problem(path, 1, "no header naming a text column (text, body, content) and not label;text rows")
        return
    for number, row in _rows(content, gnad, path, skip_first=False):
        if isinstance(row, Problem):
            yield row
        elif len(row) != 2:
            yield Problem(path, number, f"expected 2 columns (label;text), got {len(row)}")
        else:
            yield from _record_to_article({"text": row[1]}, path=path, line=number, fallback_id=f"{rel}:{number}")


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


def _reader(content: str, dialect: tuple[str, str], *, strict: bool = False) -> _csv.Reader:
    delimiter, quotechar = dialect
    return csv.reader(io.StringIO(content), delimiter=delimiter, quotechar=quotechar, strict=strict)


def _first_row(content: str, dialect: tuple[str, str]) -> list[str]:
    try:
        return next(_reader(content, dialect), [])
    except csv.Error:
        return []


def _rows(
    content: str, dialect: tuple[str, str], path: str, *, skip_first: bool
) -> Iterator[tuple[int, list[str] | Problem]]:
    """(start line, row) pairs, or (line, Problem) for a row the csv module rejects.

    A quote that is never closed swallows the following lines (up to the next stray quote,
    or the end of the file) into one field, and the lenient csv module does not complain:
    such a row is reported and reading goes on from its next line.
    """
    offset = 0  # lines of the file before ``content``
    while True:
        reader = _reader(content, dialect)
        line_starts = [0] + [m.end() for m in re.finditer("\n", content)]
        last_line = len(line_starts) - (1 if content.endswith("\n") else 0)
        line = 0  # physical lines consumed so far; the next row starts on line + 1
        restart = None
        while restart is None:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if reader.line_num == line:  # no progress: give up rather than loop
                    yield offset + start, Problem(path, offset + start, f"bad CSV row: {exc}; the rest is not read")
                    return
                yield offset + start, Problem(path, offset + start, f"bad CSV row: {exc}")
                line = reader.line_num
                continue
            line = reader.line_num
            if (line > start or line >= last_line) and _badly_quoted(content, line_starts, start, line, dialect):
                reason = f"unterminated quote: the field would run on to line {offset + line}"
                yield offset + start, Problem(path, offset + start, reason)
                restart = start
            elif skip_first:
                skip_first = False
            elif row and any(cell.strip() for cell in row):
                yield offset + start, row
        if restart >= len(line_starts):
            return
        content = content[line_starts[restart] :]
        offset += restart
        skip_first = False


def _badly_quoted(content: str, line_starts: list[int], start: int, end: int, dialect: tuple[str, str]) -> bool:
    """Is the row on lines ``start``..``end`` a quoted field gone wrong (checked strictly)?

    A row over several lines must parse strictly too; the last row must not end inside a quote.
    """
    text = content[line_starts[start - 1] : line_starts[end] if end < len(line_starts) else len(content)]
    try:
        for _ in _reader(text, dialect, strict=True):
            pass
    except csv.Error as exc:
        return end > start or "unexpected end of data" in str(exc)
    return False


# --- records (a JSON object or a CSV row) to articles ------------------------------------------------


def _record_to_article(record: dict[str, Any], *, path: str, line: int, fallback_id: str) -> Parsed:
    """An Article from a JSONL object or CSV row; keys are mapped through ``_FIELDS`` (first non-empty wins).

    A text that is not a string skips the record; an id, title, URL or source of the wrong
    JSON type (a list, an object, a boolean) is left out with a warning.
    """
    fields: dict[str, Any] = {}
    warnings: list[Problem] = []
    for key, value in record.items():
        name = _FIELDS.get(str(key).strip().lower())
        if not name or name in fields or value is None:
            continue
        if name not in ("text", "date") and isinstance(value, (bool, list, dict)):
            reason = f"ignored {str(key)!r}: not a string but {type(value).__name__}"
            warnings.append(Problem(path, line, reason, skipped=False))
            continue
        if str(value).strip():
            fields[name] = value
    raw_text = fields.get("text")
    if raw_text is not None and not isinstance(raw_text, str):
        yield Problem(path, line, f"'text' is not a string but {type(raw_text).__name__}")
        return
    text = normalise_text(raw_text) if raw_text else ""
    if not text:
        yield Problem(path, line, "missing or empty 'text'")
        return
    if not _WORDY.search(text):
        yield Problem(path, line, "no words in the text (no letter or digit)")
        return
    when = None
    if "date" in fields:
        try:
            when = parse_date(str(fields["date"]))
        except ValueError as exc:
            yield Problem(path, line, str(exc))
            return
    url = one_line(fields.get("url"))
    title = one_line(normalise_text(str(fields["title"]))) if "title" in fields else None
    yield from warnings
    yield from _future(when, path, line)
    yield Article(
        id=one_line(fields.get("id")) or url or fallback_id,
        text=text,
        title=shorten(title, TITLE_LIMIT) if title else title_from_text(text),
        date=when,
        url=url,
        source=one_line(fields.get("source")),
        path=path,
        line=line,
    )
