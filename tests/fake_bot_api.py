"""A fake Telegram Bot API on 127.0.0.1 for the real python-telegram-bot client to talk to.

    with FakeBotApi() as api:
        app = build_application(Settings.from_env({}, telegram_token=api.token,
                                                  telegram_api_url=api.base_url), retriever)
        update_id = api.push_message("When does Putin land?", user_id=7)
        ... run the app (see :func:`running`) ...
        calls = await api.until(lambda: api.replies(7))

It speaks the real wire format: ``POST /bot<token>/<method>`` with form, multipart or JSON
bodies (PTB sends form fields with nested objects JSON-encoded), answering
``{"ok": true, "result": ...}`` with proper Message objects. Every call is recorded (a getUpdates
call's ``allowed_updates`` among its params, though every queued update is delivered); the
next N calls of a method can be made to fail (500, 429 with ``retry_after``, any status
with a description) or to hang past the client's timeout. HTML in ``parse_mode=HTML``
messages is checked like Telegram does (known tags, balanced), and so is the 4096 limit.
Everything stops by itself: daemon threads, bounded long polls, ``stop()`` wakes sleepers.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import html
import json
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")
TOKEN = "123456789:AAFakeTokenForTests-qabot_0123456789"
# the fields PTB sends JSON-encoded inside form data
JSON_FIELDS = {"reply_markup", "entities", "allowed_updates", "commands", "scope", "link_preview_options",
               "reply_parameters", "caption_entities"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
                "tg-spoiler", "blockquote", "tg-emoji"}


@dataclass
class Call:
    """One request the fake received: the method, its decoded parameters, and how it went."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    status: int | str = 200  # HTTP status, or "hang"
    result: Any = None


@dataclass
class _Failure:
    status: int | str  # an HTTP status, or "hang"
    retry_after: int | None = None
    description: str | None = None


