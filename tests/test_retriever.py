"""The Retriever's own duties: nothing but the question embedded when answering, thread safety, and opening an index."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from qabot.answering.retriever import Retriever
from qabot.config import MAX_QUESTION_CHARS, Settings
from qabot.errors import IndexMismatchError, QuestionError, StoreError
from qabot.indexer import build_index
from qabot.store import Store
from tests.fakes import HashEmbedder

# Two sentences each, one chunk each.
ARTICLES = {
    "tram": "Der Stadtrat von Musterstadt beschloss eine neue Straßenbahnlinie. Sie soll 2027 eröffnet werden.",
    "zoo": "Der Zoo von Musterstadt bekommt zwei Elefanten aus Thailand. Sie kommen im August an.",
    "harbour": "Im Hafen von Nordstadt legte ein Containerschiff mit Bananen an. Es kam aus Ecuador.",
    "school": "Die Grundschule in Südstadt wird im Sommer renoviert. Die Arbeiten kosten drei Millionen Euro.",
}
QUESTIONS = {
    "tram": "Straßenbahnlinie Stadtrat beschloss",
    "zoo": "Elefanten Thailand Zoo",
    "harbour": "Containerschiff Bananen Hafen",
    "school": "Grundschule renoviert Südstadt",
}


@pytest.fixture
def index(tmp_path: Path, hash_embedder: HashEmbedder) -> Path:
    archive = tmp_path / "archive.jsonl"
    rows = [{"id": key, "date": "2025-08-15", "title": key, "text": text} for key, text in ARTICLES.items()]
    archive.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    build_index(archive, tmp_path / "ix", embedder=hash_embedder)
    return tmp_path / "ix"


class CountingEmbedder(HashEmbedder):
    """Counts the texts embedded as passages and as questions."""

    def __init__(self) -> None:
        super().__init__()
        self.passages = 0
        self.queries = 0

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        self.passages += len(texts)
        return super().embed_passages(texts)

    def embed_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        self.queries += len(texts)
        return super().embed_queries(texts)


def test_only_the_question_is_embedded_at_question_time(index: Path):
    embedder = CountingEmbedder()
    with Retriever(Store.open(index, model=embedder.name), embedder, rerank=50) as retriever:
        answers = [retriever.ask(q, k=4) for q in QUESTIONS.values()] + [retriever.search(q, k=4) for q in QUESTIONS.values()]
    assert all(answers) and answers[0].sentence is not None
    assert (embedder.passages, embedder.queries) == (0, 2 * len(QUESTIONS))


def test_stored_sentence_vectors_score_as_fresh_embeddings_would(index: Path, hash_embedder: HashEmbedder):
    with Retriever(Store.open(index, model=hash_embedder.name), hash_embedder) as retriever:
        answer = retriever.ask(QUESTIONS["zoo"])
        query = hash_embedder.embed_queries([answer.question])[0]
        fresh = float(hash_embedder.embed_passages([answer.sentence])[0] @ query)
        stored, vectors = retriever.store.sentences_in([answer.passages[answer.passage_index].chunk_id])
    assert answer.sentence in ARTICLES["zoo"]
    assert [ARTICLES["zoo"][s.start : s.end] for s in stored] == [
        "Der Zoo von Musterstadt bekommt zwei Elefanten aus Thailand.", "Sie kommen im August an."]
    assert abs(max(vectors @ query) - fresh) < 2e-3  # float16 on disk


class SlowEmbedder(HashEmbedder):
    """Yields the GIL inside every call, so that many questions are embedding at once."""

    def embed_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        time.sleep(0.001)
        return super().embed_queries(texts)


def test_many_threads_asking_at_once_get_the_answers_one_thread_gets(index: Path):
    old_interval = sys.getswitchinterval()
    reference = Retriever(Store.open(index, model="hash-test"), HashEmbedder())
    expected = {key: reference.ask(question, k=2) for key, question in QUESTIONS.items()}
    reference.close()
    retriever = Retriever(Store.open(index, model="hash-test"), SlowEmbedder())
    questions = [key for key in QUESTIONS for _ in range(10)]
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda key: (key, retriever.ask(QUESTIONS[key], k=2)), questions))
    finally:
        sys.setswitchinterval(old_interval)
        retriever.close()
    for key, answer in answers:
        # the same answer as one thread gives: no vector got mixed up
        assert (answer.sentence, answer.score) == (expected[key].sentence, expected[key].score)
        assert [p.chunk_id for p in answer.passages] == [p.chunk_id for p in expected[key].passages]


# -- open -----------------------------------------------------------------------------------


def test_a_model_of_another_dimension_is_an_index_mismatch(index: Path):
    with pytest.raises(IndexMismatchError) as caught:
        Retriever.open(index, embedder=HashEmbedder(dimension=64))
    message = str(caught.value)
    assert isinstance(caught.value, StoreError)
    assert "hash-test" in message and "256" in message and "64" in message and "--rebuild" in message


def test_open_without_settings_ignores_the_environment_and_dotenv(index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QABOT_TOP_K", "1")
    monkeypatch.setenv("QABOT_MIN_SCORE", "0.5")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("QABOT_TOP_K=2\n", encoding="utf-8")
    with Retriever.open(index, embedder=HashEmbedder()) as retriever:
        assert (retriever.top_k, retriever.min_score) == (Settings().top_k, None)
    settings = Settings.from_env(os.environ)
    with Retriever.open(index, settings=settings, embedder=HashEmbedder()) as retriever:
        assert (retriever.top_k, retriever.min_score) == (1, 0.5)


def test_open_without_a_folder_uses_the_default_one_not_qabot_index(index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QABOT_INDEX", str(index))
    monkeypatch.chdir(tmp_path)  # no index/default here
    with pytest.raises(StoreError):
        Retriever.open(embedder=HashEmbedder())
    with Retriever.open(settings=Settings.from_env(os.environ), embedder=HashEmbedder()) as retriever:
        assert retriever.stats()["articles"] == len(ARTICLES)


def test_the_question_limit_and_the_keyword_leg_come_from_the_settings(index: Path):
    """QABOT_MAX_QUESTION_CHARS is one limit for the bot, the API and the Retriever; QABOT_HYBRID=false drops the keyword leg."""
    embedder = HashEmbedder()
    with Retriever.open(index, settings=Settings(reranker=None), embedder=embedder) as retriever:
        assert (retriever.max_question_chars, retriever.hybrid) == (MAX_QUESTION_CHARS, True)
        with pytest.raises(QuestionError, match=f"at most {MAX_QUESTION_CHARS}"):
            retriever.ask("x" * (MAX_QUESTION_CHARS + 1))
    settings = Settings.from_env({"QABOT_MAX_QUESTION_CHARS": "40", "QABOT_HYBRID": "false", "QABOT_RERANKER": ""})
    with Retriever.open(index, settings=settings, embedder=embedder) as retriever:
        searched: list[object] = []
        search = retriever.store.keyword_search_words
        retriever.store.keyword_search_words = lambda *args: searched.append(args) or search(*args)  # type: ignore[method-assign]
        with pytest.raises(QuestionError, match="at most 40"):
            retriever.ask("x" * 41)
        assert retriever.ask(QUESTIONS["zoo"]).passages and searched == []  # the vectors alone answer
        retriever.hybrid = True
        assert retriever.ask(QUESTIONS["zoo"]).passages and searched
