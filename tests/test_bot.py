"""The bot end to end: the real python-telegram-bot client against a fake Bot API on 127.0.0.1.

Each test starts the real Application (polling) against :class:`FakeBotApi`, queues updates
and waits, bounded, for the calls it expects. pytest-asyncio is not installed: every test
runs its scenario with ``asyncio.run`` under an overall timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Update
from telegram.ext import Application, TypeHandler

from qabot.answering.retriever import Retriever
from qabot.config import Secret, Settings
from qabot.documents import Answer, Passage
from qabot.errors import ConfigError
from qabot.frontends.access import protect_logs
from qabot.frontends.bot import POLL_TIMEOUT, RetrieverHolder, build_application, poll
from qabot.frontends.cli import sample_archive
from qabot.frontends.reloading import IndexOpener
from qabot.frontends.telegram_format import TEXTS
from qabot.indexer import build_index
from qabot.store import MANIFEST_NAME, Store
from tests.fake_bot_api import (
    TOKEN,
    Call,
    FakeBotApi,
    ask_all_at_once,
    check_html,
    running,
)
from tests.fakes import HashEmbedder

# PTB 22 itself reads RetryAfter.retry_after while building the exception and warns about it
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

LANDING = "Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit (21.00 Uhr MESZ) mit dem Flugzeug in Alaska ankommen."
SUMMIT = "Der Gipfel auf dem US-Militärstützpunkt Elmendorf-Richardson in Anchorage beginnt nach Angaben aus Moskau um 11.30 Uhr Ortszeit (21.30 Uhr MESZ)."
FLOWERS = "Wenige Stunden vor seinem Gipfel legte der russische Präsident Wladimir Putin"
ALICE, BOB, MALLORY = 7, 8, 666


def run(scenario: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, timeout))


def settings_for(api: FakeBotApi, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"telegram_token": Secret(TOKEN), "telegram_api_url": api.base_url,
                              "allowed_users": frozenset({ALICE, BOB})}
    values.update(overrides)
    return Settings.from_env({}, **values)


def text_of(call: Call) -> str:
    """What the user sees (the fake stores the text as Telegram parsed it)."""
    return call.result["text"]


class Spy:
    """Wraps a retriever and records every question it is asked."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked: list[str] = []

    @property
    def embedder(self) -> Any:
        return self.inner.embedder

    def ask(self, question: str, *, k: int | None = None) -> Answer:
        self.asked.append(question)
        return self.inner.ask(question, k=k)

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        self.asked.append(question)
        return self.inner.search(question, k)

    def stats(self) -> dict[str, Any]:
        return self.inner.stats()

    def close(self) -> None:
        pass


class Stub:
    """A retriever without an index: answers with ``answer`` (or raises ``failures`` first)."""

    def __init__(self, answer: Answer | None = None, *, failures: int = 0) -> None:
        self.answer = answer
        self.failures = failures
        self.asked: list[str] = []

    def ask(self, question: str, *, k: int | None = None) -> Answer:
        self.asked.append(question)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the index fell over")
        return self.answer or Answer(question=question, sentence=f"Stub answer to {question}", passages=())

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        return []

    def stats(self) -> dict[str, Any]:
        return {"articles": 3, "chunks": 9, "vectors": 9, "first_date": "2025-08-01", "last_date": "2025-08-15", "model": "stub"}

    def close(self) -> None:
        pass


@pytest.fixture
def api():
    with FakeBotApi() as fake:
        yield fake


@pytest.fixture(scope="module")
def hash_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bot-hash") / "index"
    build_index(sample_archive(), folder, embedder=HashEmbedder())
    return folder


@pytest.fixture
def hash_retriever(hash_index: Path):
    with Retriever(Store.open(hash_index, model="hash-test"), HashEmbedder()) as retriever:
        yield retriever


async def ask(api: FakeBotApi, text: str, *, user: int = ALICE, count: int = 1, timeout: float = 15.0, **kw: Any) -> list[Call]:
    """Send ``text`` from ``user`` and wait for the bot's ``count``-th new message to that chat."""
    chat = kw.get("chat_id", user)
    before = len(api.replies(chat))
    api.push_message(text, user_id=user, **kw)
    replies = await api.until(lambda: len(api.replies(chat)) >= before + count and api.replies(chat), timeout)
    return replies[before:]


# -- answers (real model) ---------------------------------------------------------------------------