class HtmlCheck(HTMLParser):
    """Telegram's HTML rules, roughly: known tags only, balanced, known entities only."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"unsupported start tag <{tag}>")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected end tag </{tag}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in {"lt", "gt", "amp", "quot"}:
            self.problems.append(f"unsupported entity &{name};")
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))


def check_html(markup: str) -> tuple[list[str], str]:
    """(problems, plain text) of a Telegram HTML message; no problems means Telegram takes it."""
    checker = HtmlCheck()
    checker.feed(markup)
    checker.close()
    problems = checker.problems + [f"unclosed <{tag}>" for tag in checker.stack]
    return problems, "".join(checker.text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeBotApi:
    """The fake server; see the module docstring. ``max_poll`` caps every long poll."""

    def __init__(self, token: str = TOKEN, *, username: str = "qabot_test_bot", bot_id: int = 4242,
                 max_poll: float = 2.0, hang_seconds: float = 2.5) -> None:
        self.token = token
        self.username = username
        self.bot_id = bot_id
        self.max_poll = max_poll
        self.hang_seconds = hang_seconds
        self.calls: list[Call] = []
        self.pushed_at: dict[int, float] = {}
        self._updates: list[dict[str, Any]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._next_update = 1
        self._next_message = 1000
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
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
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "qabot test", "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
                "can_connect_to_business": False, "has_main_web_app": False}

    # -- driving it -------------------------------------------------------------------------------

    def fail_next(self, method: str, times: int = 1, *, status: int | str = 500, retry_after: int | None = None,
                  description: str | None = None) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``status`` (or "hang")."""
        with self._cond:
            self._failures.setdefault(method, []).extend(_Failure(status, retry_after, description) for _ in range(times))

    def pending_failures(self, method: str) -> int:
        with self._cond:
            return len(self._failures.get(method, []))

    def push_message(self, text: str, *, user_id: int, chat_id: int | None = None, chat_type: str = "private",
                     language_code: str | None = "en", reply_to_bot: bool = False, edited: bool = False) -> int:
        """Queue a text message from user ``user_id`` (chat = the user's private chat unless given).

        ``edited``: queue it as an ``edited_message`` update instead (an earlier message whose
        text the user changed). It is delivered whatever ``allowed_updates`` says, as Telegram
        does with updates created before a getUpdates call changed that setting.
        """
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": language_code}
        if language_code is None:
            del user["language_code"]
        chat = self._chat(chat_id if chat_id is not None else user_id, chat_type, user)
        message: dict[str, Any] = {"message_id": self._message_id(), "date": int(time.time()), "chat": chat,
                                   "from": user, "text": text}
        entities = _entities(text)
        if entities:
            message["entities"] = entities
        if reply_to_bot:
            message["reply_to_message"] = {"message_id": self._message_id(), "date": int(time.time()), "chat": chat,
                                           "from": self.bot_user, "text": "an earlier answer"}
        if edited:
            message["edit_date"] = int(time.time())
            return self._push({"edited_message": message})
        return self._push({"message": message})

    def push_callback(self, data: str, *, user_id: int, chat_id: int | None = None, message_id: int = 1,
                      language_code: str | None = "en") -> int:
        """Queue a press on an inline button with ``data`` under bot message ``message_id``."""
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": language_code}
        chat = self._chat(chat_id if chat_id is not None else user_id, "private", user)
        query = {"id": f"cq{self._next_update}", "from": user, "chat_instance": f"ci{chat['id']}", "data": data,
                 "message": {"message_id": message_id, "date": int(time.time()), "chat": chat,
                             "from": self.bot_user, "text": "an answer"}}
        return self._push({"callback_query": query})

    async def until(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Poll ``predicate`` (without blocking the event loop) until it returns something
        truthy, which is returned; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s; calls: {[c.method for c in self.calls]}")
            await asyncio.sleep(0.02)

    def calls_to(self, method: str, *, ok: bool = True) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method and (c.status == 200) == ok]

    def replies(self, chat_id: int) -> list[Call]:
        """The messages the bot sent successfully to ``chat_id``, in order."""
        return [c for c in self.calls_to("sendMessage") if int(c.params["chat_id"]) == chat_id]

    def latency(self, update_id: int, chat_id: int) -> float | None:
        """Seconds from queueing ``update_id`` to the bot's first message in ``chat_id`` after it."""
        pushed = self.pushed_at[update_id]
        times = [c.at for c in self.replies(chat_id) if c.at >= pushed]
        return min(times) - pushed if times else None

    # -- internals --------------------------------------------------------------------------------

    def _chat(self, chat_id: int, chat_type: str, user: dict[str, Any]) -> dict[str, Any]:
        if chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": f"Group {chat_id}"}
        with self._cond:
            self._chats[chat_id] = chat
        return chat

    def _message_id(self) -> int:
        with self._cond:
            self._next_message += 1
            return self._next_message

    def _push(self, body: dict[str, Any]) -> int:
        with self._cond:
            update_id = self._next_update
            self._next_update += 1
            self._updates.append({"update_id": update_id, **body})
            self.pushed_at[update_id] = time.monotonic()
            self._cond.notify_all()
        return update_id

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), self.max_poll)
        with self._cond:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]  # offset confirms the rest
            while not self._updates and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self._updates[:limit])

    def _message(self, params: dict[str, Any], text: str) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        chat = self._chats.get(chat_id) or {"id": chat_id, "type": "private" if chat_id > 0 else "group",
                                            **({"first_name": "X"} if chat_id > 0 else {"title": "G"})}
        message = {"message_id": self._message_id(), "date": int(time.time()), "chat": chat,
                   "from": self.bot_user, "text": text}
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        return message

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any], Call]:
        """Answer one API call: (HTTP status, JSON body, the recorded call)."""
        call = Call(method, params, time.monotonic())
        with self._cond:
            self.calls.append(call)
            queue = self._failures.get(method)
            failure = queue.pop(0) if queue else None
        if failure is not None:
            call.status = failure.status
            if failure.status == "hang":
                self._stopping.wait(self.hang_seconds)
                return 504, _error(504, "Gateway Timeout"), call
            body = _error(int(failure.status), failure.description or f"fake failure {failure.status}")
            if failure.retry_after is not None:
                body["description"] = f"Too Many Requests: retry after {failure.retry_after}"
                body["parameters"] = {"retry_after": failure.retry_after}
            return int(failure.status), body, call
        try:
            result = self._result(method, params)
        except _ApiError as exc:
            call.status = exc.status
            return exc.status, _error(exc.status, exc.description), call
        call.result = result
        return 200, {"ok": True, "result": result}, call

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return self.bot_user
        if method == "getUpdates":
            return self._get_updates(params)
        if method in {"deleteWebhook", "setMyCommands", "sendChatAction", "answerCallbackQuery", "close", "logOut"}:
            return True
        if method == "getMyCommands":
            return []
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        if method in {"sendMessage", "editMessageText"}:
            text = str(params.get("text") or "")
            if params.get("parse_mode") == "HTML":
                problems, text = check_html(text)
                if problems:
                    raise _ApiError(400, f"Bad Request: can't parse entities: {problems[0]}")
            if not text.strip():
                raise _ApiError(400, "Bad Request: message text is empty")
            if utf16_len(text) > 4096:
                raise _ApiError(400, "Bad Request: message is too long")
            message = self._message(params, text)
            if method == "editMessageText":
                message["message_id"] = int(params["message_id"])
                message["edit_date"] = int(time.time())
            return message
        raise _ApiError(404, "Not Found")


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": status, "description": description}


