"""Web archives (``.warc``, ``.warc.gz``): every HTML page a server answered 200 is an article.

warcio reads the records. A ``response`` record whose HTTP status is 200 and whose payload is
HTML becomes an article through :mod:`qabot.ingest.web` (its ``WARC-Target-URI`` is the page's
URL; the page's canonical link, when it names one, the id); its ``WARC-Date`` is the capture's
version, so the newest capture of a URL wins (:mod:`qabot.ingest.versions`), and the date when
the page shows none. Other records (requests, ``revisit`` records, metadata, a 404, a PDF) are
not articles and are passed over silently: a crawl is full of them.

Problems name the file and the record (its 1-based number, in ``line`` and in the reason): a
record whose header is not WARC (reading goes on at the next record: the next gzip member of
a ``.warc.gz``, the next ``WARC/1.x`` line of a ``.warc``), a file that ends inside a record
(a truncated download), a response without a target URI, a page without article text.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from qabot.documents import Article, Problem
from qabot.ingest.versions import Keep, Version, timestamp
from qabot.ingest.web import page_id, parse_html

__all__ = ["MAX_PAGE_BYTES", "is_warc", "read_warc"]

logger = logging.getLogger(__name__)

MAX_PAGE_BYTES = 20_000_000  # trafilatura's own limit for a page; bigger payloads are not articles
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_GZIP_MEMBER = re.compile(rb"\x1f\x8b\x08")
_WARC_LINE = re.compile(rb"(?:^|\n)WARC/1\.\d\r?\n")
_RESYNC_WINDOW = 1 << 20  # bytes read at a time while looking for the next record


def is_warc(name: str) -> bool:
    """Is a file of this name a web archive (``.warc`` or ``.warc.gz``, any case)?"""
    return name.lower().endswith((".warc", ".warc.gz"))


def read_warc(path: Path, rel: str, *, keep: Keep) -> Iterator[Article | Problem]:
    """The articles (and problems) of one web archive, in record order; ``keep`` picks the versions read."""
    where = str(path)
    gzipped = where.lower().endswith(".gz")
    with path.open("rb") as stream:
        number = 0
        start = 0  # where the current ArchiveIterator started (after a bad record: the next one)
        while True:
            records = ArchiveIterator(stream, check_digests=False)
            walk = iter(records)
            while True:
                step = _next(walk, records, number + 1, where)
                if step is None:  # the end of the file
                    if number == 0 and start == 0:
                        yield Problem(where, None, "no WARC records in the file")
                    return
                number += 1
                if isinstance(step, tuple) and isinstance(step[0], Problem):
                    problem, resync = step
                    yield problem
                    if not resync:
                        return  # truncated: nothing after it can be trusted
                    # warcio's offset is the file position of the record it failed on, or 0 before its first
                    bad_at = max(records.offset or 0, start)
                    resume = _next_record(stream, bad_at + 1, gzipped=gzipped)
                    if resume is None:  # no record after it: the bad one was the last
                        return
                    stream.seek(resume)
                    start = resume
                    break
                record, data, warnings = step
                for warning in warnings:
                    yield Problem(where, number, f"record {number}: {warning}", skipped=False)
                yield from _record(record, data, number, where=where, rel=rel, keep=keep)


def _next(walk: Iterator[object], records: ArchiveIterator, number: int,
          where: str) -> tuple[object, bytes | None, list[str]] | tuple[Problem, bool] | None:
    """The next record read to its end, with its payload (HTML 200 responses only) and warcio's warnings;
    (a Problem, whether to go on at the next record) for a bad record or a truncated one; None at the end."""
    noise = io.StringIO()
    try:
        with contextlib.redirect_stderr(noise):  # warcio prints what it finds wrong to stderr; it goes into the report
            try:
                record = next(walk)
            except StopIteration:
                return None
            data = _payload(record)
            records.get_record_length()  # reads to the end of the record
            raw = record.raw_stream  # type: ignore[attr-defined]
            decompressor = records.reader.decompressor if records.reader is not None else None
            if getattr(raw, "limit", 0) > 0 or (decompressor is not None and not getattr(decompressor, "eof", True)):
                return Problem(where, number, f"record {number}: the file ends inside it (truncated)"), False
    except ArchiveLoadFailed as exc:
        return Problem(where, number, f"record {number}: bad WARC record header ({_short(exc)})"), True
    except Exception as exc:  # a header warcio chokes on (no target URI), zlib.error from damaged gzip data
        logger.debug("%s: record %d: cannot read", where, number, exc_info=True)
        return Problem(where, number, f"record {number}: bad WARC record ({type(exc).__name__}: {_short(exc)})"), True
    warnings = [f"warcio: {_short(Exception(line))}" for line in noise.getvalue().split("\n") if line.strip().startswith("WARNING")]
    return record, data, warnings


def _payload(record: object) -> bytes | None:
    """The HTTP payload of a 200 HTML response (up to one byte over the limit); None for any other record."""
    if record.rec_type != "response":  # type: ignore[attr-defined]
        return None
    http = record.http_headers  # type: ignore[attr-defined]
    if http is None or http.get_statuscode() != "200":
        return None
    content_type = http.get_header("Content-Type") or ""
    if content_type and not content_type.split(";")[0].strip().lower().startswith(_HTML_TYPES):
        return None
    return record.content_stream().read(MAX_PAGE_BYTES + 1)  # type: ignore[attr-defined]


def _record(record: object, data: bytes | None, number: int, *, where: str, rel: str, keep: Keep) -> Iterator[Article | Problem]:
    """The article of one record, if it is an HTML page answered 200 and the version to read."""
    if data is None:
        return  # not a response, not 200, not HTML: not an article, and not a problem
    headers = record.rec_headers  # type: ignore[attr-defined]
    content_type = record.http_headers.get_header("Content-Type") or ""  # type: ignore[attr-defined]
    uri = (headers.get_header("WARC-Target-URI") or "").strip().strip("<>")
    if not uri:
        yield Problem(where, number, f"record {number}: a response without WARC-Target-URI")
        return
    if len(data) > MAX_PAGE_BYTES:
        yield Problem(where, number, f"record {number}: page over {MAX_PAGE_BYTES // 1_000_000} MB, not read")
        return
    if not content_type and b"<html" not in data[:4096].lower():
        return  # no Content-Type, and it does not look like HTML
    captured = headers.get_header("WARC-Date")
    when = timestamp(captured)
    version = Version(0, when or 0.0)
    if not keep(page_id(data, url=uri, rel=rel, content_type=content_type), version, f"{where}:{number}"):
        return
    yield from parse_html(data, rel=rel, path=where, line=number, url=uri, content_type=content_type,
                          fallback_date=captured[:10] if when is not None and captured else None)


def _next_record(stream: BinaryIO, offset: int, *, gzipped: bool) -> int | None:
    """The offset of the next record at or after ``offset`` (a gzip member, or a ``WARC/1.x`` line)."""
    pattern = _GZIP_MEMBER if gzipped else _WARC_LINE
    while True:
        stream.seek(offset)
        window = stream.read(_RESYNC_WINDOW + 16)
        if not window:
            return None
        if m := pattern.search(window):
            return offset + m.start() + (1 if m.group().startswith(b"\n") else 0)
        if len(window) <= 16:
            return None
        offset += _RESYNC_WINDOW


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]
