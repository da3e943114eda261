"""The HTTP API (`qabot serve`) as clients meet it: a real uvicorn server on 127.0.0.1 with a
real-model index, httpx for REST, the official `openai` client for chat completions (plain and
streamed), keys, limits and their errors, 50 concurrent clients, an index republished under
traffic, and SIGTERM during traffic (a `python -m qabot serve` subprocess)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from openai import OpenAI

from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.errors import ConfigError
from qabot.frontends.api import create_app
from qabot.frontends.api.auth import KeyRing, check_bind, key_id
from qabot.frontends.cli import sample_archive
from qabot.frontends.reloading import IndexOpener, RetrieverHolder
from qabot.indexer import build_index
from qabot.store.backends import index_stats

from .conftest import LANDING_SENTENCE
from .test_search_real import QUESTIONS

pytestmark = pytest.mark.model

KEY = "test-key-0123456789abcdef"
SEED = "When does Putin land in Alaska?"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(index: Path, embedder: Any, **settings: Any) -> Iterator[str]:
    """uvicorn serving ``index`` on a free loopback port in a thread; yields its base URL; stops it."""
    config = Settings(index_dir=index, **{"api_rate_per_minute": 100_000.0, "api_rate_burst": 1000, **settings})
    retriever = Retriever.open(index, settings=config, embedder=embedder)
    holder = RetrieverHolder(retriever, index_dir=index, opener=IndexOpener(config, embedder))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config, holder), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        retriever.close()


@pytest.fixture(scope="module")
def open_server(sample_index, e5) -> Iterator[str]:
    """No keys (loopback only), no practical rate limit."""
    with running_server(sample_index, e5) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_server(sample_index, e5) -> Iterator[str]:
    """One key; 2 requests at once, then 1 a minute; questions of at most 60 characters."""
    with running_server(sample_index, e5, api_keys=KEY, api_rate_per_minute=1.0, api_rate_burst=2,
                        max_question_chars=60) as url:
        yield url


def test_health_readiness_stats_and_docs(open_server, sample_index):
    with httpx.Client(base_url=open_server, timeout=60) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["generation"].startswith("gen-") and ready["articles"] == 1
        assert ready["chunks"] >= 1 and ready["vectors"] == ready["chunks"]
        stats = client.get("/v1/stats").json()
        expected = index_stats(sample_index)
        assert set(stats) == set(expected) and stats["articles"] == 1 and stats["generation"] == expected["generation"]
        assert "/v1/chat/completions" in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "<form" in page.text and 'src="/page.js"' in page.text
        assert "not in the archive" in client.get("/page.js").text.lower()


def test_ask_and_search_return_the_cli_objects(open_server):
    with httpx.Client(base_url=open_server, timeout=60) as client:
        answer = client.post("/v1/ask", json={"question": SEED, "k": 3}).json()
        assert answer["sentence"] == LANDING_SENTENCE and answer["found"] and answer["citation"] == 0
        assert answer["passages"][0]["date"] == "2025-08-15" and answer["url_to_sentence"] is None  # the sample has no URL
        assert {"question", "score", "context", "reply", "reply_source", "span", "models", "notes"} <= set(answer)
        absent = client.post("/v1/ask", json={"question": "Was ist die Hauptstadt von Australien?"}).json()
        assert absent["sentence"] is None and absent["found"] is False
        dated = client.post("/v1/ask", json={"question": SEED, "since": "2025-08-01", "until": "2025-08-31"}).json()
        assert dated["sentence"] == LANDING_SENTENCE
        found = client.post("/v1/search", json={"question": "  Lukaschenko   Gefangene ", "k": 2}).json()
        assert set(found) == {"question", "passages"} and found["question"] == "Lukaschenko Gefangene"
        assert 1 <= len(found["passages"]) <= 2 and "Lukaschenko" in found["passages"][0]["text"]


def test_openai_client_plain_and_streamed(open_server):
    client = OpenAI(base_url=f"{open_server}/v1", api_key="unused-on-loopback", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == ["qabot"]
    completion = client.chat.completions.create(model="qabot", messages=[{"role": "user", "content": SEED}])
    content = completion.choices[0].message.content
    assert LANDING_SENTENCE + " [1]" in content and "2025-08-15" in content
    assert completion.model_extra["qabot"]["sentence"] == LANDING_SENTENCE
    stream = client.chat.completions.create(model="qabot", messages=[{"role": "user", "content": SEED}], stream=True)
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == content and len(chunks) > 3
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["qabot"]["citation"] == 0


def test_sse_wire_format_ends_with_done(open_server):
    body = {"model": "qabot", "stream": True, "messages": [{"role": "user", "content": SEED}]}
    with httpx.stream("POST", f"{open_server}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["choices"][0]["delta"]["role"] == "assistant"


def test_earlier_turns_make_a_followup_whole(open_server):
    client = OpenAI(base_url=f"{open_server}/v1", api_key="x", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": SEED}, {"role": "assistant", "content": "… [1]"},
                {"role": "user", "content": [{"type": "text", "text": "and where does he meet Trump?"}]}]
    answer = client.chat.completions.create(model="qabot", messages=messages).model_extra["qabot"]
    assert "Putin" in answer["question"] and answer["found"]
    absent = client.chat.completions.create(model="qabot", messages=[{"role": "user", "content": "Was ist die Hauptstadt von Australien?"}])
    assert "Not in the archive" in absent.choices[0].message.content


def test_keys_are_required_and_never_logged(keyed_server, caplog):
    caplog.set_level(logging.INFO, logger="qabot.frontends.api")
    with httpx.Client(base_url=keyed_server, timeout=60) as client:
        assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200
        missing = client.post("/v1/ask", json={"question": SEED})
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"]["type"] == "authentication_error"
        wrong = client.post("/v1/ask", json={"question": SEED}, headers={"Authorization": "Bearer " + KEY[:-1] + "X"})
        assert wrong.status_code == 401
        assert client.get("/v1/models", headers={"Authorization": KEY}).status_code == 401  # no "Bearer"
        good = client.post("/v1/ask", json={"question": SEED}, headers={"Authorization": f"Bearer {KEY}"})
        assert good.status_code == 200 and good.json()["sentence"] == LANDING_SENTENCE
    deadline = time.monotonic() + 5  # the line is written just after the response is sent
    while "POST /v1/ask 200" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    logged = caplog.text
    assert "POST /v1/ask 200" in logged and f"key={key_id(KEY)}" in logged and "POST /v1/ask 401" in logged
    assert KEY not in logged and SEED not in logged and "Putin" not in logged


def test_rate_limit_gives_429_with_retry_after(keyed_server):
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=keyed_server, timeout=60) as client:
        statuses = [client.get("/v1/models", headers=auth) for _ in range(4)]
    refused = [r for r in statuses if r.status_code == 429]
    assert refused and int(refused[0].headers["retry-after"]) >= 1
    assert refused[0].json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(("body", "field"), [
    (b'{"question": "When does', "body"),  # bad JSON
    (b'{"question": 42}', "question"),
    (b'{"question": "x", "k": "many"}', "k"),
    (b'{"question": "x", "k": 0}', "k"),
    (b'{"question": "x", "since": "2025-13-45"}', "since"),
    (b'{"question": "x", "since": "2025-08-20", "until": "2025-08-01"}', "until"),
    (b'{"questoin": "x"}', "question"),
    (b'{"question": ""}', "question"),
    (b'{"question": "   "}', "question"),
    (json.dumps({"question": "Wann " * 120}).encode(), "question"),  # over QABOT_MAX_QUESTION_CHARS (500)
])
def test_bad_requests_get_422_naming_the_field(open_server, body, field):
    response = httpx.post(f"{open_server}/v1/ask", content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"].startswith(field) or error["param"] == field, error


def test_oversized_bodies_get_413(open_server):
    huge = json.dumps({"question": SEED, "pad": "x" * (2 << 20)}).encode()
    assert httpx.post(f"{open_server}/v1/ask", content=huge, timeout=60).status_code == 413

    def chunked() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    assert httpx.post(f"{open_server}/v1/ask", content=chunked(), timeout=60).status_code == 413


def test_chat_errors_read_like_openai(open_server):
    client = OpenAI(base_url=f"{open_server}/v1", api_key="x", max_retries=0, timeout=60)
    with pytest.raises(Exception, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": SEED}])
    with pytest.raises(Exception, match="last message must be the user"):
        client.chat.completions.create(model="qabot", messages=[{"role": "assistant", "content": "hi"}])


def test_no_keys_means_loopback_only(sample_index, model_cache_dir):
    check_bind("127.0.0.1", KeyRing(()))
    check_bind("::1", KeyRing(()))
    check_bind("0.0.0.0", KeyRing(Settings(api_keys=KEY).api_keys))
    with pytest.raises(ConfigError, match="QABOT_API_KEYS"):
        check_bind("0.0.0.0", KeyRing(()))
    proc = subprocess.run([sys.executable, "-m", "qabot", "serve", "--host", "0.0.0.0", "--index", str(sample_index)],
                          capture_output=True, text=True, timeout=60, env=_env(model_cache_dir), cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: refusing to listen on 0.0.0.0")


KNOWN = [(q, words) for q, _, words in QUESTIONS if words]


def test_fifty_concurrent_clients_each_get_their_own_answer(news_index, e5):
    with running_server(news_index, e5) as url:
        def one(i: int) -> tuple[str, str, str | None]:
            question, words = KNOWN[i % len(KNOWN)]
            with httpx.Client(base_url=url, timeout=300) as client:
                answer = client.post("/v1/ask", json={"question": question}).json()
            return question, words, answer["sentence"]

        with ThreadPoolExecutor(50) as pool:  # their latencies: python -m scripts.bench.bench_api
            results = list(pool.map(one, range(50)))
    assert len(results) == 50
    for question, words, sentence in results:
        assert sentence is not None and words in sentence, (question, sentence)


def test_an_index_republished_under_traffic_loses_no_request(tmp_path, e5):
    archive = tmp_path / "archive"
    shutil.copytree(sample_archive(), archive, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    index = tmp_path / "index"
    build_index(archive, index, embedder=e5)
    stop, failures, answered = threading.Event(), [], []

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v1/ask", json={"question": SEED})
                    ok = response.status_code == 200 and response.json()["sentence"] == LANDING_SENTENCE
                    (answered if ok else failures).append(response.status_code)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    with running_server(index, e5) as url:
        before = httpx.get(f"{url}/readyz", timeout=60).json()
        with ThreadPoolExecutor(20) as pool:
            for _ in range(20):
                pool.submit(client, url)
            _wait_for(lambda: len(answered) >= 20 or failures, "no answers before the republish")
            (archive / "2025-08-16-zoo.txt").write_text(
                " date 2025-08-16 Im Zoo von Musterstadt ist am Samstag ein Elefant namens Benno geboren worden. "
                "Er wog bei der Geburt 98 Kilogramm.\n", encoding="utf-8")
            build_index(archive, index, embedder=e5)
            deadline = time.monotonic() + 60
            while (after := httpx.get(f"{url}/readyz", timeout=60).json())["generation"] == before["generation"]:
                assert time.monotonic() < deadline, "the new generation was never picked up"
                time.sleep(0.2)
            switched = len(answered)
            _wait_for(lambda: len(answered) >= switched + 20 or failures, "no answers after the republish")
            stop.set()
        new = httpx.post(f"{url}/v1/ask", json={"question": "Wann wurde der Elefant Benno geboren?"}, timeout=60).json()
    assert not failures, failures[:5]
    assert len(answered) >= 40 and after["articles"] == 2
    assert new["passages"][0]["article_id"] == "2025-08-16-zoo" and "Benno" in new["sentence"]


def _wait_for(condition: Callable[[], object], message: str, timeout: float = 120) -> None:
    """Until ``condition()`` is truthy (a count reached, not a guessed sleep); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def _env(model_cache_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_") and k != "TELEGRAM_BOT_TOKEN"}
    env["QABOT_CACHE_DIR"] = str(model_cache_dir)
    return env


def test_sigterm_drains_requests_in_flight_and_exits_0(sample_index, model_cache_dir):
    port = free_port()
    env = {**_env(model_cache_dir), "QABOT_API_RATE_BURST": "1000"}
    proc = subprocess.Popen([sys.executable, "-m", "qabot", "serve", "--port", str(port), "--index", str(sample_index)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "slow"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            time.sleep(0.1)

        n = 48  # answers take ~50 ms: enough that most are still queued when the first is back
        clients = [httpx.Client(base_url=url, timeout=120) for _ in range(n)]
        for client in clients:  # connected (keep-alive) before the questions go out
            assert client.get("/healthz").status_code == 200

        def ask(i: int) -> tuple[int, float]:
            status = clients[i].post("/v1/ask", json={"question": f"{SEED} ({i})"}).status_code
            return status, time.monotonic()

        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(ask, i) for i in range(n)]
            wait(futures, return_when=FIRST_COMPLETED)  # the server is answering; the rest are in flight
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            results = [f.result() for f in futures]
        for client in clients:
            client.close()
        statuses = [status for status, _ in results]
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert statuses == [200] * n
    assert any(done > signalled for _, done in results), "no request was still in flight at SIGTERM"
    assert proc.returncode == 0, err
    assert err.count("POST /v1/ask 200") == n and "stopped after SIGTERM" in err
    assert "Putin" not in err  # questions are not logged unless QABOT_LOG_MESSAGES


def test_the_api_answers_with_the_checked_llm_reply_when_one_is_configured(sample_index, e5):
    """QABOT_LLM_*: /v1/ask and the chat endpoint give the checked LLM reply; an LLM failure
    gives the extractive answer; the LLM's key is in no response."""
    from .fake_openai import KEY as LLM_KEY
    from .fake_openai import FakeOpenAI

    with FakeOpenAI() as fake, running_server(sample_index, e5, llm_url=fake.base_url, llm_model="fake-model",
                                              llm_api_key=LLM_KEY, llm_timeout=5.0) as url:
        good = "Putin soll um 11.00 Uhr Ortszeit mit dem Flugzeug in Alaska ankommen. [1]"
        with httpx.Client(base_url=url, timeout=60) as client:
            fake.script(good)
            answer = client.post("/v1/ask", json={"question": "Wann landet Putin in Alaska?"}).json()
            assert answer["reply_source"] == "llm" and answer["reply"] == good and answer["models"]["llm"] == "fake-model"
            assert answer["sentence"] == LANDING_SENTENCE  # the extractive answer rides along
            fake.fail_next(status=500)
            fallback = client.post("/v1/ask", json={"question": "Wann landet Putin in Alaska?"})
            assert fallback.json()["reply_source"] == "extractive" and LLM_KEY not in fallback.text
        fake.script(good)
        chat = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0).chat.completions.create(
            model="qabot", messages=[{"role": "user", "content": "Wann landet Putin in Alaska?"}])
        assert chat.choices[0].message.content.startswith(good)
