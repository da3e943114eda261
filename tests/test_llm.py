"""The LLM seam end to end: the real ``openai`` client against a fake server on 127.0.0.1,
then the checked reply through the Retriever with the real e5 model."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from qabot.answering.llm_answer import CachedEmbed, LLMAnswerer, build_messages
from qabot.answering.retriever import Retriever
from qabot.config import Secret, Settings
from qabot.errors import ConfigError
from qabot.models.llm import LLMClient, LLMError, llm_for
from qabot.store import Store
from tests.fake_openai import KEY, FakeOpenAI
from tests.fakes import HashEmbedder

QUESTION_DE = "Wann landet Putin in Alaska?"
QUESTION_EN = "When does Putin land in Alaska?"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(hang_seconds=3.0) as server:
        yield server


def client_for(fake: FakeOpenAI, *, timeout: float = 2.0) -> LLMClient:
    return LLMClient(fake.base_url, "fake-model", api_key=Secret(KEY), timeout=timeout)


# -- the client ---------------------------------------------------------------------------------


def test_a_reply_comes_back_with_the_key_sent_only_in_the_header(fake):
    fake.script("Hallo [1].")
    reply = client_for(fake).complete(HI)
    assert reply.text == "Hallo [1]." and reply.model == "fake-model" and reply.seconds > 0
    request = fake.requests[-1]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "fake-model" and request.body["temperature"] == 0
    assert KEY not in json.dumps(request.body)


@pytest.mark.parametrize(("status", "kind"), [(500, "server"), (503, "server"), ("garbage", "bad_reply"),
                                              ("empty", "bad_reply"), (404, "refused")])
def test_failures_become_typed_errors(fake, status, kind):
    fake.fail_next(status=status)
    with pytest.raises(LLMError) as caught:
        client_for(fake).complete(HI)
    assert caught.value.kind == kind


def test_429_waits_a_short_retry_after_once(fake):
    fake.fail_next(status=429, retry_after=0.4)
    fake.script("danach [1].")
    started = time.perf_counter()
    assert client_for(fake).complete(HI).text == "danach [1]."
    assert time.perf_counter() - started >= 0.4 and len(fake.requests) == 2


def test_429_with_a_long_retry_after_or_twice_gives_up(fake):
    fake.fail_next(status=429, retry_after=60)
    with pytest.raises(LLMError, match="429") as caught:
        client_for(fake).complete(HI)
    assert caught.value.kind == "rate_limited" and len(fake.requests) == 1
    fake.fail_next(2, status=429, retry_after=0.1)
    with pytest.raises(LLMError):
        client_for(fake).complete(HI)


@pytest.mark.timing
def test_a_hang_past_the_timeout_is_a_timeout(fake):
    fake.fail_next(status="hang")
    started = time.perf_counter()
    with pytest.raises(LLMError) as caught:
        client_for(fake, timeout=0.5).complete(HI)
    assert caught.value.kind == "timeout" and time.perf_counter() - started < 2.5


def test_nothing_listening_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = LLMClient(f"http://127.0.0.1:{port}/v1", "m", timeout=1)
    with pytest.raises(LLMError) as caught:
        client.complete(HI)
    assert caught.value.kind == "connection"


def test_each_kind_of_failure_is_logged_once_and_the_key_never(fake, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for(fake, timeout=0.5)
    for status in (500, 500, "garbage", "hang", 401):
        fake.fail_next(status=status)
        assert client.try_complete(HI) is None
    fake.script("gut [1].")
    assert client.try_complete(HI) is not None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "qabot.models.llm"]
    assert len(warnings) == 4, [r.getMessage() for r in warnings]  # server, bad_reply, timeout, refused
    shown = caplog.text + "".join(str(r.args) for r in caplog.records) + repr(client)
    answerer = LLMAnswerer(client, _NoEmbedder())  # type: ignore[arg-type]
    settings = Settings.from_env({"QABOT_LLM_URL": fake.base_url, "QABOT_LLM_MODEL": "m", "QABOT_LLM_API_KEY": KEY})
    shown += repr(answerer) + repr(settings) + str(settings.llm_api_key)
    assert KEY not in shown and KEY[:12] not in shown


def test_credentials_in_the_llm_url_show_in_no_log_record_repr_or_error(fake, caplog):
    """QABOT_LLM_URL=http://user:password@host/v1 (a proxy with basic auth): the credentials go to
    the server as HTTP Basic auth, as httpx always sent them, and nowhere else: not in the WARNING
    a failure logs at the default level, nor in openai's or httpx's own lines at DEBUG, nor in a
    repr or an error message."""
    import base64

    caplog.set_level(logging.DEBUG)  # every logger at every level
    user, password = "proxy-user-4711", "proxy-pass-s3cr3t"
    url = fake.base_url.replace("http://", f"http://{user}:{password}@")
    settings = Settings.from_env({"QABOT_LLM_URL": url, "QABOT_LLM_MODEL": "fake-model"})
    client = LLMClient(settings.llm_url or "", "fake-model", api_key=settings.llm_api_key, timeout=2)
    assert client.try_complete(HI) is None  # the fake wants its bearer key: refused, and logged as a WARNING
    with pytest.raises(LLMError) as caught:
        client.complete(HI)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert fake.requests[-1].headers["authorization"] == f"Basic {basic}"  # the proxy still gets them
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "qabot.models.llm"]
    assert warning and "***@127.0.0.1" in warning[0], warning
    shown = [caplog.text, *(r.getMessage() for r in caplog.records), *(repr(r.args) for r in caplog.records),
             repr(client), repr(settings), str(settings), str(caught.value), repr(LLMAnswerer(client, _NoEmbedder()))]  # type: ignore[arg-type]
    for text in shown:
        assert user not in text and password not in text and basic not in text, text


class _NoEmbedder:
    name = "none"


def test_the_llm_settings_go_together():
    assert llm_for(None, None, api_key=Secret(""), timeout=1) is None
    with pytest.raises(ConfigError, match="QABOT_LLM_URL and QABOT_LLM_MODEL"):
        llm_for("http://127.0.0.1:11434/v1", None, api_key=Secret(""), timeout=1)
    client = llm_for("http://127.0.0.1:11434/v1", "qwen", api_key=Secret(""), timeout=1)
    assert client is not None and client.name == "qwen"


def test_a_half_set_llm_fails_before_the_index_is_opened(tmp_path, hash_embedder, monkeypatch):
    from qabot.frontends.cli import sample_archive
    from qabot.indexer import build_index

    build_index(sample_archive(), tmp_path / "index", embedder=hash_embedder)
    opened: list[Store] = []
    real_open = Store.open
    monkeypatch.setattr(Store, "open", lambda *a, **k: opened.append(real_open(*a, **k)) or opened[-1])
    half = Settings.from_env({"QABOT_LLM_URL": "http://127.0.0.1:11434/v1"})
    with pytest.raises(ConfigError, match="QABOT_LLM_URL and QABOT_LLM_MODEL"):
        Retriever.open(tmp_path / "index", settings=half, embedder=hash_embedder)
    assert opened == []  # the store was never opened, so nothing is left open
    with Retriever.open(tmp_path / "index", embedder=hash_embedder) as retriever:  # the spy works
        assert opened and retriever.llm is None


def test_an_answer_names_the_llm_only_once_refine_kept_its_reply(tmp_path, hash_embedder):
    from qabot.frontends.cli import sample_archive
    from qabot.indexer import build_index

    build_index(sample_archive(), tmp_path / "index", embedder=hash_embedder)
    llm = LLMClient("http://127.0.0.1:9/v1", "some-llm", timeout=0.5)  # nothing listens there
    with Retriever(Store.open(tmp_path / "index", model=hash_embedder.name), hash_embedder, llm=llm,
                   min_score=0.0) as retriever:
        assert retriever.models.llm == "some-llm"  # configured
        answer = retriever.ask(QUESTION_DE)
        assert answer.models is not None and answer.models.llm is None  # "null where unset": not refined yet
        refined = retriever.refine(answer)  # the call fails: the extractive answer stands
        assert refined.reply_source == "extractive" and refined.models is not None and refined.models.llm is None


def test_the_prompt_numbers_the_passages_and_names_the_language():
    from qabot.documents import Passage

    passage = Passage(1, "a", "Gipfel in Alaska", "2025-08-15", None, None, "Putin landet um 11.00 Uhr.", 0, 26, 0.9)
    system, user = build_messages(QUESTION_EN, [passage, passage])
    assert "English" in system["content"] and "NOT_IN_ARCHIVE" in system["content"] and "[1]" in system["content"]
    assert "[1] Gipfel in Alaska (2025-08-15)\nPutin landet um 11.00 Uhr." in user["content"] and "[2]" in user["content"]
    assert "German" in build_messages(QUESTION_DE, [passage])[0]["content"]


# -- the checked reply, with the real model -----------------------------------------------------


@pytest.fixture
def llm_retriever(sample_index, e5, fake) -> Iterator[Retriever]:
    retriever = Retriever(Store.open(sample_index, model=e5.name), e5, llm=client_for(fake))
    yield retriever
    retriever.close()


def _refine(retriever: Retriever, fake: FakeOpenAI, reply: str | None, question: str = QUESTION_DE) -> tuple[Any, Any]:
    answer = retriever.ask(question)
    assert answer.found
    if reply is not None:
        fake.script(reply.replace("{n}", str(answer.passage_index + 1)))
    return answer, retriever.refine(answer)


@pytest.mark.model
def test_a_good_cited_answer_is_kept(llm_retriever, fake):
    answer, refined = _refine(llm_retriever, fake, "Putin soll um 11.00 Uhr Ortszeit mit dem Flugzeug in Alaska ankommen. [{n}]")
    assert refined.reply_source == "llm" and refined.unsupported == ()
    assert refined.reply == f"Putin soll um 11.00 Uhr Ortszeit mit dem Flugzeug in Alaska ankommen. [{answer.passage_index + 1}]"
    assert refined.models.llm == "fake-model" and refined.sentence == answer.sentence
    data = refined.to_dict()
    assert data["reply_source"] == "llm" and data["models"]["llm"] == "fake-model"
    sent = fake.requests[-1].messages
    assert QUESTION_DE in sent[1]["content"] and answer.passages[0].title.split()[0] in sent[1]["content"]


@pytest.mark.model
def test_a_sentence_with_a_number_not_in_its_passage_is_removed_and_listed(llm_retriever, fake):
    _, refined = _refine(llm_retriever, fake, "Putin soll um 11.00 Uhr in Alaska ankommen. [{n}] "
                                              "Er bringt 45 Berater mit. [{n}]")
    assert refined.reply_source == "llm" and "45" not in (refined.reply or "")
    assert len(refined.unsupported) == 1 and "45" in refined.unsupported[0].sentence
    assert "“45”" in refined.unsupported[0].reason


@pytest.mark.model
@pytest.mark.parametrize(("reply", "reason"), [("Putin landet um 11.00 Uhr in Alaska. [9]", "cites [9], but there"),
                                               ("Putin landet um 11.00 Uhr in Alaska.", "no citation")])
def test_a_wrong_or_missing_citation_leaves_the_extractive_answer(llm_retriever, fake, reply, reason):
    answer, refined = _refine(llm_retriever, fake, reply)
    assert refined.reply_source == "extractive" and refined.reply == answer.sentence and refined.models.llm is None
    assert refined.unsupported[0].reason.startswith(reason)


@pytest.mark.model
def test_not_in_the_archive_leaves_the_extractive_answer(llm_retriever, fake):
    answer, refined = _refine(llm_retriever, fake, "NOT_IN_ARCHIVE")
    assert refined.reply_source == "extractive" and refined.unsupported == () and refined.reply == answer.sentence


@pytest.mark.model
def test_an_english_answer_citing_german_passages_is_kept_when_supported(llm_retriever, fake):
    _, refined = _refine(llm_retriever, fake, "According to the Kremlin, Putin is due to land in Alaska by plane "
                                                   "at 11 a.m. local time (9 p.m. CEST). [{n}] "
                                                   "Macron will arrive in Alaska at 11:00 local time. [{n}]", QUESTION_EN)
    assert refined.reply_source == "llm", refined.unsupported
    assert refined.reply.startswith("According to the Kremlin, Putin is due to land")
    assert [u.reason for u in refined.unsupported] == ["the name “Macron” is not in the cited passages"]


@pytest.mark.model
@pytest.mark.xfail(reason="a known limit of e5-small: it scores this same-language, off-topic sentence 0.90 "
                          "against 'Putin und Trump treffen sich ... im US-Staat Alaska.', above the calibrated "
                          "bar 0.86 and at the median of true XQuAD translations (0.90); names and numbers agree, "
                          "so no check catches it (no same-language paraphrase data to calibrate a word check on)",
                   strict=True)
def test_a_sentence_about_something_else_fails_the_meaning_check(llm_retriever, fake):
    _, refined = _refine(llm_retriever, fake, "Putin soll in Alaska ankommen. [{n}] "
                                              "Putin mag in Alaska gerne angeln und wandern. [{n}]")
    assert [u.sentence.split()[2] for u in refined.unsupported] == ["gerne"]
    assert "similarity" in refined.unsupported[0].reason


@pytest.mark.model
@pytest.mark.parametrize("status", [500, "garbage", "hang"])
def test_a_failing_llm_leaves_the_extractive_answer(llm_retriever, fake, status):
    llm_retriever.llm.llm = client_for(fake, timeout=0.5)
    fake.fail_next(status=status)
    answer, refined = _refine(llm_retriever, fake, None)
    assert refined.reply_source == "extractive" and refined.reply == answer.sentence and refined.models.llm is None


def test_the_meaning_checks_cache_is_safe_with_many_threads_and_a_tiny_cache():
    embedder = HashEmbedder()
    cache = CachedEmbed(embedder, size=3)
    texts = [f"Satz Nummer {i} über Alaska." for i in range(20)]
    expected = embedder.embed_passages(texts)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: cache([texts[i % 20], texts[(i + 7) % 20]]), range(400)))
    for i, vectors in enumerate(results):
        assert np.allclose(vectors, expected[[i % 20, (i + 7) % 20]])
    assert len(cache._cache) <= 3
