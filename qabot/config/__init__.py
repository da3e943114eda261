"""Settings, read once at the edge from a mapping (os.environ plus an optional .env file).

Only the CLI and the bot call :meth:`Settings.load`; everything below them gets plain
arguments. Tests build settings with :meth:`Settings.from_env` and a dict.

Every setting is a row of :data:`~qabot.config.table.SETTINGS` (variable, field, what it accepts,
default, secret, group, help); :class:`Settings` is the typed object they fill, its defaults taken
from the table. ``.env.example`` and ``docs/settings.md`` are generated from the table (``make docs``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qabot.config.kinds import Secret
from qabot.config.table import (
    BUILTIN_RERANKER,
    BY_NAME,
    DEFAULT_INDEX_DIR,
    DEFAULT_MODEL,
    DEFAULT_RERANK_POOL,
    DEFAULT_RERANKER,
    LOG_LEVELS,
    MAX_QUESTION_CHARS,
    MAX_RERANK_POOL,
    MAX_TOP_K,
    PRECISIONS,
    SETTINGS,
    Setting,
)
from qabot.errors import ConfigError
from qabot.locations import PgUrl, redact

__all__ = [
    "BUILTIN_RERANKER", "DEFAULT_INDEX_DIR", "DEFAULT_MODEL", "DEFAULT_RERANKER", "DEFAULT_RERANK_POOL", "LOG_LEVELS",
    "MAX_QUESTION_CHARS", "MAX_RERANK_POOL", "MAX_TOP_K", "PRECISIONS", "SETTINGS", "Secret", "Setting", "Settings",
]
_OFF = {"", "none", "off"}  # what turns off a setting that is on by default (QABOT_RERANKER=)


def _default_cache_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qabot"


def _table(name: str) -> dict[str, Any]:
    """The field of setting ``name``: its default from the table, its variable in the metadata."""
    setting = BY_NAME[name]
    return {"default": setting.default, "metadata": {"env": setting.env, "secret": setting.secret}}


def _problem(setting: Setting, given: object, problem: str) -> ConfigError:
    shown = "***" if setting.secret else redact(repr(given))
    return ConfigError(f"{setting.env}={shown}: {redact(problem)}")


@dataclass(frozen=True)
class Settings:
    """Every setting qabot has, one field per row of the table (qabot.config.table), in its order."""

    index_dir: Path | PgUrl = field(**_table("index_dir"))
    pg_pool: int = field(**_table("pg_pool"))
    pg_timeout: float = field(**_table("pg_timeout"))
    model: str = field(**_table("model"))
    cache_dir: Path | None = field(**_table("cache_dir"))
    query_prompt: str | None = field(**_table("query_prompt"))
    passage_prompt: str | None = field(**_table("passage_prompt"))
    device: str = field(**_table("device"))
    precision: str = field(**_table("precision"))
    chunk_tokens: int = field(**_table("chunk_tokens"))
    chunk_overlap: int = field(**_table("chunk_overlap"))
    batch_size: int = field(**_table("batch_size"))
    checkpoint_seconds: float = field(**_table("checkpoint_seconds"))
    max_article_bytes: int = field(**_table("max_article_bytes"))
    top_k: int = field(**_table("top_k"))
    min_score: float | None = field(**_table("min_score"))
    max_question_chars: int = field(**_table("max_question_chars"))
    hybrid: bool = field(**_table("hybrid"))
    sentence_leg: bool = field(**_table("sentence_leg"))
    log_level: str = field(**_table("log_level"))
    log_messages: bool = field(**_table("log_messages"))
    telegram_token: Secret = field(**_table("telegram_token"))
    telegram_api_url: str | None = field(**_table("telegram_api_url"))
    allowed_users: frozenset[int] = field(**_table("allowed_users"))
    allowed_chats: frozenset[int] = field(**_table("allowed_chats"))
    allow_all: bool = field(**_table("allow_all"))
    rate_per_minute: float = field(**_table("rate_per_minute"))
    rate_burst: int = field(**_table("rate_burst"))
    reranker: str | None = field(**_table("reranker"))
    rerank_pool: int = field(**_table("rerank_pool"))
    rerank_sentences: int = field(**_table("rerank_sentences"))
    reranker_device: str | None = field(**_table("reranker_device"))
    reader: str | None = field(**_table("reader"))
    reader_device: str | None = field(**_table("reader_device"))
    llm_url: str | None = field(**_table("llm_url"))
    llm_model: str | None = field(**_table("llm_model"))
    llm_api_key: Secret = field(**_table("llm_api_key"))
    llm_timeout: float = field(**_table("llm_timeout"))
    api_keys: tuple[Secret, ...] = field(**_table("api_keys"))
    api_rate_per_minute: float = field(**_table("api_rate_per_minute"))
    api_rate_burst: int = field(**_table("api_rate_burst"))
    api_hosts: tuple[str, ...] = field(**_table("api_hosts"))
    follow_contact: str | None = field(**_table("follow_contact"))
    follow_hosts: tuple[str, ...] = field(**_table("follow_hosts"))

    def __post_init__(self) -> None:
        # Tidy each value's spelling (frozen: object.__setattr__), then check it, so a bad value fails
        # here, naming its variable, and never deep inside logging, torch or httpx.
        for setting in SETTINGS:
            given = getattr(self, setting.name)  # as written, for the message
            try:
                value = setting.kind.tidy(given)
            except ValueError as exc:
                raise _problem(setting, given, str(exc)) from None
            object.__setattr__(self, setting.name, value)
            problem = setting.kind.check(value)
            if problem:
                raise _problem(setting, given, problem)

    def __repr__(self) -> str:
        # The dataclass's repr, but a URL setting's credentials (QABOT_LLM_URL=http://user:password@host/v1)
        # masked: settings get logged and printed whole.
        shown = ", ".join(f"{f.name}={redact(repr(getattr(self, f.name)))}" for f in fields(self))
        return f"Settings({shown})"

    @property
    def model_cache_dir(self) -> Path:
        """Where provisioned models live (outside git)."""
        return self.cache_dir if self.cache_dir is not None else _default_cache_dir(os.environ)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, dotenv: Path | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ``; values in ``dotenv`` fill in what ``environ`` lacks.

        ``overrides`` (e.g. from CLI flags) win over both; None values are ignored.
        """
        merged: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            from dotenv import dotenv_values  # imported here: only the edges read .env

            merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        merged.update(environ)
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = merged.get(setting.env)
            if raw is None:
                continue
            raw = raw.strip()
            if setting.off_when_empty and raw.lower() in _OFF:
                values[setting.name] = None  # set, but to nothing: this default model is turned off
            elif raw:
                try:
                    values[setting.name] = setting.kind.parse(raw)
                except ValueError as exc:
                    shown = "***" if setting.secret else repr(redact(raw))
                    raise ConfigError(f"{setting.env}={shown}: {redact(str(exc))}") from None
        if "cache_dir" not in values:
            values["cache_dir"] = _default_cache_dir(merged)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """The process's settings: os.environ plus ./.env (environment wins)."""
        return cls.from_env(os.environ, dotenv=Path(".env"), **overrides)
