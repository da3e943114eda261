"""``qabot follow``: poll feeds and sitemaps into an archive folder, and keep an index up to date.

The edge of :mod:`qabot.follow`: settings and options in, signals, the model for the index
update (loaded only when a round archived something), the summary on stderr and ``--json``.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from qabot.frontends.cli_common import edge, index_option, settings_for
from qabot.locations import Location

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?")
_UNITS = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``15m``, ``90s``, ``1h``, ``1.5h``, ``900`` (seconds) -> seconds. ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 15m, 90s or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _every(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds < 1:
        raise click.BadParameter("rounds must be at least a second apart (minutes are polite: a feed rarely changes faster)")
    return seconds


def user_agent(contact: str) -> str:
    """``qabot/0.1.0 (+ops@example.org)``: names qabot and how its operator is reached."""
    try:
        ours = version("qabot")
    except PackageNotFoundError:
        ours = "dev"
    return f"qabot/{ours} (+{contact})"


@contextmanager
def _stop_on_signals(stop: threading.Event, said: Callable[[str], None]) -> Iterator[dict[str, int]]:
    """SIGTERM and a first Ctrl-C set ``stop`` (the page in flight is finished or abandoned, the
    round's WARC file published); a second Ctrl-C interrupts at once (state stays consistent:
    every page is its own transaction). Yields which signal arrived."""
    caught: dict[str, int] = {}

    def handle(signum: int, frame: object) -> None:
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        caught["signal"] = signum
        stop.set()
        said("stopping: finishing the page in flight (Ctrl-C again to stop at once)")

    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield caught
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--archive", "archive", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Archive folder the fetched pages are written into (as .warc.gz files under follow/).")
@index_option
@click.option("--every", "every", default="15m", show_default=True, callback=_every,
              help="Time between the starts of two rounds (e.g. 15m, 1h).")
@click.option("--once", is_flag=True, help="One round, then exit (for cron).")
@click.option("--contact", default=None, help="E-mail or URL for the User-Agent (default: QABOT_FOLLOW_CONTACT).")
@click.option("--delay", type=click.FloatRange(0, 3600), default=1.0, show_default=True,
              help="Minimum seconds between two requests to one host (robots.txt's Crawl-delay may raise it).")
@click.option("--max-pages", type=click.IntRange(1), default=1000, show_default=True,
              help="Pages fetched per round at most; the rest (the oldest) wait for the next round.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=20.0, show_default=True,
              help="Seconds a server may stay silent; a whole response gets three times as long.")
@click.option("--max-bytes", type=click.IntRange(1024), default=5_000_000, show_default=True,
              help="Largest response read (feeds, sitemaps and pages, decoded).")
@click.option("--json", "as_json", is_flag=True, help="Also print each round's summary as one JSON object a line on stdout.")
@click.pass_context
@edge
def follow(ctx: click.Context, sources: tuple[str, ...], archive: Path, index_dir: Location | None, every: float, once: bool,
           contact: str | None, delay: float, max_pages: int, timeout: float, max_bytes: int, as_json: bool) -> None:
    """Follow SOURCES (RSS/Atom feed URLs, sitemap or news sitemap URLs, or files listing them, one a
    line): each round fetches the articles not yet in ARCHIVE (or changed), writes them into it and,
    with --index, updates that index.

    Polite and bounded: robots.txt, one request at a time per host and --delay between two,
    conditional GET, timeouts, size and redirect caps; links only to the source's own site (or
    QABOT_FOLLOW_HOSTS), never to private or loopback addresses unless the source is on one.
    A source that fails is reported and tried again later. Killed at any point and restarted, it
    loses and duplicates nothing; a second follower on the same archive is refused.
    SIGTERM or Ctrl-C finishes the page in flight and stops (the next start updates the index).
    Exit 1 when --once could read no source or could not update the index.
    """
    from qabot.follow import Fetcher, FollowError, RoundOptions, expand_sources
    from qabot.follow import follow as run_follow

    settings = settings_for(ctx, index_dir=index_dir, follow_contact=contact)
    if not settings.follow_contact:
        raise FollowError("set QABOT_FOLLOW_CONTACT (or --contact) to an e-mail address or URL where site owners can reach "
                          "you: it goes into the User-Agent of every request")
    expand_sources(sources)  # a bad SOURCE is one line before anything is fetched
    say = lambda message: click.echo(message, err=True)  # noqa: E731
    update = _index_update(settings, archive) if index_dir is not None else None
    stop = threading.Event()
    fetcher = Fetcher(user_agent=user_agent(settings.follow_contact), min_interval=delay, timeout=timeout, deadline=3 * timeout,
                      max_bytes=max_bytes, stop=stop)

    def emit(report: Any) -> None:
        say(report.summary())
        if as_json:
            click.echo(json.dumps(report.to_dict(), ensure_ascii=False))

    with fetcher, _stop_on_signals(stop, say) as caught:
        reports = run_follow(sources, archive=archive, fetcher=fetcher, every=None if once else every, index=update, emit=emit,
                             options=RoundOptions(hosts=settings.follow_hosts, max_pages=max_pages,
                                                  software=user_agent(settings.follow_contact)),
                             progress=sys.stderr.isatty() and not as_json)
    if caught.get("signal") == signal.SIGINT:
        sys.exit(130)
    last = reports[-1] if reports else None
    if once and last is not None and not last.stopped and (
            (last.sources and last.sources_failed == last.sources) or last.index_error):
        sys.exit(1)


def _index_update(settings: Any, archive: Path) -> Any:
    """The index update run after a round that archived something; the model is loaded on first use."""
    from qabot.follow import IndexUpdate

    loaded: dict[str, Any] = {}

    def run() -> dict[str, Any]:
        from qabot.indexer import build_index
        from qabot.models.embedding import embedder_for

        if "embedder" not in loaded:
            loaded["embedder"] = embedder_for(settings)
        report = build_index(
            archive, settings.index_dir, embedder=loaded["embedder"], chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size, progress=False,
            checkpoint_seconds=settings.checkpoint_seconds, pg_timeout=settings.pg_timeout, pg_pool=settings.pg_pool,
            max_article_bytes=settings.max_article_bytes,
        )
        return report.to_dict()

    return IndexUpdate(key=str(settings.index_dir), run=run)


__all__ = ["follow", "parse_duration", "user_agent"]
