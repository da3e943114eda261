"""``qabot follow``'s outer loop: the lock, recovery, rounds every N minutes, the index after each.

One follower per archive (:func:`qabot.follow.state.follower_lock`). On start, the WARC file of
a killed round is finished (:func:`qabot.follow.warcs.recover`). Each round re-reads the source
list files (an operator may edit them while the follower runs), runs
:class:`qabot.follow.rounds.Round`, then updates the index when the archive holds captures the
index has not seen: the state counts captures archived, and per index how many it has seen, so
a follower killed between archiving and indexing (or whose index update failed: another
``qabot index`` held the index) updates the index in its next round. The update itself is a
callable from the caller (the CLI builds it with :func:`qabot.indexer.build_index`), which keeps
this package below the indexer and the models.

A stop request (SIGTERM, Ctrl-C: the caller sets ``stop``) ends the page in flight at its next
read, publishes what the round archived, skips the index update (the next start does it) and
returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qabot.errors import QabotError
from qabot.follow.addresses import url_problem
from qabot.follow.fetcher import Fetcher
from qabot.follow.report import RoundReport
from qabot.follow.rounds import Round, RoundOptions
from qabot.follow.sources import read_source_list
from qabot.follow.state import FollowError, State, follower_lock
from qabot.follow.warcs import recover

log = logging.getLogger(__name__)

MAX_SOURCE_LIST_BYTES = 1_000_000


@dataclass(frozen=True)
class IndexUpdate:
    """How to bring an index up to date with the archive: ``key`` names the index in the state
    (what it has seen is counted per index), ``run`` updates it and returns its summary."""

    key: str
    run: Callable[[], dict[str, Any]]


def expand_sources(arguments: Sequence[str]) -> list[str]:
    """The source URLs: a SOURCE that is an http(s) URL is itself; any other is a file listing URLs
    (one a line, ``#`` comments). FollowError names a SOURCE that is neither, or a bad line."""
    found: list[str] = []
    for argument in arguments:
        if "://" in argument:
            problem = url_problem(argument)
            if problem:
                raise FollowError(f"{argument}: {problem}")
            found.append(argument)
            continue
        path = Path(argument)
        if not path.is_file():
            raise FollowError(f"{argument}: neither an http(s) URL nor a file listing source URLs")
        try:
            text = path.read_bytes()[:MAX_SOURCE_LIST_BYTES].decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FollowError(f"{argument}: cannot read the source list ({exc})") from None
        for number, url in enumerate(read_source_list(text), start=1):
            problem = url_problem(url)
            if problem:
                raise FollowError(f"{argument}: line {number}: {url!r}: {problem}")
            found.append(url)
    return list(dict.fromkeys(found))


def _update_index(state: State, update: IndexUpdate, report: RoundReport) -> RoundReport:
    archived = state.counter("archived")
    key = f"indexed:{update.key}"
    if archived <= state.counter(key):
        return report
    started = time.perf_counter()
    try:
        summary = update.run()
    except QabotError as exc:  # another indexer holds it, a model problem: reported, tried again next round
        log.warning("the index was not updated: %s", exc)
        spent = time.perf_counter() - started
        return replace(report, index_error=str(exc), seconds=report.seconds + spent, steps={**report.steps, "index": spent})
    state.set_counter(key, archived)
    spent = time.perf_counter() - started
    return replace(report, index=summary, seconds=report.seconds + spent, steps={**report.steps, "index": spent})


def follow(arguments: Sequence[str], *, archive: Path, fetcher: Fetcher, options: RoundOptions, every: float | None,
           index: IndexUpdate | None, emit: Callable[[RoundReport], None], progress: bool = False,
           now: Callable[[], float] = time.time) -> list[RoundReport]:
    """Run rounds until ``fetcher.stop`` is set (``every`` seconds apart; one round when ``every``
    is None). Returns every round's report (each was given to ``emit`` first)."""
    stop: threading.Event = fetcher.stop
    reports: list[RoundReport] = []
    with follower_lock(archive), State(archive) as state:
        recover(archive, state)
        while True:
            began = time.monotonic()
            sources = expand_sources(arguments)
            requests_before = fetcher.requests
            report = Round(sources, archive=archive, state=state, fetcher=fetcher, options=options, now=now,
                           progress=progress).run()
            report = replace(report, requests=fetcher.requests - requests_before)
            if index is not None and not stop.is_set():
                report = _update_index(state, index, report)
            emit(report)
            reports.append(report)
            if every is None or stop.is_set():
                return reports
            if stop.wait(max(0.0, began + every - time.monotonic())):
                return reports


__all__ = ["FollowError", "IndexUpdate", "expand_sources", "follow"]
