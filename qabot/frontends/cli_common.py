"""What every command of the command line shares: settings, errors, JSON output, the --index option.

Settings are read once per command (environment + .env) and handed down as plain arguments.
Every QabotError becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click

from qabot.config import Settings
from qabot.errors import QabotError
from qabot.locations import Location, parse_location

F = TypeVar("F", bound=Callable[..., Any])


def sample_archive() -> Path:
    """The bundled sample archive (the seed article) inside the installed package."""
    return Path(str(resources.files("qabot.data") / "sample"))


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # httpx logs every request (with the bot token in the URL) at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)


def edge(func: F) -> F:
    """Translate QabotError into one clear line and exit 1; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QabotError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except sqlite3.DatabaseError as exc:  # the store names the file where it can; never a traceback
            click.echo(f"error: the index database: {exc}; `qabot check` says what is damaged and how to repair it", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted (an indexing run saved its progress: run the same command again to resume)"
                       if func.__name__ == "index" else "interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def settings_for(ctx: click.Context, **overrides: Any) -> Settings:
    """The settings (environment + .env + these overrides), validated; logging set up from them.

    Call it inside an ``edge`` command: a bad setting is a ConfigError, printed as one line.
    """
    settings = Settings.load(**overrides)
    setup_logging((ctx.obj or {}).get("log_level") or settings.log_level)
    return settings


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def emit_json(data: Any) -> None:
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


class LocationType(click.ParamType):
    """An index folder or a ``postgresql://`` URL (shown without its password in any error)."""

    name = "FOLDER|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Location:
        try:
            return parse_location(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


LOCATION = LocationType()

index_option = click.option(
    "--index", "index_dir", type=LOCATION, default=None,
    help="Index folder or postgresql://user:password@host/db URL (default: QABOT_INDEX or index/default).",
)
