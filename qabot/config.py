"""Settings, read once at the edge from a mapping (os.environ plus an optional .env file).

Only the CLI and the bot call :meth:`Settings.load`; everything below them gets plain
arguments. Tests build settings with :meth:`Settings.from_env` and a dict.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qabot.errors import ConfigError
from qabot.locations import PgUrl, parse_location, redact

DEFAULT_INDEX_DIR = Path("index") / "default"
DEFAULT_MODEL = "multilingual-e5-small"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PRECISIONS = ("auto", "fp32", "bf16")
MAX_TOP_K = 100
MAX_RERANK_POOL = 500
# qabot's own reranker (qabot.models.reranker_build): on by default, QABOT_RERANKER= turns it off.
BUILTIN_RERANKER = "qabot-reranker"
DEFAULT_RERANKER: str | None = BUILTIN_RERANKER  # on: it wins on dev and at scale, both halves, EN and DE (README)
DEFAULT_RERANK_POOL = 0  # the built-in reranker reads answer sentences only (see the README)
_DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")
_BOT_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


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

    # A folder, or a postgresql://user:password@host:port/database URL (an index in PostgreSQL + pgvector).
    index_dir: Path | PgUrl = field(default=DEFAULT_INDEX_DIR, metadata={"env": "QABOT_INDEX"})
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
    # An article longer than this (UTF-8 bytes of its text) is a reported problem, not indexed: a 20 MB
    # "article" is a mistake (a whole dump in one record) that costs minutes and ~40k chunks.
    max_article_bytes: int = field(default=10_000_000, metadata={"env": "QABOT_MAX_ARTICLE_BYTES"})
    top_k: int = field(default=5, metadata={"env": "QABOT_TOP_K"})
    min_score: float | None = field(default=None, metadata={"env": "QABOT_MIN_SCORE"})
    log_level: str = field(default="WARNING", metadata={"env": "QABOT_LOG_LEVEL"})
    telegram_token: Secret = field(default_factory=lambda: Secret(""), metadata={"env": "TELEGRAM_BOT_TOKEN", "secret": True})
    telegram_api_url: str | None = field(default=None, metadata={"env": "QABOT_TELEGRAM_API_URL"})
    allowed_users: frozenset[int] = field(default_factory=frozenset, metadata={"env": "QABOT_ALLOWED_USERS"})
    allowed_chats: frozenset[int] = field(default_factory=frozenset, metadata={"env": "QABOT_ALLOWED_CHATS"})
    allow_all: bool = field(default=False, metadata={"env": "QABOT_ALLOW_ALL"})
    rate_per_minute: float = field(default=6.0, metadata={"env": "QABOT_RATE_PER_MINUTE"})
    rate_burst: int = field(default=3, metadata={"env": "QABOT_RATE_BURST"})
    max_question_chars: int = field(default=500, metadata={"env": "QABOT_MAX_QUESTION_CHARS"})
    log_messages: bool = field(default=False, metadata={"env": "QABOT_LOG_MESSAGES"})
    # A third ranking: chunks by their sentences nearest to the question (off: see the README).
    sentence_leg: bool = field(default=False, metadata={"env": "QABOT_SENTENCE_LEG"})
    # Optional stronger models (each off when unset; the offline answer is the fallback).
    # QABOT_RERANKER= (empty), "none" or "off": no reranker.
    reranker: str | None = field(default=DEFAULT_RERANKER, metadata={"env": "QABOT_RERANKER"})
    rerank_pool: int = field(default=DEFAULT_RERANK_POOL, metadata={"env": "QABOT_RERANK_POOL"})
    rerank_sentences: int = field(default=6, metadata={"env": "QABOT_RERANK_SENTENCES"})
    reranker_device: str | None = field(default=None, metadata={"env": "QABOT_RERANKER_DEVICE"})
    reader: str | None = field(default=None, metadata={"env": "QABOT_READER"})
    reader_device: str | None = field(default=None, metadata={"env": "QABOT_READER_DEVICE"})
    llm_url: str | None = field(default=None, metadata={"env": "QABOT_LLM_URL"})
    llm_model: str | None = field(default=None, metadata={"env": "QABOT_LLM_MODEL"})
    llm_api_key: Secret = field(default_factory=lambda: Secret(""), metadata={"env": "QABOT_LLM_API_KEY", "secret": True})
    llm_timeout: float = field(default=30.0, metadata={"env": "QABOT_LLM_TIMEOUT"})
    # The HTTP API (`qabot serve`): bearer tokens, and a per-key (or per-address) rate limit.
    api_keys: tuple[Secret, ...] = field(default_factory=tuple, metadata={"env": "QABOT_API_KEYS", "secret": True})
    api_rate_per_minute: float = field(default=60.0, metadata={"env": "QABOT_API_RATE_PER_MINUTE"})
    api_rate_burst: int = field(default=10, metadata={"env": "QABOT_API_RATE_BURST"})
    # Host names a keyless server answers besides loopback ones (a reverse proxy's name): any other
    # Host header is refused, so a web page cannot reach it through DNS rebinding.
    api_hosts: tuple[str, ...] = field(default_factory=tuple, metadata={"env": "QABOT_API_HOSTS"})
    # An index in PostgreSQL: connections per process (the pool) and the connect/statement timeout.
    pg_pool: int = field(default=4, metadata={"env": "QABOT_PG_POOL"})
    pg_timeout: float = field(default=30.0, metadata={"env": "QABOT_PG_TIMEOUT"})
    # `qabot follow`: how site owners reach the operator (in the User-Agent), and hosts besides a
    # source's own site that its links may lead to.
    follow_contact: str | None = field(default=None, metadata={"env": "QABOT_FOLLOW_CONTACT"})
    follow_hosts: tuple[str, ...] = field(default_factory=tuple, metadata={"env": "QABOT_FOLLOW_HOSTS"})

    def __post_init__(self) -> None:
        # Normalise spelling first (frozen: object.__setattr__), then check every field, so a bad
        # value fails here, naming its variable, and never deep inside logging, torch or httpx.
        given = {f.name: getattr(self, f.name) for f in fields(self)}  # as written, for the message
        object.__setattr__(self, "log_level", str(self.log_level).strip().upper())
        object.__setattr__(self, "device", str(self.device).strip().lower())
        object.__setattr__(self, "precision", str(self.precision).strip().lower())
        if isinstance(self.index_dir, str):  # a path or URL from Python code
            try:
                object.__setattr__(self, "index_dir", parse_location(self.index_dir))
            except ValueError as exc:
                raise ConfigError(f"QABOT_INDEX: {exc}") from None
            given["index_dir"] = self.index_dir
        for name in ("telegram_token", "llm_api_key"):  # a plain string from Python code: hide it too
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Secret(getattr(self, name)))
        if isinstance(self.api_keys, str | list | set | frozenset):
            keys = self.api_keys.split(",") if isinstance(self.api_keys, str) else self.api_keys
            object.__setattr__(self, "api_keys", tuple(k if isinstance(k, Secret) else Secret(str(k).strip()) for k in keys))
        for name in ("api_hosts", "follow_hosts"):
            value = getattr(self, name)
            if isinstance(value, str | list | set | frozenset):
                object.__setattr__(self, name, _host_names(value.split(",") if isinstance(value, str) else value))
        for f in fields(self):
            problem = _problem(f.name, getattr(self, f.name))
            if problem:
                shown = "***" if f.metadata.get("secret") else redact(repr(given[f.name]))
                raise ConfigError(f"{f.metadata['env']}={shown}: {problem}")

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
        for f in fields(cls):
            raw = merged.get(f.metadata["env"])
            if f.name in _OFF_WHEN_EMPTY and raw is not None and raw.strip().lower() in {"", "none", "off"}:
                values[f.name] = None  # set, but to nothing: this default model is turned off
                continue
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


_INTS = frozenset({"chunk_tokens", "chunk_overlap", "batch_size", "max_article_bytes", "top_k", "rate_burst", "max_question_chars", "pg_pool",
                   "rerank_pool", "rerank_sentences", "api_rate_burst"})
_FLOATS = frozenset({"rate_per_minute", "min_score", "checkpoint_seconds", "llm_timeout", "api_rate_per_minute", "pg_timeout"})
_SECRETS = frozenset({"telegram_token", "llm_api_key"})
_OFF_WHEN_EMPTY = frozenset({"reranker"})  # on by default: an empty value turns it off
_BOOLS = frozenset({"allow_all", "log_messages", "sentence_leg"})


def _parse(name: str, env: str, raw: str) -> Any:
    """Turn one environment string into the field's type, or raise ConfigError naming the variable."""
    try:
        if name == "index_dir":
            return parse_location(raw)
        if name == "cache_dir":
            return Path(raw).expanduser()
        if name in _INTS:
            try:
                return int(raw)
            except ValueError:
                raise ValueError("expected a whole number") from None
        if name in _FLOATS:
            try:
                return float(raw)
            except ValueError:
                raise ValueError("expected a number") from None
        if name in _BOOLS:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if name in {"allowed_users", "allowed_chats"}:
            try:
                return frozenset(int(part) for part in raw.replace(";", ",").split(",") if part.strip())
            except ValueError:
                raise ValueError("expected comma-separated numeric ids") from None
        if name in _SECRETS:
            return Secret(raw)
        if name == "api_keys":
            return tuple(Secret(part.strip()) for part in raw.split(",") if part.strip())
        if name in {"api_hosts", "follow_hosts"}:
            hosts = _host_names(raw.split(","))
            problem = _problem(name, hosts)
            if problem:
                raise ValueError(problem)
            return hosts
        if name in {"reranker_device", "reader_device"}:
            return raw.lower()
        if name in {"query_prompt", "passage_prompt"}:
            # Prompts end in a space ("query: "); .env files strip it, so keep the raw value
            # and let a trailing colon imply the space.
            return raw + " " if raw.endswith(":") else raw
        return raw
    except ValueError as exc:
        shown = "***" if name in _SECRETS or name == "api_keys" else repr(redact(raw))
        raise ConfigError(f"{env}={shown}: {redact(str(exc))}") from None


