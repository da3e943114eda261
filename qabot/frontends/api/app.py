"""The FastAPI application: thin routes wired in :func:`create_app`.

Every route that touches the index runs its work in the API's thread pool (never on the event
loop), on the Retriever that :class:`~qabot.frontends.reloading.RetrieverHolder` hands out: a
rebuilt index is reopened between requests, and requests in flight finish on the old one.
Keys, rate limits, body size and the request log are ASGI middleware (limits.py), so a request
without a valid key is refused before its body is even read; so are the Host check of a keyless
server and the browser security headers (browser.py). The web page is three files served as
they are: page.html, page.css and page.js (no inline script, so its CSP can forbid it).

Errors have one shape, OpenAI's, so that both its clients and people can read them:
``{"error": {"message", "type", "param", "code"}}`` (validation errors add ``detail``, the list
FastAPI gives, without the offending input).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from qabot.answering.conversation import expand_followup
from qabot.answering.retriever import Retriever
from qabot.config import MAX_TOP_K, Settings
from qabot.errors import QabotError, QuestionError, StoreError
from qabot.frontends.api import openai_compat
from qabot.frontends.api.auth import KeyRing
from qabot.frontends.api.browser import BrowserHeaders, HostCheck
from qabot.frontends.api.limits import BodyLimit, Gate, Limiter, RequestLog
from qabot.frontends.reloading import RetrieverHolder
from qabot.store.backends import index_stats

log = logging.getLogger("qabot.frontends.api")
T = TypeVar("T")
PAGE = Path(__file__).with_name("page.html")
ASSETS = {"/page.css": "text/css; charset=utf-8", "/page.js": "text/javascript; charset=utf-8"}
HARD_MAX_CHARS = 100_000  # pydantic's cap; the configured QABOT_MAX_QUESTION_CHARS is checked below it


def default_workers() -> int:
    """Threads for retrieval: one per core (encoding is CPU-bound; more threads only contend)."""
    return max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2)


class AskBody(BaseModel):
    """``POST /v1/ask``: a question, how many passages to cite, and an optional date range."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=HARD_MAX_CHARS, examples=["When does Putin land in Alaska?"])
    k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    since: date | None = None
    until: date | None = None


class SearchBody(AskBody):
    """``POST /v1/search``: ranked passages only."""

    k: int | None = Field(default=10, ge=1, le=1000)


@dataclass
class ApiState:
    """What the routes share (``app.state.qabot``)."""

    settings: Settings
    holder: RetrieverHolder
    pool: ThreadPoolExecutor

    async def call(self, work: Callable[[Retriever], T]) -> T:
        """``work(retriever)`` in the thread pool, on the current (possibly reopened) retriever."""
        async with self.holder.use() as retriever:
            return await asyncio.get_running_loop().run_in_executor(self.pool, work, retriever)

    def checked(self, request: Request, question: str, since: date | None = None, until: date | None = None) -> str:
        """The question, within QABOT_MAX_QUESTION_CHARS and with a sane date range, else 422."""
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise _invalid("question", f"the question is too long ({len(question)} characters; at most {limit})")
        if since and until and since > until:
            raise _invalid("until", f"until ({until}) is before since ({since})")
        if self.settings.log_messages:
            log.info("question from %s: %s", _who(request), question)
        return question


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


def _who(request: Request) -> str:
    key = getattr(request.state, "key_id", None)
    return f"key={key}" if key else f"client={request.client.host if request.client else '-'}"


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    kind = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind if status < 500 else "server_error", "param": param, "code": code}}


