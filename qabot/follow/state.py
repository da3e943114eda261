"""The follower's memory, kept with the archive: ``.qabot-follow.db`` (SQLite) and a lock file.

What it remembers, per source and per page URL (every link a source lists is recorded, as
*due*, in the same transaction as the source's validators, so a follower killed after reading a
feed but before fetching its pages fetches them next time although the feed then answers 304): the validators (ETag, Last-Modified) for a
conditional GET, the date the source listed it with, the content hash of the archived capture,
failures with the reason and when to try again; per origin: robots.txt and a server's request
to wait (Retry-After); the WARC file of the round in progress and how many of its bytes are
committed; and how many captures were archived and how many of them each index has seen.

Each page is one transaction, committed after its WARC record is on disk (see
:mod:`qabot.follow.warcs`), so a ``kill -9`` loses at most the page in flight, and the record
of a page whose transaction never committed is cut off by the next start: nothing is lost and
nothing archived twice. Both files are hidden (dot names), so the archive reader skips them.
One follower per archive: :func:`follower_lock` (flock, freed by the kernel when the process
dies) refuses a second one with the first one's pid.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from qabot.errors import QabotError
from qabot.store.files import LockHeld, pid_lock

STATE_NAME = ".qabot-follow.db"
MAX_TRIES = 8  # failures in a row before a page is given up (until its source lists it with a new date)
LOCK_NAME = ".qabot-follow.lock"

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, read_at REAL,
    failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, retry_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY, source TEXT NOT NULL, listed_date TEXT, etag TEXT, last_modified TEXT,
    content_hash TEXT, archived_in TEXT, fetched_at REAL,
    failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, retry_at REAL NOT NULL DEFAULT 0,
    due INTEGER NOT NULL DEFAULT 0  -- listed new or with a new date, not yet fetched since
);
CREATE INDEX IF NOT EXISTS pages_due ON pages (due, retry_at);
CREATE TABLE IF NOT EXISTS origins (
    origin TEXT PRIMARY KEY, robots_mode TEXT, robots_text TEXT, robots_until REAL NOT NULL DEFAULT 0,
    backoff_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending (part TEXT PRIMARY KEY, final TEXT NOT NULL, committed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class FollowError(QabotError):
    """The follower cannot run: another one holds the archive, or its state cannot be opened."""


@dataclass(frozen=True)
class PageState:
    """What the state knows about one page URL."""

    url: str
    source: str
    listed_date: str | None
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    failures: int
    retry_at: float
    due: bool


_PAGE = "SELECT url, source, listed_date, etag, last_modified, content_hash, failures, retry_at, due FROM pages"


@dataclass(frozen=True)
class SourceState:
    url: str
    etag: str | None
    last_modified: str | None
    failures: int
    retry_at: float


@contextmanager
def follower_lock(archive: Path) -> Iterator[None]:
    """Hold the archive's follower lock; a second follower fails at once naming the first one's pid."""
    path = Path(archive) / LOCK_NAME
    with ExitStack() as stack:
        try:
            stack.enter_context(pid_lock(path))
        except LockHeld as held:
            raise FollowError(f"another qabot follow (pid {held.holder}) is following into {archive}; "
                              "two followers on one archive would fetch and archive the same pages") from None
        except OSError as exc:
            raise FollowError(f"{path}: cannot take the follower lock ({exc.strerror or exc})") from None
        yield


class State:
    """The state database of one archive. Use under :func:`follower_lock`; close it (or ``with``)."""

    def __init__(self, archive: Path) -> None:
        path = Path(archive) / STATE_NAME
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a committed page survives a power cut too
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise FollowError(f"{path}: cannot open the follower's state ({exc}); move it away to start afresh "
                              "(every page is then fetched once more and archived again)") from None

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: all of it is committed, or (on any error or kill) none of it."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- sources -------------------------------------------------------------------------------------
    def source(self, url: str) -> SourceState | None:
        row = self.db.execute("SELECT url, etag, last_modified, failures, retry_at FROM sources WHERE url = ?", (url,)).fetchone()
        return SourceState(*row) if row else None

    def source_read(self, url: str, *, etag: str | None, last_modified: str | None, now: float,
                    links: Sequence[tuple[str, str | None]] = ()) -> int:
        """Record a source read (its validators) and the page links it lists, in one transaction:
        a link not seen before, or listed with another date, becomes due. Returns how many links
        are archived already and listed as before (unchanged)."""
        unchanged = 0
        with self.transaction() as db:
            db.execute("INSERT INTO sources (url, etag, last_modified, read_at, failures, last_error, retry_at) "
                       "VALUES (?, ?, ?, ?, 0, NULL, 0) ON CONFLICT(url) DO UPDATE SET etag = excluded.etag, "
                       "last_modified = excluded.last_modified, read_at = excluded.read_at, failures = 0, last_error = NULL, "
                       "retry_at = 0", (url, etag, last_modified, now))
            for link, date in links:
                row = db.execute("SELECT listed_date, content_hash FROM pages WHERE url = ?", (link,)).fetchone()
                if row is None:
                    db.execute("INSERT INTO pages (url, source, listed_date, due) VALUES (?, ?, ?, 1)", (link, url, date))
                elif row[0] != date:  # a new date: fetch again, and give a page that failed a fresh start
                    db.execute("UPDATE pages SET source = ?, listed_date = ?, due = 1, failures = 0, retry_at = 0 WHERE url = ?",
                               (url, date, link))
                elif row[1] is not None:
                    unchanged += 1
        return unchanged

    def source_failed(self, url: str, *, error: str, retry_at: float) -> int:
        """Record a failure; returns how many in a row."""
        with self.transaction() as db:
            db.execute("INSERT INTO sources (url, failures, last_error, retry_at) VALUES (?, 1, ?, ?) ON CONFLICT(url) DO UPDATE "
                       "SET failures = failures + 1, last_error = excluded.last_error, retry_at = excluded.retry_at",
                       (url, error, retry_at))
            return int(db.execute("SELECT failures FROM sources WHERE url = ?", (url,)).fetchone()[0])

    # -- pages ---------------------------------------------------------------------------------------
    def page(self, url: str) -> PageState | None:
        row = self.db.execute(f"{_PAGE} WHERE url = ?", (url,)).fetchone()
        return PageState(*row[:-1], bool(row[-1])) if row else None

    def pages_due(self, now: float) -> tuple[list[PageState], int]:
        """The pages to fetch (due, and any failure's wait over), and how many due ones still wait."""
        rows = self.db.execute(f"{_PAGE} WHERE due = 1 ORDER BY url").fetchall()
        pages = [PageState(*row[:-1], True) for row in rows]
        ready = [p for p in pages if p.retry_at <= now]
        return ready, len(pages) - len(ready)

    def page_failed(self, url: str, *, error: str, retry_at: float) -> int:
        """Record a failure (an archived capture stays; the page stays due until MAX_TRIES); returns how many in a row."""
        with self.transaction() as db:
            db.execute("UPDATE pages SET failures = failures + 1, last_error = ?, retry_at = ?, "
                       "due = CASE WHEN failures + 1 >= ? THEN 0 ELSE due END WHERE url = ?", (error, retry_at, MAX_TRIES, url))
            return int(db.execute("SELECT failures FROM pages WHERE url = ?", (url,)).fetchone()[0])

    def page_checked(self, url: str, *, etag: str | None, last_modified: str | None, now: float) -> None:
        """The page is as archived (a 304, or the same article): no longer due; new validators kept."""
        with self.transaction() as db:
            db.execute("UPDATE pages SET etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified), fetched_at = ?, "
                       "failures = 0, last_error = NULL, retry_at = 0, due = 0 WHERE url = ?", (etag, last_modified, now, url))

    def page_archived(self, url: str, *, etag: str | None, last_modified: str | None, content_hash: str, part: str,
                      committed: int, now: float) -> None:
        """The page's record is on disk in ``part`` up to byte ``committed``: one transaction for both."""
        with self.transaction() as db:
            db.execute("UPDATE pages SET etag = ?, last_modified = ?, content_hash = ?, archived_in = ?, fetched_at = ?, "
                       "failures = 0, last_error = NULL, retry_at = 0, due = 0 WHERE url = ?",
                       (etag, last_modified, content_hash, part, now, url))
            db.execute("UPDATE pending SET committed = ? WHERE part = ?", (committed, part))
            db.execute("INSERT INTO counters (name, value) VALUES ('archived', 1) "
                       "ON CONFLICT(name) DO UPDATE SET value = value + 1")

    # -- origins -------------------------------------------------------------------------------------
    def robots(self, origin: str, now: float) -> tuple[str, str] | None:
        """(mode, text) of a robots.txt still fresh at ``now``; None when it must be fetched."""
        row = self.db.execute("SELECT robots_mode, robots_text FROM origins WHERE origin = ? AND robots_until > ?",
                              (origin, now)).fetchone()
        return (row[0], row[1] or "") if row and row[0] else None

    def set_robots(self, origin: str, *, mode: str, text: str, until: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO origins (origin, robots_mode, robots_text, robots_until) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(origin) DO UPDATE SET robots_mode = excluded.robots_mode, "
                       "robots_text = excluded.robots_text, robots_until = excluded.robots_until", (origin, mode, text, until))

    def backoff_until(self, origin: str) -> float:
        row = self.db.execute("SELECT backoff_until FROM origins WHERE origin = ?", (origin,)).fetchone()
        return float(row[0]) if row else 0.0

    def set_backoff(self, origin: str, until: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO origins (origin, backoff_until) VALUES (?, ?) ON CONFLICT(origin) DO UPDATE SET "
                       "backoff_until = MAX(backoff_until, excluded.backoff_until)", (origin, until))

    # -- the WARC file in progress, and the index ---------------------------------------------------------
    def pending_parts(self) -> list[tuple[str, str, int]]:
        return [(str(p), str(f), int(c)) for p, f, c in self.db.execute("SELECT part, final, committed FROM pending ORDER BY part")]

    def begin_part(self, part: str, final: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO pending (part, final, committed) VALUES (?, ?, 0)", (part, final))

    def end_part(self, part: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM pending WHERE part = ?", (part,))

    def counter(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_counter(self, name: str, value: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                       (name, value))

    def archived_count(self) -> int:
        """Pages with an archived capture."""
        return int(self.db.execute("SELECT COUNT(*) FROM pages WHERE content_hash IS NOT NULL").fetchone()[0])


__all__ = ["LOCK_NAME", "MAX_TRIES", "STATE_NAME", "FollowError", "PageState", "SourceState", "State", "follower_lock"]
