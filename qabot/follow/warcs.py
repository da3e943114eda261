"""The archive as the record: what a round fetched, as one ``.warc.gz`` file per round.

``ARCHIVE/follow/2026-12-05T10-00-00Z.warc.gz`` holds a ``warcinfo`` record and one
``response`` record per archived page (WARC-Target-URI, WARC-Date with microseconds, the
HTTP status line and headers, the decoded body), which ``qabot index`` reads like any WARC
file: every HTML 200 response an article, the newest capture of a URL winning. Any index can
be rebuilt from the archive alone.

Crash safety. Records are appended to a hidden part file (``follow/.NAME.part``, which the
archive reader skips); each record is flushed and fsync'ed, then the page's state transaction
records the part file's committed length (:meth:`State.page_archived`). At the end of the
round the part is renamed to its final name. A follower killed at any point leaves at most
one record beyond the committed length: :func:`recover`, run when the next follower starts,
cuts it off and publishes what was committed, so nothing committed is lost and nothing is
archived twice (the page whose record was cut is fetched again, as its state never changed).
"""

from __future__ import annotations

import io
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from qabot.follow.fetcher import Fetched
from qabot.follow.state import State
from qabot.store.files import fsync_path

log = logging.getLogger(__name__)

FOLLOW_DIR = "follow"
# hop-by-hop and encoding headers describe the transfer, not the body stored (decoded, whole)
_DROPPED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length", "connection", "keep-alive"})


def warc_date(when: datetime) -> str:
    """WARC/1.1 date with microseconds, always six digits, so two captures a second apart (or less)
    still order by date, and the strings sort as the dates do."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")


def response_record_bytes(fetched: Fetched, when: datetime, *, writer_factory: type[WARCWriter] = WARCWriter) -> bytes:
    """One gzip member holding the page's ``response`` record (pure: bytes out)."""
    buffer = io.BytesIO()
    writer = writer_factory(buffer, gzip=True, warc_version="1.1")
    headers = [(name.title(), value) for name, value in fetched.headers.items() if name not in _DROPPED_HEADERS]
    headers.append(("Content-Length", str(len(fetched.body))))
    record = writer.create_warc_record(
        fetched.final_url, "response", payload=io.BytesIO(fetched.body),
        http_headers=StatusAndHeaders(f"{fetched.status} OK", headers, protocol="HTTP/1.1"),
        warc_headers_dict={"WARC-Date": warc_date(when)},
    )
    writer.write_record(record)
    return buffer.getvalue()


def warcinfo_bytes(when: datetime, filename: str, software: str) -> bytes:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True, warc_version="1.1")
    record = writer.create_warcinfo_record(filename, {"software": software, "format": "WARC File Format 1.1",
                                                      "description": "pages fetched by one round of qabot follow"})
    record.rec_headers.replace_header("WARC-Date", warc_date(when))
    writer.write_record(record)
    return buffer.getvalue()


class RoundWarc:
    """The WARC file of one round; created with the first record, published by :meth:`finish`."""

    def __init__(self, archive: Path, state: State, *, started: datetime, software: str) -> None:
        self.archive, self.state, self.software = Path(archive), state, software
        folder = self.archive / FOLLOW_DIR
        stamp = file_stamp(started)
        name, n = f"{stamp}.warc.gz", 1
        while (folder / name).exists() or (folder / f".{name}.part").exists():
            n += 1
            name = f"{stamp}-{n}.warc.gz"
        self.final = folder / name
        self.part = folder / f".{name}.part"
        self.started = started
        self.records = 0
        self._file: io.BufferedWriter | None = None

    @property
    def part_key(self) -> str:
        """The part file as the state names it: relative to the archive (it may be moved whole)."""
        return str(self.part.relative_to(self.archive))

    def append(self, fetched: Fetched, when: datetime) -> int:
        """Write the page's record, durably; returns the committed length to record in the state."""
        if self._file is None:
            self.part.parent.mkdir(parents=True, exist_ok=True)
            self.state.begin_part(self.part_key, str(self.final.relative_to(self.archive)))
            self._file = open(self.part, "wb")  # noqa: SIM115 - kept open for the round, closed in finish()
            self._write(warcinfo_bytes(self.started, self.final.name, self.software))
        size = self._write(response_record_bytes(fetched, when))
        self.records += 1
        return size

    def _write(self, data: bytes) -> int:
        assert self._file is not None
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def finish(self) -> Path | None:
        """Publish the part file under its final name (None when nothing was written)."""
        if self._file is None:
            return None
        self._file.close()
        self._file = None
        os.replace(self.part, self.final)
        fsync_path(self.final.parent)
        self.state.end_part(self.part_key)
        return self.final


def recover(archive: Path, state: State) -> list[Path]:
    """Finish the part files a killed follower left: cut each at its committed length and publish
    it (or remove it when nothing in it was committed). Returns the files published."""
    published = []
    for part_key, final_key, committed in state.pending_parts():
        part, final = Path(archive) / part_key, Path(archive) / final_key
        if part.exists():
            if committed > 0:
                with open(part, "r+b") as handle:
                    handle.truncate(committed)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(part, final)
                fsync_path(final.parent)
                published.append(final)
                log.warning("published %s, the WARC file of an interrupted round (%d bytes committed)", final, committed)
            else:
                part.unlink()
        state.end_part(part_key)
    # a part file the state does not know (killed between creating it and recording it) holds
    # nothing committed
    folder = Path(archive) / FOLLOW_DIR
    known = {p for p, _, _ in state.pending_parts()}
    for stray in folder.glob(".*.part") if folder.is_dir() else ():
        if str(stray.relative_to(archive)) not in known:
            stray.unlink()
    return published


__all__ = ["FOLLOW_DIR", "RoundWarc", "file_stamp", "recover", "response_record_bytes", "warc_date", "warcinfo_bytes"]
