"""Settings, read once at the edge from a mapping (os.environ plus an optional .env file).

Only the CLI and the bot call :meth:`Settings.load`; everything below them gets plain
arguments. Tests build settings with :meth:`Settings.from_env` and a dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qabot.errors import ConfigError

DEFAULT_INDEX_DIR = Path("index") / "default"
DEFAULT_MODEL = "multilingual-e5-small"


class Secret:
    """A string that never shows itself in repr, str or f-strings; ``.get()`` reveals it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _default_cache_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qabot"


@dataclass(frozen=True)
class Settings:
    """Every setting qabot has; the environment variable for each is in the field's metadata."""

    index_dir: Path = field(default=DEFAULT_INDEX_DIR, metadata={"env": "QABOT_INDEX"})
    model: str = field(default=DEFAULT_MODEL, metadata={"env": "QABOT_MODEL"})
    cache_dir: Path | None = field(default=None, metadata={"env": "QABOT_CACHE_DIR"})
    query_prompt: str | None = field(default=None, metadata={"env": "QABOT_QUERY_PROMPT"})
    passage_prompt: str | None = field(default=None, metadata={"env": "QABOT_PASSAGE_PROMPT"})
    device: str = field(default="cpu", metadata={"env": "QABOT_DEVICE"})
    # auto: bf16 where the device does it in hardware (AMX/AVX512-BF16), else fp32; or fp32, bf16.
    precision: str = field(default="auto", metadata={"env": "QABOT_PRECISION"})
    chunk_tokens: int = field(default=200, metadata={"env": "QABOT_CHUNK_TOKENS"})
    chunk_overlap: int = field(default=1, metadata={"env": "QABOT_CHUNK_OVERLAP"})
    batch_size: int = field(default=32, metadata={"env": "QABOT_BATCH_SIZE"})
    # How often an indexing run saves its FAISS progress (a killed run resumes from there).
    checkpoint_seconds: float = field(default=60.0, metadata={"env": "QABOT_CHECKPOINT_SECONDS"})
    top_k: int = field(default=5, metadata={"env": "QABOT_TOP_K"})
    min_score: float | None = field(default=None, metadata={"env": "QABOT_MIN_SCORE"})
    log_level: str = field(default="WARNING", metadata={"env": "QABOT_LOG_LEVEL"})
    telegram_token: Secret = field(default_factory=lambda: Secret(""), metadata={"env": "TELEGRAM_BOT_TOKEN"})
    telegram_api_url: str | None = field(default=None, metadata={"env": "QABOT_TELEGRAM_API_URL"})
    allowed_users: frozenset[int] = field(default_factory=frozenset, metadata={"env": "QABOT_ALLOWED_USERS"})
    allowed_chats: frozenset[int] = field(default_factory=frozenset, metadata={"env": "QABOT_ALLOWED_CHATS"})
    allow_all: bool = field(default=False, metadata={"env": "QABOT_ALLOW_ALL"})
    rate_per_minute: float = field(default=6.0, metadata={"env": "QABOT_RATE_PER_MINUTE"})
    rate_burst: int = field(default=3, metadata={"env": "QABOT_RATE_BURST"})
    max_question_chars: int = field(default=500, metadata={"env": "QABOT_MAX_QUESTION_CHARS"})
    log_messages: bool = field(default=False, metadata={"env": "QABOT_LOG_MESSAGES"})

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"QABOT_PRECISION must be auto, fp32 or bf16, got {self.precision!r}")
        if self.chunk_tokens < 16:
            raise ConfigError(f"QABOT_CHUNK_TOKENS must be at least 16, got {self.chunk_tokens}")
        if self.chunk_overlap < 0:
            raise ConfigError(f"QABOT_CHUNK_OVERLAP must be 0 or more, got {self.chunk_overlap}")
        if self.batch_size < 1:
            raise ConfigError(f"QABOT_BATCH_SIZE must be at least 1, got {self.batch_size}")
        if self.checkpoint_seconds < 0:
            raise ConfigError(f"QABOT_CHECKPOINT_SECONDS must be 0 or more, got {self.checkpoint_seconds}")
        if self.top_k < 1:
            raise ConfigError(f"QABOT_TOP_K must be at least 1, got {self.top_k}")
        if self.rate_per_minute <= 0 or self.rate_burst < 1:
            raise ConfigError("QABOT_RATE_PER_MINUTE must be above 0 and QABOT_RATE_BURST at least 1")
        if self.max_question_chars < 10:
            raise ConfigError(f"QABOT_MAX_QUESTION_CHARS must be at least 10, got {self.max_question_chars}")

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
        for f in fields(cls):
            raw = merged.get(f.metadata["env"])
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, f.metadata["env"], raw.strip())
        if "cache_dir" not in values:
            values["cache_dir"] = _default_cache_dir(merged)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """The process's settings: os.environ plus ./.env (environment wins)."""
        return cls.from_env(os.environ, dotenv=Path(".env"), **overrides)


def _parse(name: str, env: str, raw: str) -> Any:
    """Turn one environment string into the field's type, or raise ConfigError naming the variable."""
    try:
        if name in {"index_dir", "cache_dir"}:
            return Path(raw).expanduser()
        if name in {"chunk_tokens", "chunk_overlap", "batch_size", "top_k", "rate_burst", "max_question_chars"}:
            return int(raw)
        if name in {"rate_per_minute", "min_score", "checkpoint_seconds"}:
            return float(raw)
        if name in {"allow_all", "log_messages"}:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if name in {"allowed_users", "allowed_chats"}:
            return frozenset(int(part) for part in raw.replace(";", ",").split(",") if part.strip())
        if name == "precision":
            return raw.lower()
        if name == "telegram_token":
            return Secret(raw)
        if name in {"query_prompt", "passage_prompt"}:
            # Prompts end in a space ("query: "); .env files strip it, so keep the raw value
            # and let a trailing colon imply the space.
            return raw + " " if raw.endswith(":") else raw
        return raw
    except ValueError as exc:
        raise ConfigError(f"{env}={'***' if name == 'telegram_token' else raw!r}: {exc}") from None
