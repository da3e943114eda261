"""How much, how often, and the one log line per request.

``BodyLimit``   ASGI middleware: a body over ``max_bytes`` gets 413 before anything is parsed
                (by its Content-Length, or while a chunked body streams in)
``RequestLog``  ASGI middleware: one line per request, ``POST /v1/ask 200 84 ms key=1a2b3c4d``;
                the key id, never the key; never the question (the routes log it, only when
                QABOT_LOG_MESSAGES is on)
``Gate``        ASGI middleware: 401 without a valid key, 429 with Retry-After over the rate limit
``Limiter``     a token bucket per key id (or client address), on top of the bot's RateLimiter;
                used on the event loop only, so it needs no lock
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qabot.frontends.access import RateLimiter
from qabot.frontends.api.auth import KeyRing

log = logging.getLogger("qabot.frontends.api")

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a long chat history fits, a runaway upload does not


class BodyLimit:
    """Answer 413 to a request body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen, started, refused = 0, False, False

        async def counted() -> Message:
            # Over the limit: answer 413 now and tell the app the client left (FastAPI would turn
            # an exception raised here into a 400); whatever the app sends after that is dropped.
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                if not started:
                    await _too_large(send, self.max_bytes)
                return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)


async def _too_large(send: Send, limit: int) -> None:
    await send_error(send, 413, f"the request body is too large (at most {limit} bytes)", code="body_too_large")


class RequestLog:
    """One INFO line per request: method, path, status, milliseconds, key id (or client address)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            state: dict[str, Any] = scope.get("state") or {}
            who = f"key={state['key_id']}" if state.get("key_id") else f"client={client_address(scope)}"
            log.info("%s %s %d %.0f ms %s", scope["method"], scope["path"], status,
                     (time.perf_counter() - started) * 1000, who)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "-"


class Limiter:
    """Per-caller token buckets: ``burst`` requests at once, refilled at ``per_minute``."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self._buckets = RateLimiter(per_minute, burst)

    def wait(self, caller: str) -> float:
        """0 when ``caller`` may go on, else the seconds until it may (for Retry-After)."""
        key = int.from_bytes(hashlib.sha256(caller.encode("utf-8")).digest()[:8], "big")
        return self._buckets.try_acquire(key)


def retry_after(seconds: float) -> str:
    """Whole seconds, rounded up, at least 1 (HTTP's Retry-After takes integers)."""
    return str(max(1, math.ceil(seconds)))


class Gate:
    """Keys and rate limits for ``/v1/`` paths, before the body is read: 401 or 429 with Retry-After.

    With keys, a request needs ``Authorization: Bearer <key>``; it is then known by its key id
    (``scope["state"]["key_id"]``, which the request log shows). Without keys (loopback only),
    requests are limited per client address.
    """

    def __init__(self, app: ASGIApp, *, keys: KeyRing, limiter: Limiter, prefix: str = "/v1/") -> None:
        self.app, self.keys, self.limiter, self.prefix = app, keys, limiter, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        caller = f"client:{client_address(scope)}"
        if self.keys.required:
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            kid = self.keys.check(header)
            if kid is None:
                await send_error(send, 401, "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                                 code="invalid_api_key", headers=[(b"www-authenticate", b"Bearer")])
                return
            scope.setdefault("state", {})["key_id"] = kid
            caller = f"key:{kid}"
        wait = self.limiter.wait(caller)
        if wait > 0:
            await send_error(send, 429, f"too many requests: try again in {retry_after(wait)} s", code="rate_limited",
                             headers=[(b"retry-after", retry_after(wait).encode())])
            return
        await self.app(scope, receive, send)


async def send_error(send: Send, status: int, message: str, *, code: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """An error response in the API's one shape (OpenAI's ``{"error": {...}}``), straight from middleware."""
    kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, "invalid_request_error")
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