def _host_names(names: Iterable[object]) -> tuple[str, ...]:
    """Host names as a Host header spells them: lower case, no trailing dot, IPv6 in brackets."""
    found = []
    for name in (str(n).strip().lower() for n in names):
        if not name:
            continue
        if ":" in name and not name.startswith("["):
            try:
                name = f"[{ipaddress.IPv6Address(name)}]"
            except ValueError:
                pass  # a port or a scheme: _problem names it
        found.append(name.removesuffix(".") if not name.startswith("[") else name)
    return tuple(found)


def _is_host_name(name: str) -> bool:
    """A DNS name, an IPv4 address or an IPv6 address in brackets (no scheme, port or path)."""
    if name.startswith("[") and name.endswith("]"):
        try:
            return bool(ipaddress.IPv6Address(name[1:-1]))
        except ValueError:
            return False
    return len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in name.split("."))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _at_least(value: object, low: float, *, whole: bool = True) -> str | None:
    if not (_is_int(value) if whole else _is_number(value)) or value < low:  # type: ignore[operator]
        return f"must be {'a whole number' if whole else 'a number'} of at least {low:g}"
    return None


def _problem(name: str, value: Any) -> str | None:
    """What is wrong with one field's value, in a few words; None if nothing."""
    if name in _INTS:
        low = {"chunk_tokens": 16, "chunk_overlap": 0, "max_question_chars": 10, "rerank_pool": 0,
               "rerank_sentences": 0}.get(name, 1)
        problem = _at_least(value, low)
        if problem is None and name == "top_k" and value > MAX_TOP_K:
            problem = f"must be at most {MAX_TOP_K}"
        if problem is None and name in {"rerank_pool", "rerank_sentences"} and value > MAX_RERANK_POOL:
            problem = f"must be at most {MAX_RERANK_POOL}"
        return problem
    if name in {"llm_timeout", "api_rate_per_minute", "pg_timeout"}:
        ok = _is_number(value) and math.isfinite(value) and value > 0
        return None if ok else "must be a number above 0"
    if name in {"reranker_device", "reader_device"}:
        return None if value is None or _DEVICE.fullmatch(value) else "must be cpu, cuda, cuda:N or mps"
    if name in {"reranker", "reader", "llm_model"}:
        ok = value is None or (isinstance(value, str) and value.strip() and not any(ord(c) < 32 for c in value))
        return None if ok else "must name a model on one line (or be unset)"
    if name == "llm_url":
        if value is None:
            return None
        url = urlsplit(value)
        ok = url.scheme in {"http", "https"} and bool(url.hostname) and not url.query and not url.fragment
        return None if ok else "must be an http(s) base URL such as http://127.0.0.1:11434/v1"
    if name == "llm_api_key":
        return None if isinstance(value, Secret) else "must be a Secret"
    if name == "api_keys":
        if not isinstance(value, tuple) or not all(isinstance(k, Secret) for k in value):
            return "must be comma-separated keys"
        short = [k for k in value if len(k.get()) < 16 or any(c.isspace() or ord(c) < 32 for c in k.get())]
        return "each key must be at least 16 characters, without spaces" if short else None
    if name == "follow_contact":
        # it goes into the User-Agent header as "(+contact)": printable ASCII, no parentheses
        ok = value is None or (isinstance(value, str) and 3 <= len(value) <= 200
                               and all(32 <= ord(c) < 127 and c not in "()" for c in value))
        return None if ok else "must be an e-mail address or URL (printable ASCII, 3-200 characters, no parentheses)"
    if name in {"api_hosts", "follow_hosts"}:
        if not isinstance(value, tuple):
            return "must be comma-separated host names"
        bad = [h for h in value if not (isinstance(h, str) and _is_host_name(h))]
        return (f"{bad[0]!r} is not a host name or IP address: list names without scheme, port or path "
                "(e.g. qabot.example.org,192.168.1.5)") if bad else None
    if name == "checkpoint_seconds":
        return _at_least(value, 0, whole=False)
    if name == "rate_per_minute":
        ok = _is_number(value) and math.isfinite(value) and value > 0
        return None if ok else "must be a number above 0"
    if name == "min_score":
        ok = value is None or (_is_number(value) and -1.0 <= value <= 1.0)
        return None if ok else "must be between -1 and 1 (a cosine similarity)"
    if name == "log_level":
        return None if value in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"
    if name == "device":
        return None if _DEVICE.fullmatch(value) else "must be cpu, cuda, cuda:N or mps"
    if name == "precision":
        return None if value in PRECISIONS else "must be auto, fp32 or bf16"
    if name == "model":
        return None if isinstance(value, str) and value.strip() else "must name a model or a model folder"
    if name in {"query_prompt", "passage_prompt"}:
        if value is None:
            return None
        if not value.strip():
            return "must not be blank (leave it unset for the model's default prompt)"
        return "must be one line" if any(ord(c) < 32 for c in value) else None
    if name == "telegram_api_url":
        if value is None:
            return None
        url = urlsplit(value)
        ok = url.scheme in {"http", "https"} and bool(url.hostname) and not url.query and not url.fragment
        return None if ok else "must be an http(s) URL such as https://api.telegram.org/bot"
    if name == "telegram_token":
        secret = value.get() if isinstance(value, Secret) else None
        if secret is None:
            return "must be a Secret"
        return None if not secret or _BOT_TOKEN.fullmatch(secret) else "does not look like a BotFather token (digits:letters)"
    if name in {"allowed_users", "allowed_chats"}:
        ok = isinstance(value, frozenset) and all(_is_int(v) for v in value)
        return None if ok else "must be a set of numeric ids"
    if name in {"allow_all", "log_messages", "sentence_leg"}:
        return None if isinstance(value, bool) else "must be true or false"
    if name == "index_dir":
        return None if isinstance(value, Path | PgUrl) else "must be a folder path or a postgresql:// URL"
    if name == "cache_dir":
        return None if isinstance(value, Path) or value is None else "must be a folder path"
    return None