@pytest.mark.model
def test_a_question_gets_the_landing_sentence_and_its_date_in_valid_html(api, sample_retriever, caplog):
    caplog.set_level(logging.DEBUG)
    protect_logs(TOKEN)  # what run_bot does; caplog's handler is the root handler here
    app = build_application(settings_for(api), sample_retriever, timeout=2.0)
    question = "When does Putin land in Alaska?"

    async def scenario() -> None:
        async with running(app):
            welcome = await ask(api, "/start", language_code="de")
            assert "2025-08-15" in text_of(welcome[0]) and "Nachrichtenarchiv" in text_of(welcome[0])
            reply = (await ask(api, question))[0]
            text, html = text_of(reply), reply.params["text"]
            assert text.startswith(LANDING) and "2025-08-15" in text and "Sources" in text
            assert reply.params["parse_mode"] == "HTML" and f"<b>{LANDING}</b>" in html
            assert check_html(html)[0] == []
            buttons = reply.params["reply_markup"]["inline_keyboard"][0]
            assert [b["text"] for b in buttons] == ["📄 Sources", "➕ More"]
            assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
            assert any(c.params.get("action") == "typing" for c in api.calls_to("sendChatAction"))

    run(scenario())
    assert TOKEN not in caplog.text and question not in caplog.text
    assert "question from user 7 in chat 7 (31 characters)" in caplog.text


@pytest.mark.model
def test_sources_and_more_buttons_and_an_expired_button(api, sample_retriever):
    app = build_application(settings_for(api, top_k=2), sample_retriever, timeout=2.0)

    async def press(data: str) -> list[Call]:
        before = len(api.replies(ALICE))
        api.push_callback(data, user_id=ALICE)
        return await api.until(lambda: api.replies(ALICE)[before:])

    async def scenario() -> None:
        async with running(app):
            reply = (await ask(api, "Wann landet Putin in Alaska?", language_code="en"))[0]
            sources, more = (b["callback_data"] for b in reply.params["reply_markup"]["inline_keyboard"][0])
            assert "Quellen" in text_of(reply)  # the question is German, so is the reply
            full = (await press(sources))[0]
            assert f"<b>{LANDING}</b>" in full.params["text"] and check_html(full.params["text"])[0] == []
            assert "Wenige Stunden" not in text_of(full).split("\n")[0]  # a heading first
            following = (await press(more))[0]
            assert "Weitere Treffer zu Wann landet Putin in Alaska?" in text_of(following)
            assert "\n3. " in text_of(following) and "\n1. " not in text_of(following)
            api.push_callback("src:AAAAAAAA", user_id=ALICE)
            expired = await api.until(lambda: [c for c in api.calls_to("answerCallbackQuery") if c.params.get("text")])
            assert expired[0].params["text"] == TEXTS["en"]["expired"] and expired[0].params["show_alert"] in ("true", True)
            assert len(api.calls_to("answerCallbackQuery")) == 3  # every press is answered

    run(scenario())


