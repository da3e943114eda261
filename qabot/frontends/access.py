"""Who may ask, how often, the short-lived results behind inline buttons, and a quiet log.

No I/O here; only ``protect_logs`` touches global state (logger levels and filters),
and only the bot's entry point calls it.

``AccessPolicy``   default-deny allowlist of user ids and chat ids (``allow_all`` opens it)
``RateLimiter``    a token bucket per user, with an injectable clock for tests; ``admit`` also
                   says whether to tell the user to wait (once per window) or to say nothing
``Admission``      what ``admit`` decided for one message: go on, tell, or stay quiet
``ResultStore``    results kept server-side under short ids (Telegram's callback_data is
                   at most 64 bytes), with an expiry and a size bound
``RedactingFilter`` a logging filter that replaces a secret (the bot token) in every record
``protect_logs``   what the bot's entry point does with it, and with chatty HTTP loggers

The bot (qabot/bot.py) holds one of each; tests drive them with a fake clock.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from qabot.config import Settings

T = TypeVar("T")
Clock = Callable[[], float]


@dataclass(frozen=True)
class AccessPolicy:
    """Default deny: a user may ask when listed, when the chat is listed, or when ``allow_all``."""

    allowed_users: frozenset[int] = frozenset()
    allowed_chats: frozenset[int] = frozenset()
    allow_all: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        return cls(settings.allowed_users, settings.allowed_chats, settings.allow_all)

    def allows(self, user_id: int | None, chat_id: int | None = None) -> bool:
        """True when ``user_id`` (in chat ``chat_id``) may ask; unknown senders (None) never may."""
        if self.allow_all:
            return True
        if user_id is not None and user_id in self.allowed_users:
            return True
        # a listed group opens the bot to its members, but a message without a sender
        # (anonymous admins, channels) is still refused: the operator cannot list it
        return user_id is not None and chat_id is not None and chat_id in self.allowed_chats


@dataclass(frozen=True)
class Admission:
    """What :meth:`RateLimiter.admit` decided for one try: go on, or wait ``wait`` seconds.

    ``tell`` is True for the first refused try after the key last went through: the one to
    answer with "slow down". The tries refused after it get ``tell=False``: say nothing, so
    that a flood of N messages gets ``burst`` answers and one "slow down", not N replies.
    """

    wait: float = 0.0  # seconds until a token is free; 0.0 when allowed
    tell: bool = False

    @property
    def allowed(self) -> bool:
        return self.wait == 0.0


class RateLimiter:
    """One token bucket per key: ``burst`` questions at once, refilled at ``per_minute``.

    ``clock`` returns seconds (monotonic); tests pass a fake one. At most ``max_keys``
    buckets are kept: full buckets are dropped first, since a full bucket is the same
    as a missing one (and its "told" mark is stale: its window has opened). A lock makes
    each try atomic, for callers on threads; on the event loop nothing in it awaits.
    """

    def __init__(self, per_minute: float, burst: int, *, clock: Clock = time.monotonic, max_keys: int = 10_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be above 0 and burst at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[int, tuple[float, float, bool]] = {}  # key -> (tokens, at, told since the last token)
        self._lock = threading.Lock()

    def admit(self, key: int) -> Admission:
        """Take one token for ``key``, or say how long to wait and whether to tell them so.

        The "told" mark is cleared only when a try goes through, i.e. once the window has
        opened and the key used it; the next over-limit try is then told again.
        """
        with self._lock:
            now = self.clock()
            tokens, at, told = self._buckets.get(key, (self.burst, now, False))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now, False)
                self._prune(now)  # only a try that goes through can add a key: a new bucket is full
                return Admission()
            self._buckets[key] = (tokens, now, True)
            return Admission(wait=(1.0 - tokens) / self.rate, tell=not told)

    def try_acquire(self, key: int) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is free."""
        return self.admit(key).wait

    def _prune(self, now: float) -> None:
        if len(self._buckets) <= self.max_keys:
            return
        for key, (tokens, at, _) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[key]
        while len(self._buckets) > self.max_keys:  # all busy: forget the oldest (dicts keep order)
            del self._buckets[next(iter(self._buckets))]


class ResultStore(Generic[T]):
    """Values under short random ids that expire after ``ttl`` seconds; at most ``max_items``.

    Ids are 8 URL-safe characters, so ``"more:" + id`` fits callback_data's 64 bytes with
    room to spare, and they cannot be guessed to read another chat's results.
    """

    def __init__(self, *, ttl: float = 3600.0, max_items: int = 2000, clock: Clock = time.monotonic) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, value: T) -> str:
        """Store ``value`` and return its new id; evicts expired and then oldest entries."""
        now = self.clock()
        self._evict(now)
        key = secrets.token_urlsafe(6)
        while key in self._items:  # pragma: no cover - 48 random bits
            key = secrets.token_urlsafe(6)
        self._items[key] = (now + self.ttl, value)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return key

    def get(self, key: str) -> T | None:
        """The value under ``key``, or None when it never existed, expired or was evicted."""
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self.clock() >= expires:
            del self._items[key]
            return None
        return value

    def _evict(self, now: float) -> None:
        # insertion order == expiry order (one ttl for all), so expired ones are at the front
        while self._items:
            key, (expires, _) = next(iter(self._items.items()))
            if expires > now:
                break
            del self._items[key]


class RedactingFilter(logging.Filter):
    """Replaces ``secret`` with ``***`` in a record's message and traceback.

    Attach it to handlers (not loggers): a logger's filters do not see records that
    propagate from its children, a handler's do.
    """

    def __init__(self, secret: str, *, mask: str = "***") -> None:
        super().__init__()
        self.secret = secret
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secret:
            return True
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, self.mask), None
        if record.exc_info and not record.exc_text:
            # format the traceback now, so that the text the handler prints is the redacted one
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = record.exc_text.replace(self.secret, self.mask)
        return True


def protect_logs(token: str, *, log_messages: bool = False) -> None:
    """Keep the token (and, unless ``log_messages``, what users write) out of the logs.

    httpx logs every request URL, which holds the token, at INFO; PTB logs its URL, every
    update and every call's parameters (message texts) at DEBUG. The first are silenced,
    the token is redacted from whatever else reaches the root handlers.
    """
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not log_messages:
        logging.getLogger("telegram").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) and f.secret == token for f in handler.filters):
            handler.addFilter(RedactingFilter(token))
