"""What a round did (:class:`RoundReport`, for stderr and ``--json``), and when to try a failure again.

Pure: dataclasses, their text and JSON forms, and the retry policy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

RETRY_BASE = 300.0  # the first retry of a failed fetch: five minutes later, then doubling
RETRY_MAX = 6 * 3600.0  # ... up to six hours: a site down for a day is still asked four times a day
GONE_RETRY = 24 * 3600.0  # 404, 410, other 4xx and pages without article text: a day (they rarely come back)


def retry_delay(failures: int, *, status: int | None = None, retry_after: float | None = None,
                permanent: bool = False) -> float:
    """Seconds to wait before fetching a URL again after its ``failures``-th failure in a row.

    A server's Retry-After wins; a 4xx (but 429) or a page without article text waits a day;
    anything else (5xx, timeouts, refused connections) backs off exponentially.
    """
    if retry_after is not None:
        return retry_after
    if permanent or (status is not None and 400 <= status < 500 and status != 429):
        return GONE_RETRY
    return min(RETRY_BASE * 2 ** max(failures - 1, 0), RETRY_MAX)


@dataclass(frozen=True)
class Failure:
    """A source or page that failed (or was refused) in a round, and why."""

    url: str
    reason: str
    kind: str = "page"  # "source" or "page"
    in_a_row: int = 1  # failures in a row (a source that keeps failing shows it here)
    retry_in: float | None = None  # seconds until it is tried again


@dataclass(frozen=True)
class RoundReport:
    """One round of ``qabot follow``: what was read, archived, skipped and why, and where the time went."""

    started: str
    sources: int = 0
    sources_read: int = 0  # fetched and parsed (a 200)
    sources_unchanged: int = 0  # a 304: nothing new, nothing downloaded
    sources_failed: int = 0
    links: int = 0  # distinct page URLs the sources list (and failed pages due a retry)
    new: int = 0
    changed: int = 0
    unchanged: int = 0  # already archived: the same listing date, a 304, or the same article
    failed: int = 0
    refused: int = 0  # another site, robots.txt, a private address, not http(s)
    waiting: int = 0  # a failure's or a server's wait not over yet
    left: int = 0  # over --max-pages: fetched in a later round
    requests: int = 0
    warc: str | None = None
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step: sources, fetch, extract, archive, index
    failures: tuple[Failure, ...] = ()
    refusals: tuple[Failure, ...] = ()
    stopped: bool = False
    index: dict[str, Any] | None = None  # the index update's summary, when there was one
    index_error: str | None = None

    @property
    def archived(self) -> int:
        return self.new + self.changed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = {k: round(v, 3) for k, v in self.steps.items()}
        data["seconds"] = round(self.seconds, 3)
        return data

    def summary(self) -> str:
        """A few lines for stderr."""
        lines = [
            f"follow round {self.started}: {self.sources} sources ({self.sources_read} read, {self.sources_unchanged} unchanged, "
            f"{self.sources_failed} failed); {self.links} links: {self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.failed} failed, {self.refused} refused, {self.waiting} waiting"
            + (f", {self.left} left for the next round" if self.left else "")
            + f"; {self.requests} requests in {self.seconds:.1f} s" + (" (stopped)" if self.stopped else ""),
        ]
        if self.warc:
            lines.append(f"  archived into {self.warc}")
        if self.index is not None:
            lines.append(f"  index: {self.index.get('articles_indexed', 0)} articles indexed, "
                         f"{self.index.get('articles_total', '?')} in the index")
        if self.index_error:
            lines.append(f"  index not updated: {self.index_error}")
        for failure in self.failures:
            again = f"; next try in {_duration(failure.retry_in)}" if failure.retry_in is not None else ""
            times = f" ({failure.in_a_row} times in a row)" if failure.in_a_row > 1 else ""
            lines.append(f"  failed {failure.kind} {failure.url}: {failure.reason}{times}{again}")
        shown = self.refusals[:20]
        for refusal in shown:
            lines.append(f"  refused {refusal.url}: {refusal.reason}")
        if len(self.refusals) > len(shown):
            lines.append(f"  ... and {len(self.refusals) - len(shown)} more refused (--json lists them all)")
        return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["GONE_RETRY", "RETRY_BASE", "RETRY_MAX", "Failure", "RoundReport", "retry_delay"]
