"""A fake OpenAI-compatible chat completions server on 127.0.0.1, for the real ``openai`` client.

    with FakeOpenAI() as llm:
        llm.script("Putin landet um 11.00 Uhr in Alaska. [1]")      # the next reply
        llm.fail_next(status=429, retry_after=1)                     # or a failure first
        client = LLMClient(llm.base_url, "fake-model", api_key=Secret(llm.key), timeout=2)
        ... ; llm.requests[-1].messages                              # what the client sent

It speaks the wire format of ``POST /v1/chat/completions`` (JSON in, a ``chat.completion``
object out). Scripted replies are used in order; when none is left, ``responder(messages)``
makes one (default: a fixed sentence). A failure can be an HTTP status (with a
``Retry-After`` header for 429), ``"hang"`` (answers only after ``hang_seconds``, or when the
server stops), ``"garbage"`` (200 with a body that is not JSON) or ``"empty"`` (200, no
choices). Every request is recorded with its headers, so a test can see the key was sent
(and nowhere else). Everything stops by itself: daemon threads, ``stop()`` wakes a hang.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

KEY = "sk-fake-0123456789-never-log-me"


@dataclass
class Request:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    outcome: str = "ok"  # "ok", the failure's status, "hang", "garbage", "empty"

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])


@dataclass
class _Step:
    content: str | None = None
    status: int | str | None = None  # a failure: HTTP status, "hang", "garbage", "empty"
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class FakeOpenAI:
    """The fake server; see the module docstring."""

    key: str = KEY
    model: str = "fake-model"
    hang_seconds: float = 5.0
    responder: Callable[[list[dict[str, Any]]], str] = field(default=lambda messages: "NOT_IN_ARCHIVE")
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._steps: list[_Step] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- driving it ---------------------------------------------------------------------------

    def script(self, *contents: str, delay: float = 0.0) -> None:
        """The next replies, in order (each after ``delay`` seconds)."""
        with self._lock:
            self._steps.extend(_Step(content=c, delay=delay) for c in contents)

    def fail_next(self, times: int = 1, *, status: int | str = 500, retry_after: float | None = None) -> None:
        """Make the next ``times`` requests fail with ``status`` (or "hang", "garbage", "empty")."""
        with self._lock:
            self._steps.extend(_Step(status=status, retry_after=retry_after) for _ in range(times))

    # -- answering ----------------------------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        request = Request(path, headers, body, time.monotonic())
        with self._lock:
            self.requests.append(request)
            step = self._steps.pop(0) if self._steps else None
        if not path.rstrip("/").endswith("/chat/completions"):
            return 404, {}, _json({"error": {"message": "not found", "type": "invalid_request_error"}})
        if headers.get("authorization") != f"Bearer {self.key}":
            return 401, {}, _json({"error": {"message": "bad key", "type": "invalid_request_error"}})
        if step is not None and step.status is not None:
            request.outcome = str(step.status)
            return self._failure(step)
        if step is not None and step.delay:
            self._stopping.wait(step.delay)
        content = step.content if step is not None and step.content is not None else self.responder(request.messages)
        return 200, {}, _json(_completion(self.model, content))

    def _failure(self, step: _Step) -> tuple[int, dict[str, str], bytes]:
        if step.status == "hang":
            self._stopping.wait(self.hang_seconds)
            return 504, {}, _json({"error": {"message": "gateway timeout"}})
        if step.status == "garbage":
            return 200, {}, b'{"id": "x", "choices": [ {"message": '  # cut off: not JSON
        if step.status == "empty":
            return 200, {}, _json({**_completion(self.model, ""), "choices": []})
        headers = {"retry-after": f"{step.retry_after:g}"} if step.retry_after is not None else {}
        return int(step.status or 500), headers, _json({"error": {"message": f"fake failure {step.status}",
                                                                  "type": "server_error"}})


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode("utf-8")


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung request never blocks shutdown

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client giving up on a hang is normal
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, data = self.fake.handle(self.path, headers, raw)
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded instead