@pytest.mark.model
def test_a_followup_builds_on_the_previous_question(api, sample_retriever):
    spy = Spy(sample_retriever)
    app = build_application(settings_for(api, rate_burst=10), spy, timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            await ask(api, "When does Putin land in Alaska?")
            await ask(api, "and when does Trump leave?")  # any verb, not only the sample's
            assert spy.asked[-1] == "when does Trump leave? Alaska"
            await ask(api, "Wann landet Putin in Alaska?")
            reply = (await ask(api, "Und wo legte er Blumen nieder?"))[0]
            assert spy.asked[-1] == "wo legte er Blumen nieder? Putin Alaska"
            assert text_of(reply).startswith(FLOWERS)
            reply = (await ask(api, "and when does the summit in Anchorage begin?"))[0]
            assert spy.asked[-1] == "when does the summit in Anchorage begin?"  # names its own subject
            assert text_of(reply).startswith(SUMMIT)
            await ask(api, "and when does Trump arrive?", user=BOB)  # another chat: nothing to build on
            assert spy.asked[-1] == "and when does Trump arrive?"

    run(scenario())


@pytest.mark.model
def test_a_hostile_question_is_answered_and_echoed_escaped(api, sample_retriever):
    question = """Wann landet <b>Putin</b> in "Alaska" & 'wo'? OR NEAR(lande* AND) -- ; </i> *"""
    app = build_application(settings_for(api, top_k=2), sample_retriever, timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            reply = (await ask(api, question))[0]
            assert text_of(reply).startswith(LANDING) and check_html(reply.params["text"])[0] == []
            more = reply.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
            api.push_callback(more, user_id=ALICE)
            following = (await api.until(lambda: api.replies(ALICE)[1:]))[0]
            assert check_html(following.params["text"])[0] == []
            assert question in text_of(following)  # shown as text, exactly as asked

    run(scenario())


@pytest.mark.model
def test_twenty_users_at_once_each_get_their_own_answer(api, sample_retriever):
    questions = [("When does Putin land in Alaska?", LANDING), ("When does the summit in Anchorage begin?", SUMMIT)]
    users = list(range(1001, 1021))
    app = build_application(settings_for(api, allowed_users=frozenset(users)), sample_retriever, timeout=5.0)

    async def scenario() -> dict[int, float]:
        async with running(app):
            return await ask_all_at_once(api, {u: questions[i % 2][0] for i, u in enumerate(users)}, timeout=50)

    latencies = list(run(scenario(), timeout=80).values())
    for i, user in enumerate(users):
        replies = api.replies(user)
        assert len(replies) == 1 and text_of(replies[0]).startswith(questions[i % 2][1])
    assert len(latencies) == len(users)  # their latencies: python -m scripts.bench.bench_bot


# -- access, limits, groups (no model needed) ------------------------------------------------------------


def test_an_unknown_user_is_refused_with_their_id_and_nothing_is_retrieved(api):
    stub = Stub()
    app = build_application(settings_for(api), stub, timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            for text in ("/start", "When does Putin land?", "/ask When does Putin land?"):
                reply = (await ask(api, text, user=MALLORY))[0]
                assert str(MALLORY) in text_of(reply) and "private" in text_of(reply)
            api.push_callback("more:AAAAAAAA", user_id=MALLORY)
            refused = await api.until(lambda: api.calls_to("answerCallbackQuery"))
            assert str(MALLORY) in refused[0].params["text"]

    run(scenario())
    assert stub.asked == []


def test_allow_all_opens_the_bot(api):
    app = build_application(settings_for(api, allowed_users=frozenset(), allow_all=True), Stub(), timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            assert text_of((await ask(api, "hello?", user=MALLORY))[0]).startswith("Stub answer to hello?")

    run(scenario())


class FakeClock:
    """The limiter's clock, moved by the test: a window opens without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def handled(app: Application) -> list[Update]:
    """The updates the bot has finished with, as they finish.

    PTB runs one update's handler groups one after another, so this handler in group 1 sees
    an update once the bot's own handler (group 0) is done with it, answered or not.
    """
    done: list[Update] = []

    async def record(update: Update, context: Any) -> None:
        done.append(update)

    app.add_handler(TypeHandler(Update, record), group=1)
    return done


def test_a_flood_gets_its_burst_answered_one_slow_down_and_then_silence(api):
    """50 quick messages from one user got 50 replies, 48 of them "slow down": the bot amplified the flood."""
    stub, clock = Stub(), FakeClock()
    app = build_application(settings_for(api, rate_burst=2, rate_per_minute=6), stub, timeout=2.0)
    app.bot_data["qabot"].limiter.clock = clock  # one token every 10 s of this clock
    done = handled(app)

    async def flood(count: int) -> None:
        before = len(done)
        for i in range(count):
            api.push_message(f"question {i}", user_id=ALICE)
        await api.until(lambda: len(done) >= before + count)

    def seen() -> tuple[int, int, int]:
        """(answers, "slow down"s, "typing"s) in ALICE's chat."""
        texts = [text_of(c) for c in api.replies(ALICE)]
        # .get: once, in a full `make test` on a loaded CPU, the fake recorded a sendChatAction without
        # its parameters (not reproduced since); "typing" is only counted here, never the point
        typing = [c for c in api.calls_to("sendChatAction") if int(c.params.get("chat_id", 0)) == ALICE]
        return sum(t.startswith("Stub answer") for t in texts), sum("Please wait" in t for t in texts), len(typing)

    async def scenario() -> None:
        async with running(app):
            await flood(50)
            answers, slow_downs, typing = seen()
            assert (answers, slow_downs, len(api.replies(ALICE))) == (2, 1, 3)
            assert typing <= answers  # nor any "typing…" for the ones not answered
            assert "Please wait 10 s" in next(text_of(c) for c in api.replies(ALICE) if "Please wait" in text_of(c))
            assert text_of((await ask(api, "my turn?", user=BOB))[0]).startswith("Stub answer")  # BOB is not slowed
            clock.now += 10  # the window opens: one more question, then the next flood is told once again
            await flood(5)
            answers, slow_downs, _ = seen()
            assert (answers, slow_downs, len(api.replies(ALICE))) == (3, 2, 5)

    run(scenario())
    assert len(stub.asked) == 4


def test_an_edited_message_is_not_answered(api):
    """PTB's MessageHandler and CommandHandler take edited messages by default, and Telegram can
    still deliver them after allowed_updates excluded them (updates created before that call)."""
    stub = Stub()
    app = build_application(settings_for(api), stub, timeout=2.0)
    done = handled(app)

    async def scenario() -> None:
        async with running(app):
            for text in ("When does Putin land?", "/ask When does Putin land?", "/start"):
                api.push_message(text, user_id=ALICE, edited=True)
            await api.until(lambda: len(done) >= 3)
            assert [u.edited_message is not None for u in done] == [True] * 3  # delivered, and handled...
            assert api.replies(ALICE) == [] and api.calls_to("sendChatAction") == []  # ...by saying nothing
            assert text_of((await ask(api, "and now?"))[0]).startswith("Stub answer to and now?")

    run(scenario())
    assert stub.asked == ["and now?"]


def test_a_flood_of_button_presses_is_answered_in_the_presses_not_in_the_chat(api):
    """Each press is answered (the client spins until then), but over the limit only the first
    answer says to wait (an alert); the others are empty, and nothing reaches the chat."""
    app = build_application(settings_for(api, rate_burst=2, rate_per_minute=6), Stub(), timeout=2.0)
    app.bot_data["qabot"].limiter.clock = FakeClock()
    done = handled(app)

    async def scenario() -> None:
        async with running(app):
            reply = (await ask(api, "first?"))[0]
            more = reply.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
            for _ in range(20):
                api.push_callback(more, user_id=ALICE)
            await api.until(lambda: len(done) >= 21)

    run(scenario())
    answers = api.calls_to("answerCallbackQuery")
    told = [c for c in answers if c.params.get("text")]
    assert len(answers) == 20 and len(told) == 1
    assert "Please wait 10 s" in told[0].params["text"] and told[0].params["show_alert"] in ("true", True)
    assert [text_of(c) for c in api.replies(ALICE)][1:] == [TEXTS["en"]["no_more"]]  # the one press within the limit


def test_polling_asks_telegram_for_new_messages_and_button_presses_only(api):
    """What run_bot's poll() really sends, through PTB's own run_polling, in this (the main) thread."""
    app = build_application(settings_for(api), Stub(), timeout=2.0)

    async def stop_once_answered(update: Update, context: Any) -> None:
        context.application.stop_running()

    app.add_handler(TypeHandler(Update, stop_once_answered), group=1)
    api.push_message("hello?", user_id=ALICE)
    loop = asyncio.new_event_loop()  # run_polling runs (and closes) the loop it finds
    asyncio.set_event_loop(loop)
    watchdog = threading.Timer(30, loop.call_soon_threadsafe, (loop.stop,))  # never hang the suite
    watchdog.start()
    try:
        poll(app)
    finally:
        watchdog.cancel()
        asyncio.set_event_loop(None)
    assert text_of(api.replies(ALICE)[0]).startswith("Stub answer to hello?")
    polls = api.calls_to("getUpdates")
    assert polls and all(c.params["allowed_updates"] == ["message", "callback_query"] for c in polls)
    assert int(polls[0].params["timeout"]) == POLL_TIMEOUT  # the last one, timeout 0, confirms the offset on the way out


def test_too_long_and_empty_questions_get_a_kind_reply_and_no_retrieval(api):
    stub = Stub()
    app = build_application(settings_for(api, max_question_chars=20), stub, timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            assert "too long (21 characters; at most 20)" in text_of((await ask(api, "x" * 21))[0])
            assert "/ask" in text_of((await ask(api, "/ask"))[0])

    run(scenario())
    assert stub.asked == []


def test_in_groups_the_bot_answers_only_mentions_replies_and_ask(api, hash_retriever):
    group = -100123
    spy = Spy(hash_retriever)
    app = build_application(settings_for(api, allowed_chats=frozenset({group})), spy, timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            api.push_message("Putin landet heute in Alaska, oder?", user_id=MALLORY, chat_id=group, chat_type="group")
            replies = await ask(api, "@qabot_test_bot Wann landet Putin in Alaska?", user=MALLORY, chat_id=group,
                                chat_type="supergroup")
            assert spy.asked == ["Wann landet Putin in Alaska?"]  # the chatter before was not for the bot
            assert replies[0].params["reply_parameters"]["message_id"] > 0  # quotes the question
            await ask(api, "/ask@qabot_test_bot\nWann beginnt der Gipfel?", user=BOB, chat_id=group, chat_type="group")
            await ask(api, "und Trump?", user=BOB, chat_id=group, chat_type="group", reply_to_bot=True)
            assert spy.asked[1] == "Wann beginnt der Gipfel?" and spy.asked[2].startswith("Trump?")

    run(scenario())
    assert len(api.replies(group)) == 3


# -- long answers, formatting, failures of the Bot API -----------------------------------------------------


def huge_answer() -> Answer:
    text = ("Ein Satz mit <b>Tags</b> & \"Zitaten\" im Archiv. " * 30).strip()
    passages = tuple(Passage(i, f"a{i}", f"Artikel {i} <i>", "2025-08-15", f"https://example.org/{i}?a=1&b=2", "dpa",
                             text, 0, len(text), 0.5) for i in range(40))
    return Answer(question="q", sentence="Die <Antwort> & mehr. " * 300, passages=passages, passage_index=0)


def test_a_huge_answer_is_split_into_valid_parts_with_the_buttons_on_the_last(api):
    app = build_application(settings_for(api), Stub(huge_answer()), timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            await ask(api, "everything?")
            await api.until(lambda: any("reply_markup" in p.params for p in api.replies(ALICE)))  # the last part

    run(scenario())
    parts = api.replies(ALICE)
    assert len(parts) >= 3 and not api.calls_to("sendMessage", ok=False)
    for part in parts:
        assert check_html(part.params["text"])[0] == [] and len(part.params["text"]) <= 4096
    assert [("reply_markup" in p.params) for p in parts] == [False] * (len(parts) - 1) + [True]
    seen = "".join(text_of(p) for p in parts)
    assert seen.count("Die <Antwort> & mehr.") == 300 and "40. Artikel 39 <i>" in seen


def test_rejected_html_is_resent_as_plain_text(api):
    api.fail_next("sendMessage", status=400, description="Bad Request: can't parse entities: unsupported start tag")
    app = build_application(settings_for(api), Stub(), timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            reply = (await ask(api, "plain?"))[0]
            assert "parse_mode" not in reply.params and text_of(reply).startswith("Stub answer")

    run(scenario())


@pytest.mark.parametrize("method", ["getUpdates", "sendMessage"])
def test_server_errors_are_retried(api, method):
    api.fail_next(method, times=2, status=500)
    app = build_application(settings_for(api), Stub(), timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            assert text_of((await ask(api, "still there?"))[0]).startswith("Stub answer")

    run(scenario())
    assert len(api.calls_to(method, ok=False)) == 2


@pytest.mark.parametrize("method", ["getUpdates", "sendMessage"])
def test_too_many_requests_waits_retry_after(api, method):
    api.fail_next(method, status=429, retry_after=1)
    app = build_application(settings_for(api), Stub(), timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            await asyncio.sleep(0.2 if method == "sendMessage" else 0)
            return (await ask(api, "slowly?"))[0]

    reply = run(scenario())
    refused = api.calls_to(method, ok=False)[0]
    assert refused.status == 429 and reply.at - refused.at >= 1.0


@pytest.mark.parametrize("method", ["getUpdates", "sendMessage"])
def test_a_hanging_api_times_out_and_the_bot_recovers(api, method):
    api.hang_seconds = 3.5  # past the client's 1 s (2 s for a 1 s long poll)
    api.fail_next(method, status="hang")
    app = build_application(settings_for(api), Stub(), timeout=1.0)

    async def scenario() -> None:
        async with running(app):
            assert text_of((await ask(api, "hello?"))[0]).startswith("Stub answer")

    run(scenario())
    assert api.calls_to(method, ok=False)[0].status == "hang"


def test_a_failing_question_is_logged_the_user_told_and_the_bot_keeps_going(api, caplog):
    caplog.set_level(logging.INFO)
    app = build_application(settings_for(api), Stub(failures=1), timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            assert text_of((await ask(api, "first?"))[0]) == TEXTS["en"]["error"]
            assert text_of((await ask(api, "second?"))[0]).startswith("Stub answer to second?")

    run(scenario())
    failure = [r for r in caplog.records if r.name == "qabot.frontends.bot" and r.levelno == logging.ERROR]
    assert failure and failure[0].exc_info and "the index fell over" in caplog.text


# -- a rebuilt index ---------------------------------------------------------------------------------------


def test_a_rebuilt_index_is_reopened_between_questions(api, hash_index, tmp_path):
    folder = tmp_path / "index"
    shutil.copytree(hash_index, folder)
    archive = tmp_path / "archive"
    shutil.copytree(sample_archive(), archive)
    first = Retriever(Store.open(folder, model="hash-test"), HashEmbedder())
    app = build_application(settings_for(api), first, index_dir=folder, timeout=2.0)
    question = "Wie heißt der neue Elefant im Zoo Hamburg?"

    async def scenario() -> None:
        async with running(app):
            assert "Jumbo" not in text_of((await ask(api, question))[0])
            (archive / "2025-09-01-zoo.txt").write_text(
                " date 2025-09-01 Der Zoo in Hamburg hat einen neuen Elefanten. Der neue Elefant im Zoo Hamburg heißt Jumbo.\n",
                encoding="utf-8")
            await asyncio.to_thread(build_index, archive, folder, embedder=HashEmbedder())
            assert "Jumbo" in text_of((await ask(api, question))[0])

    try:
        run(scenario())
        holder: RetrieverHolder = app.bot_data["qabot"].retrievers
        assert holder.current is not first
        holder.close()
    finally:
        first.close()


@pytest.mark.model
def test_a_rebuild_with_another_model_is_answered_with_that_model(api, hash_index, tmp_path, e5, model_cache_dir):
    """The bot reopened a rebuilt index with the old model: IndexMismatchError on every question, forever."""
    folder = tmp_path / "index"
    shutil.copytree(hash_index, folder)
    first = Retriever(Store.open(folder, model="hash-test"), HashEmbedder())
    app = build_application(settings_for(api, cache_dir=model_cache_dir), first, index_dir=folder, timeout=2.0)

    async def scenario() -> None:
        async with running(app):
            await ask(api, "Wann landet Putin in Alaska?")
            await asyncio.to_thread(build_index, sample_archive(), folder, embedder=e5, rebuild=True)
            assert text_of((await ask(api, "When does Putin land in Alaska?"))[0]).startswith(LANDING)

    try:
        run(scenario())
        holder: RetrieverHolder = app.bot_data["qabot"].retrievers
        assert isinstance(holder._opener, IndexOpener) and holder.current.embedder.name == e5.name
        holder.close()
    finally:
        first.close()


class Closable:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_the_retriever_is_never_swapped_mid_answer(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("{}", encoding="utf-8")
    opened: list[Closable] = []

    def opener(folder: Path) -> Any:
        opened.append(Closable(f"r{len(opened) + 1}"))
        return opened[-1]

    def rebuild(n: int) -> None:
        (tmp_path / f"new{n}").write_text("{" + " " * n + "}", encoding="utf-8")
        (tmp_path / f"new{n}").replace(tmp_path / MANIFEST_NAME)

    async def scenario() -> None:
        first = Closable("first")
        holder = RetrieverHolder(first, index_dir=tmp_path, opener=opener)  # type: ignore[arg-type]
        async with holder.use() as a:
            rebuild(1)
            async with holder.use() as b:  # the next question sees the rebuilt index...
                assert a is first and b is opened[0]
            assert not first.closed  # ...while the running one keeps its own (the caller's)
        rebuild(2)
        async with holder.use() as c:
            assert c is opened[1]
        assert opened[0].closed and not opened[1].closed and not first.closed
        holder.close()
        assert opened[1].closed

    run(scenario())


# -- the welcome and the examples come from the archive ------------------------------------------------


def test_the_welcome_and_the_empty_reply_quote_the_archives_newest_headline(api, tmp_path):
    """They used to quote the sample's "When does Putin land in Alaska?" whatever archive was loaded."""
    archive = tmp_path / "archive"
    archive.mkdir()
    articles = [
        {"id": "zoo", "title": "Der Zoo Hamburg hat einen neuen Elefanten", "date": "2024-03-02",
         "text": "Der Zoo in Hamburg hat einen neuen Elefanten. Er heißt Jumbo und ist drei Jahre alt."},
        {"id": "flood", "title": "Hochwasser in Passau: Pegel sinkt", "date": "2024-06-05",
         "text": "In Passau sinkt der Pegel der Donau wieder. Die Feuerwehr pumpt weiter Keller leer."},
    ]
    (archive / "news.jsonl").write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in articles), encoding="utf-8")
    folder = tmp_path / "index"
    build_index(archive, folder, embedder=HashEmbedder())
    with Retriever(Store.open(folder, model="hash-test"), HashEmbedder()) as retriever:
        app = build_application(settings_for(api), retriever, timeout=2.0)

        async def scenario() -> None:
            async with running(app):
                welcome = text_of((await ask(api, "/start"))[0])
                assert "2 articles (2024-03-02 – 2024-06-05)" in welcome
                assert "newest article, Hochwasser in Passau: Pegel sinkt." in welcome
                empty = text_of((await ask(api, "/ask", language_code="de"))[0])
                assert empty == "Stell mir eine Frage, z. B. /ask Hochwasser in Passau: Pegel sinkt"
                assert "Putin" not in welcome + empty and "Alaska" not in welcome + empty

        run(scenario())


# -- `qabot bot`: the real entry point -------------------------------------------------------------------


def bot_env(api: FakeBotApi, index: Path, cache: Path, token: str = TOKEN) -> dict[str, str]:
    """The environment for `qabot bot` against the fake API (nothing from the caller's QABOT_/TELEGRAM_).

    The index is the real model's: settings never reach the test fake HashEmbedder.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "QABOT_"))}
    env.update({"TELEGRAM_BOT_TOKEN": token, "QABOT_TELEGRAM_API_URL": api.base_url, "QABOT_ALLOWED_USERS": str(ALICE),
                "QABOT_INDEX": str(index), "QABOT_CACHE_DIR": str(cache), "QABOT_LOG_LEVEL": "DEBUG",
                "PYTHONUNBUFFERED": "1"})
    return env


@pytest.mark.model
def test_qabot_bot_with_a_rejected_token_says_so_without_showing_it(api, sample_index, model_cache_dir, tmp_path):
    wrong = "987654321:AAWrongTokenNobodyShouldSee"
    done = subprocess.run([sys.executable, "-m", "qabot", "bot"], cwd=tmp_path,
                          env=bot_env(api, sample_index, model_cache_dir, wrong),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "error: Telegram rejected TELEGRAM_BOT_TOKEN" in done.stderr
    assert wrong not in done.stderr + done.stdout


@pytest.mark.model
def test_qabot_bot_logs_ready_answers_and_stops_on_sigterm_without_leaking_the_token(api, sample_index, model_cache_dir,
                                                                                      tmp_path):
    env = bot_env(api, sample_index, model_cache_dir)
    log_file = tmp_path / "bot.log"
    with log_file.open("wb") as out:  # a file, not a pipe: a full pipe would block the bot
        bot = subprocess.Popen([sys.executable, "-m", "qabot", "bot"], cwd=tmp_path, env=env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while "ready:" not in log_file.read_text(errors="replace") and bot.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert re.search(r"ready: 1 articles, \d+ chunks \(2025-08-15 – 2025-08-15\), model multilingual-e5-small",
                             log_file.read_text())
            api.push_message("Wann landet Putin in Alaska?", user_id=ALICE)
            while not api.replies(ALICE) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert api.replies(ALICE) and api.calls_to("setMyCommands")
            assert api.calls_to("getUpdates")[0].params["allowed_updates"] == ["message", "callback_query"]
        finally:
            bot.send_signal(signal.SIGTERM)
            try:
                code = bot.wait(timeout=20)
            except subprocess.TimeoutExpired:  # never leave it running
                bot.kill()
                bot.wait()
                raise
    logged = log_file.read_text()
    assert code == 0, logged
    assert TOKEN not in logged and "Wann landet Putin" not in logged
    assert "question from user 7 in chat 7 (28 characters)" in logged


def test_the_fake_bot_api_reads_json_form_and_multipart_bodies_and_checks_the_token(api):
    url = f"{api.base_url}{TOKEN}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "x", "callback_data": "y"}]]}
    with httpx.Client(timeout=5) as client:
        assert client.post(url, json={"chat_id": 5, "text": "json", "reply_markup": markup}).json()["ok"]
        assert client.post(url, data={"chat_id": "5", "text": "form", "reply_markup": json.dumps(markup)}).json()["ok"]
        assert client.post(url, data={"chat_id": "5", "text": "multi"}, files={"doc": ("a.txt", b"hi")}).json()["ok"]
        bad = client.post(url, data={"chat_id": "5", "text": "<b>open", "parse_mode": "HTML"})
        assert bad.status_code == 400 and "can't parse entities" in bad.json()["description"]
        assert client.post(f"{api.base_url}wrong/getMe").status_code == 401
        assert client.post(f"{api.base_url}{TOKEN}/noSuchMethod").json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    sent = api.calls_to("sendMessage")
    assert [c.result["text"] for c in sent] == ["json", "form", "multi"]
    assert sent[0].params["reply_markup"] == sent[1].params["reply_markup"] == markup
    assert sent[0].result["message_id"] and sent[0].result["chat"]["id"] == 5 and sent[0].result["from"]["is_bot"]


def test_the_token_is_in_no_repr_and_no_error(api):
    settings = settings_for(api)
    app = build_application(settings, Stub())
    for thing in (app, app.bot, app.updater, app.bot_data["qabot"], settings):
        assert TOKEN not in repr(thing) and TOKEN not in str(thing)
    with pytest.raises(ConfigError) as missing:
        build_application(settings_for(api, telegram_token=Secret("")), Stub())
    assert "BotFather" in str(missing.value)


# -- the LLM answer: sent at once, then edited into the checked LLM answer ----------------------


def _landing_reply(messages: list[dict[str, Any]]) -> str:
    """A fake LLM that cites the passage holding the landing sentence (and adds one unsupported sentence)."""
    passages = messages[-1]["content"].split("\n\n[")
    number = next(i for i, block in enumerate(passages) if "11.00 Uhr" in block)
    return f"Putin soll um 11.00 Uhr Ortszeit in Alaska ankommen. [{number}] Er bringt 45 Berater mit. [{number}]"


@pytest.mark.model
def test_the_extractive_answer_comes_first_then_the_edit_into_the_checked_llm_answer(api, sample_index, e5):
    from qabot.models.llm import LLMClient
    from tests.fake_openai import KEY, FakeOpenAI

    with FakeOpenAI(responder=_landing_reply) as llm:
        client = LLMClient(llm.base_url, "fake-model", api_key=Secret(KEY), timeout=5)
        with Retriever(Store.open(sample_index, model=e5.name), e5, llm=client) as retriever:
            app = build_application(settings_for(api), retriever, timeout=2.0)

            async def scenario() -> None:
                async with running(app):
                    first = (await ask(api, "Wann landet Putin in Alaska?", language_code="de"))[0]
                    assert text_of(first).startswith(LANDING)
                    edits = await api.until(lambda: api.calls_to("editMessageText"))
                    edited = edits[0]
                    assert int(edited.params["message_id"]) == first.result["message_id"]
                    assert text_of(edited).startswith("Putin soll um 11.00 Uhr Ortszeit in Alaska ankommen. [")
                    assert "45 Berater" not in text_of(edited) and "Quellen" in text_of(edited)
                    assert check_html(edited.params["text"])[0] == []
                    source = edited.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
                    assert source.startswith("src:")
                    shown = app.bot_data["qabot"].results.get(source.removeprefix("src:"))
                    assert shown is not None and shown.answer.reply_source == "llm"  # Sources: the refined answer
                    assert edited.at > first.at and len(api.replies(ALICE)) == 1  # one message, edited

            run(scenario())
        assert len(llm.requests) == 1


@pytest.mark.model
def test_a_failing_llm_leaves_the_extractive_message_alone(api, sample_index, e5):
    from qabot.models.llm import LLMClient
    from tests.fake_openai import KEY, FakeOpenAI

    with FakeOpenAI() as llm:
        llm.fail_next(status=500)
        client = LLMClient(llm.base_url, "fake-model", api_key=Secret(KEY), timeout=5)
        with Retriever(Store.open(sample_index, model=e5.name), e5, llm=client) as retriever:
            app = build_application(settings_for(api), retriever, timeout=2.0)

            async def scenario() -> None:
                async with running(app):
                    first = (await ask(api, "Wann landet Putin in Alaska?", language_code="de"))[0]
                    assert text_of(first).startswith(LANDING)
                    await api.until(lambda: llm.requests)
                    await asyncio.sleep(0.3)
                    assert api.calls_to("editMessageText") == []

            run(scenario())
