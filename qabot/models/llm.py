"""The LLM seam: one chat completion from an OpenAI-compatible server (Ollama, llama.cpp's
server, vLLM, a hosted API), through the official ``openai`` client.

    >>> client = LLMClient("http://127.0.0.1:11434/v1", "qwen2.5:7b-instruct", timeout=30)
    >>> client.complete([{"role": "user", "content": "..."}]).text        # raises LLMError
    >>> client.try_complete([...])                                         # None on any failure

Every failure becomes an :class:`LLMError` with a ``kind``: ``"connection"`` (nothing
listening, DNS, refused), ``"timeout"``, ``"rate_limited"`` (429; a short ``Retry-After`` is
waited once and the call retried), ``"server"`` (5xx), ``"refused"`` (another 4xx: a bad
key, an unknown model) or ``"bad_reply"`` (not JSON, no choices, no text). ``try_complete``
logs the first failure of each kind as a warning and later ones at DEBUG, so a server that
is down costs one log line, not one per question. The API key lives in a
:class:`~qabot.config.Secret`; it is handed to the client and nowhere else: not in a repr,
a log line or an error message. Credentials in the base URL (``http://user:password@host/v1``,
a proxy with basic auth) are taken out of it and sent as the ``Authorization: Basic`` header
(what httpx made of them, and what such a proxy wants); every message shows the URL as
``http://***@host/v1``, and the openai and httpx loggers never see them.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from qabot.config import Secret
from qabot.errors import QabotError
from qabot.locations import redact

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 5.0  # seconds; a 429 asking for a longer wait is a failure (the user has an answer already)
NO_KEY = "no-key"  # local servers (Ollama, llama.cpp) ignore the key, but the client wants one
KINDS = ("connection", "timeout", "rate_limited", "server", "refused", "bad_reply")


class LLMError(QabotError):
    """The LLM call failed; ``kind`` is one of :data:`KINDS`, the message says why (never the key)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Completion:
    """One reply: its text, the model that wrote it, and how long the call took."""

    text: str
    model: str
    seconds: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LLMClient:
    """Chat completions from one model at one OpenAI-compatible base URL; safe to share by threads.

    ``timeout`` bounds each HTTP call (connect, read); ``max_retries`` is the openai client's
    own retrying of connection errors and 5xx (0 by default: a slow answer is worse than the
    extractive one the user already has). ``temperature`` 0 keeps answers close to the text.
    """

    def __init__(self, base_url: str, model: str, *, api_key: Secret | str | None = None, timeout: float = 30.0,
                 max_retries: int = 0, max_tokens: int = 400, temperature: float = 0.0,
                 max_retry_after: float = MAX_RETRY_AFTER) -> None:
        import openai  # imported here: only a configured LLM needs it

        key = api_key if isinstance(api_key, Secret) else Secret(api_key or "")
        plain, basic = split_credentials(base_url.rstrip("/"))
        self.base_url = redact(base_url.rstrip("/"))  # for messages and repr: credentials masked
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_retry_after = max_retry_after
        # The openai client gets the URL without credentials (it and httpx log request URLs at
        # INFO/DEBUG); a header it is given wins over its own bearer header, as httpx's basic auth did.
        headers = {"Authorization": basic.get()} if basic else None
        self._client = openai.OpenAI(base_url=plain, api_key=key.get() or NO_KEY, timeout=timeout,
                                     max_retries=max_retries, default_headers=headers)
        self._logged: set[str] = set()
        self._logged_lock = threading.Lock()

    @property
    def name(self) -> str:
        """The model's name, as ``Answer.models.llm`` reports it."""
        return self.model

    def __repr__(self) -> str:
        return f"LLMClient(base_url={self.base_url!r}, model={self.model!r}, timeout={self.timeout:g})"

    def complete(self, messages: Sequence[Mapping[str, str]]) -> Completion:
        """The model's reply to ``messages`` (``[{"role": ..., "content": ...}]``); LLMError on failure."""
        started = time.perf_counter()
        try:
            response = self._create(messages)
        except LLMError as exc:
            if exc.kind != "rate_limited" or (wait := getattr(exc, "retry_after", None)) is None:
                raise
            log.info("the LLM asked to wait %.1f s (429); retrying once", wait)
            time.sleep(wait)
            response = self._create(messages)
        return _completion(response, self.model, time.perf_counter() - started)

    def try_complete(self, messages: Sequence[Mapping[str, str]]) -> Completion | None:
        """:meth:`complete`, or None when it fails (logged once per kind of failure)."""
        try:
            return self.complete(messages)
        except LLMError as exc:
            self._log_failure(exc)
            return None

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    # -- internals ------------------------------------------------------------------------------

    def _create(self, messages: Sequence[Mapping[str, str]]) -> Any:
        """One request, with the openai client's exceptions turned into LLMError."""
        import openai

        try:
            return self._client.chat.completions.create(
                model=self.model, messages=[dict(m) for m in messages],  # type: ignore[misc]
                temperature=self.temperature, max_tokens=self.max_tokens,
            )
        except openai.APITimeoutError:  # a subclass of APIConnectionError: test it first
            raise LLMError("timeout", f"the LLM at {self.base_url} did not answer within {self.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise LLMError("connection", f"cannot reach the LLM at {self.base_url} ({type(exc.__cause__ or exc).__name__})") from None
        except openai.RateLimitError as exc:
            error = LLMError("rate_limited", f"the LLM at {self.base_url} refused: too many requests (429)")
            wait = _retry_after(exc.response.headers)
            if wait is not None and wait <= self.max_retry_after:
                error.retry_after = wait  # type: ignore[attr-defined]
            raise error from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status >= 500:
                raise LLMError("server", f"the LLM at {self.base_url} failed with HTTP {status}") from None
            raise LLMError("refused", f"the LLM at {self.base_url} refused the request: HTTP {status} "
                                      f"(check QABOT_LLM_MODEL and QABOT_LLM_API_KEY)") from None
        except (openai.APIResponseValidationError, ValueError) as exc:  # not JSON, or not a completion
            raise LLMError("bad_reply", f"the LLM at {self.base_url} sent a malformed reply ({type(exc).__name__})") from None

    def _log_failure(self, exc: LLMError) -> None:
        with self._logged_lock:
            first = exc.kind not in self._logged
            self._logged.add(exc.kind)
        if first:
            log.warning("%s; answering without the LLM (logged once per kind of failure)", exc)
        else:
            log.debug("%s", exc)


def split_credentials(url: str) -> tuple[str, Secret]:
    """``url`` without its ``user:password@``, and the ``Basic ...`` header value they make
    (an empty Secret when the URL has none). Percent-escapes in them are decoded, as httpx does."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, Secret("")
    host = parts.netloc.rsplit("@", 1)[1]
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    basic = Secret("Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii"))
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), basic


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header; None when absent or a date."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            return None
        return seconds if seconds >= 0 else None
    return None


def _completion(response: Any, model: str, seconds: float) -> Completion:
    """The reply's text, or LLMError("bad_reply") when there is none."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise LLMError("bad_reply", "the LLM's reply has no choices")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    if not isinstance(text, str) or not text.strip():
        raise LLMError("bad_reply", "the LLM's reply has no text")
    usage = getattr(response, "usage", None)
    return Completion(
        text=text.strip(), model=str(getattr(response, "model", None) or model), seconds=seconds,
        prompt_tokens=getattr(usage, "prompt_tokens", None), completion_tokens=getattr(usage, "completion_tokens", None),
    )


def llm_for(url: str | None, model: str | None, *, api_key: Secret, timeout: float) -> LLMClient | None:
    """The configured LLM (QABOT_LLM_URL and QABOT_LLM_MODEL), or None when the seam is off.

    One of the two without the other is a configuration mistake: ConfigError naming both.
    """
    from qabot.errors import ConfigError

    if not url and not model:
        return None
    if not url or not model:
        raise ConfigError("QABOT_LLM_URL and QABOT_LLM_MODEL go together: set both to use an LLM, or neither")
    return LLMClient(url, model, api_key=api_key, timeout=timeout)
