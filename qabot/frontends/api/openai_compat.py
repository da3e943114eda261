"""The OpenAI-compatible face: ``GET /v1/models`` and ``POST /v1/chat/completions`` (model ``qabot``).

The last user message is the question; earlier user messages make a follow-up whole through the
shared conversation logic (:func:`~qabot.answering.conversation.expand_followup`), so the API is
stateless: the client's history is the conversation. The reply's content is Markdown: the answer
with ``[n]`` markers, then a short numbered source list (title, date, link), everything from the
archive escaped (:mod:`~qabot.frontends.api.markdown`): a title with ``<script>`` in it is
shown, not run, in a client that renders Markdown with HTML; the full Answer object rides along in the extra field ``qabot`` (``completion.model_extra["qabot"]`` in the
``openai`` client), so programs need not parse Markdown.

``stream: true`` answers with server-sent events as OpenAI does: a first chunk with the role,
the content in word-group chunks, a last chunk with ``finish_reason`` and the ``qabot`` field,
then ``data: [DONE]``. The answer is computed before the first event (so errors still get their
HTTP status); the stream only delivers it, which is all a chat UI needs.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response, StreamingResponse

from qabot.answering.conversation import expand_followup
from qabot.documents import Answer
from qabot.frontends.api.markdown import escape, link
from qabot.links import text_fragment_url

MODEL_ID = "qabot"
CREATED = 1_755_216_000  # 2025-08-15: a fixed "created" for the one model
MAX_TURNS = 200
NOT_FOUND = "**Not in the archive.** I found nothing in the archive that answers this."
WORDS_PER_CHUNK = 4


class ChatMessage(BaseModel):
    """One message; ``content`` is a string or OpenAI's list of parts (text parts are used)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatBody(BaseModel):
    """A chat completion request; OpenAI's other options (temperature, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_TURNS)
    stream: bool = False


def models_list() -> dict[str, Any]:
    """``GET /v1/models``: the one model."""
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": "qabot"}]}


def question_of(messages: list[ChatMessage]) -> tuple[str, str | None]:
    """(the last user message, the previous question as expanded) — ValueError when the last
    message is not the user's."""
    if messages[-1].role != "user":
        raise ValueError("the last message must be the user's question")
    previous: str | None = None
    for message in messages[:-1]:
        if message.role == "user" and message.text().strip():
            previous = expand_followup(" ".join(message.text().split()), previous)
    return messages[-1].text(), previous


def render_markdown(answer: Answer) -> str:
    """The answer with its [n] marker, then the numbered sources (title linked, date); whatever
    came from the archive is escaped, and a link only ever goes to an http(s) URL."""
    if answer.found:
        reply = escape(answer.reply or "", keep_markers=answer.reply_source == "llm")
        if answer.reply_source == "extractive":
            reply += f" [{(answer.passage_index or 0) + 1}]"
        blocks = [reply, "**Sources**"]
    else:
        blocks = [NOT_FOUND, "**Closest passages**"] if answer.passages else [NOT_FOUND]
    lines = []
    for number, passage in enumerate(answer.passages, start=1):
        url = text_fragment_url(passage.url, answer.sentence if number - 1 == answer.passage_index else None)
        dated = f" — {escape(passage.date)}" if passage.date else ""
        lines.append(f"{number}. {link(passage.title or passage.article_id, url)}{dated}")
    if lines:
        blocks.append("\n".join(lines))
    blocks.extend(f"_{escape(note)}_" for note in answer.notes)
    return "\n\n".join(blocks)


def reply(answer: Answer, *, model: str, stream: bool) -> Response:
    """The chat completion for ``answer``, as one JSON object or as server-sent events."""
    content, ident, created = render_markdown(answer), f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if stream:
        events = _events(ident, created, model, content, answer.to_dict())
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return JSONResponse({
        "id": ident, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
                     "logprobs": None}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "qabot": answer.to_dict(),
    })


def _events(ident: str, created: int, model: str, content: str, data: dict[str, Any]) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    pieces = re.findall(r"\S+\s*|\s+", content)
    for i in range(0, len(pieces), WORDS_PER_CHUNK):
        yield chunk({"content": "".join(pieces[i:i + WORDS_PER_CHUNK])})
    yield chunk({}, "stop", qabot=data)
    yield "data: [DONE]\n\n"