def create_app(settings: Settings, holder: RetrieverHolder, *, workers: int | None = None) -> FastAPI:
    """The application: ``holder`` gives each request its Retriever; ``workers`` threads retrieve."""
    state = ApiState(settings, holder, ThreadPoolExecutor(workers or default_workers(), thread_name_prefix="qabot-api"))
    page = PAGE.read_text(encoding="utf-8")
    assets = {path: (PAGE.with_name(path[1:]).read_text(encoding="utf-8"), kind) for path, kind in ASSETS.items()}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.pool.shutdown(wait=True)  # uvicorn has drained the requests; finish what they started
        holder.close()

    app = FastAPI(title="qabot", summary="Ask a German news archive; get the sentence that answers, with sources.",
                  version="1", lifespan=lifespan)
    app.state.qabot = state
    bearer = [Depends(HTTPBearer(auto_error=False, description="One of QABOT_API_KEYS (not needed on loopback without keys)"))]

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/page.css", include_in_schema=False)
    @app.get("/page.js", include_in_schema=False)
    async def asset(request: Request) -> Response:
        text, kind = assets[request.url.path]
        return Response(text, media_type=kind, headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Alive (no index needed, no key)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> dict[str, Any]:
        """An index is loaded: its generation and counts (reopened first when one was published)."""
        stats = await state.call(lambda r: {"generation": r.store.manifest.generation, **r.stats()})
        stats.pop("newest_title", None)
        return {"status": "ready", **stats}

    @app.post("/v1/ask", tags=["answers"], dependencies=bearer)
    async def ask(body: AskBody, request: Request) -> dict[str, Any]:
        """The same object as ``qabot ask --json``."""
        question = state.checked(request, body.question, body.since, body.until)
        # refine: the checked LLM reply where one is configured (a no-op otherwise)
        answer = await state.call(lambda r: r.refine(r.ask(question, k=body.k, since=body.since, until=body.until)))
        return answer.to_dict()

    @app.post("/v1/search", tags=["answers"], dependencies=bearer)
    async def search(body: SearchBody, request: Request) -> dict[str, Any]:
        """The same object as ``qabot search --json``: ``{"question", "passages"}``."""
        question = state.checked(request, body.question, body.since, body.until)
        passages = await state.call(lambda r: r.search(question, k=body.k, since=body.since, until=body.until))
        return {"question": " ".join(question.split()), "passages": [p.to_dict() for p in passages]}

    @app.get("/v1/stats", tags=["index"], dependencies=bearer)
    async def stats() -> dict[str, Any]:
        """The same object as ``qabot stats --json``."""
        folder = holder.index_dir or settings.index_dir
        return await asyncio.get_running_loop().run_in_executor(state.pool, index_stats, folder)

    @app.get("/v1/models", tags=["openai"], dependencies=bearer)
    async def models() -> dict[str, Any]:
        """OpenAI-compatible: the one model, ``qabot``."""
        return openai_compat.models_list()

    @app.post("/v1/chat/completions", tags=["openai"], dependencies=bearer)
    async def chat(body: openai_compat.ChatBody, request: Request) -> Response:
        """OpenAI-compatible chat: the last user message is the question; ``stream`` sends SSE."""
        if body.model != openai_compat.MODEL_ID:
            return JSONResponse(error_body(404, f"the model {body.model!r} does not exist; use 'qabot'", param="model",
                                           code="model_not_found"), status_code=404)
        question, previous = _chat_question(body)
        asked = expand_followup(" ".join(state.checked(request, question).split()), previous)
        answer = await state.call(lambda r: r.refine(r.ask(asked)))
        return openai_compat.reply(answer, model=body.model, stream=body.stream)

    _wire_errors(app)
    keys = KeyRing(settings.api_keys)
    # add_middleware puts each one outside the ones before it: the request meets them bottom up
    app.add_middleware(BodyLimit)
    app.add_middleware(Gate, keys=keys, limiter=Limiter(settings.api_rate_per_minute, settings.api_rate_burst))
    app.add_middleware(HostCheck, listed=settings.api_hosts, any_host=keys.required)  # before the rate limit it would use up
    app.add_middleware(BrowserHeaders)  # on every response, 421, 401 and 413 included
    app.add_middleware(RequestLog)  # outermost: sees every status, 421, 401 and 413 included
    return app


def _chat_question(body: openai_compat.ChatBody) -> tuple[str, str | None]:
    try:
        question, previous = openai_compat.question_of(body.messages)
    except ValueError as exc:
        raise _invalid("messages", str(exc)) from None
    if not question.strip():
        raise _invalid("messages", "the last user message is empty")
    return question, previous


def _wire_errors(app: FastAPI) -> None:
    """Every error as ``{"error": {...}}``: validation 422 names the field; QabotError 422/503."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in {"loc", "msg", "type"}} for e in exc.errors()]
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        if first.get("type") == "json_invalid":  # its loc is ("body", offset)
            where, first = "body", {**first, "msg": f"not valid JSON (at character {where}): {first['msg']}"}
        body = error_body(422, f"{where}: {first['msg']}", param=where, code="invalid_value")
        return JSONResponse({**body, "detail": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(QabotError)
    async def qabot_error(_: Request, exc: QabotError) -> JSONResponse:
        if isinstance(exc, QuestionError):
            return JSONResponse(error_body(422, f"question: {exc}", param="question", code="invalid_value"), status_code=422)
        status = 503 if isinstance(exc, StoreError) else 500
        log.error("request failed: %s", exc)
        return JSONResponse(error_body(status, str(exc)), status_code=status)
