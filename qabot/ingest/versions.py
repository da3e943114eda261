"""The newest version of each article wins, across the whole archive; pure (no I/O).

Some inputs hold the same article more than once: a web archive captures a page again
(``WARC-Date`` says when), a news agency sends version 2 of an item with the same GUID, an
``.html`` file holds a page that a ``.warc.gz`` captured too. The indexer keeps the first
article of an id and reports the rest as duplicates, so the choice is made here, before it:
:func:`qabot.ingest.archive.iter_articles` reads those formats twice. The first pass offers
every (id, version, where) to :meth:`Latest.offer` without extracting anything; the second
reads only what :meth:`Latest.is_latest` accepts. A reader computes the id and version the
same way in both passes (the same code), so the two agree.

Versions compare by number first (a wire item's ``version``; 0 for web pages), then by time;
on a tie the first in archive order wins, so the choice is the same from run to run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Keep", "Latest", "Version", "keep_all", "timestamp"]


@dataclass(frozen=True, order=True)
class Version:
    """Which of an article's versions this is: ``number`` (0 where there is none), then ``when``
    (seconds since the epoch: version created, captured, or the file's mtime; 0 unknown)."""

    number: int = 0
    when: float = 0.0


# (article id, version, where it is: "path" or "path:record") -> read this one?
Keep = Callable[[str, Version, str], bool]


def keep_all(article_id: str, version: Version, where: str) -> bool:
    """Read every version (a file read on its own, outside :func:`~qabot.ingest.archive.iter_articles`)."""
    return True


class Latest:
    """The newest (version, where) of each article id the first pass offered."""

    def __init__(self) -> None:
        self._best: dict[str, tuple[Version, str]] = {}

    def offer(self, article_id: str, version: Version, where: str) -> bool:
        """First pass: remember it if it is the newest so far; always False (extract nothing yet)."""
        best = self._best.get(article_id)
        if best is None or version > best[0]:
            self._best[article_id] = (version, where)
        return False

    def is_latest(self, article_id: str, version: Version, where: str) -> bool:
        """Second pass: is this the version to read? (An id the first pass never saw is read.)"""
        best = self._best.get(article_id)
        return best is None or best == (version, where)


def timestamp(value: str | None) -> float | None:
    """Seconds since the epoch for an ISO 8601 time (``Z``, an offset, or none: UTC), or
    NITF's basic form ``20250128T091834+0100``; None when it is not one."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = datetime.strptime(value, "%Y%m%dT%H%M%S%z")
        except ValueError:
            try:
                when = datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
            except ValueError:
                return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