def _entities(text: str) -> list[dict[str, Any]]:
    """bot_command and mention entities, with UTF-16 offsets as Telegram sends them."""
    entities: list[dict[str, Any]] = []
    for match in re.finditer(r"\S+", text):
        word, offset = match.group(0), utf16_len(text[: match.start()])
        if word.startswith("/") and offset == 0 and len(word) > 1:
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(word)})
        elif word.startswith("@") and len(word) > 1:
            entities.append({"type": "mention", "offset": offset, "length": utf16_len(word.rstrip("?!.,:;"))})
    return entities


def _decode(params: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung request never blocks shutdown
    # listen()'s backlog (socketserver's default is 5): a bot answering dozens of updates at
    # once opens that many connections, and the ones past the backlog were reset (httpx
    # ReadError, then retried), which Telegram does not do
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients closing keep-alive connections is normal
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Parses one request (query string, form, multipart or JSON) and hands it to the fake."""

    api: FakeBotApi
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects of api.telegram.org

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _serve(self, body: bytes) -> None:
        url = urlsplit(self.path)
        prefix = f"/bot{self.api.token}/"
        if not url.path.startswith(prefix):
            status, payload = 401 if url.path.startswith("/bot") else 404, _error(401, "Unauthorized")
        else:
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            params.update(self._body(body))
            status, payload, _ = self.api.handle(url.path[len(prefix):], _decode(params))
        data = json.dumps(payload).encode("utf-8")
        with contextlib.suppress(OSError):  # the client may have given up (a hang): nobody to tell
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _body(self, body: bytes) -> dict[str, Any]:
        kind = self.headers.get("Content-Type", "")
        if not body:
            return {}
        if kind.startswith("application/json"):
            return json.loads(body)
        if kind.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {kind}\r\n\r\n".encode() + body)
            return {part.get_param("name", header="content-disposition"): part.get_content()
                    for part in message.iter_parts()}
        return {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines hold the token; the calls are recorded instead


@contextlib.asynccontextmanager
async def running(application: Any, *, poll_timeout: int = 1) -> AsyncIterator[Any]:
    """Run a PTB ``application`` (initialize, start, poll) for the block, then stop it."""
    async with application:
        await application.start()
        await application.updater.start_polling(poll_interval=0.0, timeout=poll_timeout,
                                                allowed_updates=["message", "callback_query"])
        try:
            yield application
        finally:
            await application.updater.stop()
            await application.stop()


async def ask_all_at_once(api: FakeBotApi, questions: dict[int, str], *, timeout: float = 60.0) -> dict[int, float]:
    """Queue one question per user (all at once), wait until every user has a reply, and
    return each user's latency in seconds (queued -> the bot's first message, as the fake saw it)."""
    pushed = {user: api.push_message(text, user_id=user) for user, text in questions.items()}
    await api.until(lambda: all(api.latency(update, user) is not None for user, update in pushed.items()), timeout)
    return {user: api.latency(update, user) or 0.0 for user, update in pushed.items()}
