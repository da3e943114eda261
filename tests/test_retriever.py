"""The Retriever's own duties: a thread-safe sentence cache, and opening an index without the environment."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.errors import IndexMismatchError, StoreError
from qabot.indexer import build_index
from qabot.models.embedding import HashEmbedder
from qabot.store import Store

# Two sentences each, one chunk each: a question about one article embeds exactly its two sentences.
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


class GatedEmbedder(HashEmbedder):
    """Hands passage vectors out one row at a time, and holds the first caller after its first row.

    A real embedder returns an array at once, and the old cache code then inserted and
    re-ordered entries with no lock: another thread could run in between. Pausing the first
    caller between rows opens that window for as long as the test needs, so the interleaving
    is certain instead of rare.
    """

    def __init__(self) -> None:
        super().__init__()
        self.paused = threading.Event()  # the first caller has taken its first row and waits
        self.release = threading.Event()  # the test lets it go on
        self._first = True
        self._lock = threading.Lock()

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False) -> Iterator[np.ndarray]:  # type: ignore[override]
        rows = super().embed_passages(texts)
        with self._lock:
            gated, self._first = self._first, False
        return self._rows(rows, gated)

    def _rows(self, rows: np.ndarray, gated: bool) -> Iterator[np.ndarray]:
        for number, row in enumerate(rows):
            yield row
            if gated and number == 0:
                self.paused.set()
                assert self.release.wait(10), "the test never released the first question"


def test_a_question_evicting_anothers_sentences_meanwhile_is_harmless(index: Path):
    # Cache of two, one chunk per question, two sentences per chunk: the second question's two
    # sentences push out what the first had cached before it finishes.
    embedder = GatedEmbedder()
    retriever = Retriever(Store.open(index, model=embedder.name), embedder, top_k=1, rerank=1, sentence_cache=2)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(retriever.search, QUESTIONS["tram"], 1)
        assert embedder.paused.wait(10)
        second = retriever.search(QUESTIONS["zoo"], 1)
        embedder.release.set()
        passages = first.result(timeout=10)  # the old code raised KeyError here
    assert [p.article_id for p in passages] == ["tram"] and [p.article_id for p in second] == ["zoo"]
    assert len(retriever._cache) <= 2
    retriever.close()


def test_a_question_with_more_sentences_than_the_cache_holds(index: Path, hash_embedder: HashEmbedder):
    with Retriever(Store.open(index, model=hash_embedder.name), hash_embedder, sentence_cache=1) as retriever:
        assert retriever.ask("Musterstadt").passages  # every article's two sentences, a cache of one
        assert len(retriever._cache) == 1


class SlowEmbedder(HashEmbedder):
    """Yields the GIL inside every call, so that many questions are embedding at once."""

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        time.sleep(0.001)
        return super().embed_passages(texts)


def test_many_threads_asking_at_once_with_a_tiny_cache(index: Path):
    old_interval = sys.getswitchinterval()
    reference = Retriever(Store.open(index, model="hash-test"), HashEmbedder())
    expected = {key: reference.ask(question, k=2) for key, question in QUESTIONS.items()}
    reference.close()
    retriever = Retriever(Store.open(index, model="hash-test"), SlowEmbedder(), sentence_cache=3)
    questions = [key for key in QUESTIONS for _ in range(10)]
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda key: (key, retriever.ask(QUESTIONS[key], k=2)), questions))
    finally:
        sys.setswitchinterval(old_interval)
        retriever.close()
    for key, answer in answers:
        # the same answer as one thread with a big cache gives: no vector got mixed up
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
