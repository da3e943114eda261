"""The Retriever: a question in, ranked passages or a cited Answer out.

    >>> from qabot import Retriever
    >>> r = Retriever.open("index/my-archive")
    >>> answer = r.ask("When does Putin land in Alaska?")
    >>> answer.sentence, answer.passages[0].date

It composes the store (SQLite + FAISS), the embedder, the rankings (search.py) and the
sentence picker (answer.py). It is safe to call from several threads at once (the bot
runs each question in a worker thread): the SQLite connection is shared under a lock.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from . import answer as answering
from . import search
from .chunking import split_sentences
from .config import Settings
from .documents import Answer, Passage
from .embedding import Embedder, load_embedder
from .errors import QuestionError
from .store import Store, read_manifest

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
# How many chunks the dense leg considers before the answer picker looks at the top ones.
CANDIDATES = 50


class Retriever:
    """Answers questions from one index folder."""

    def __init__(self, store: Store, embedder: Embedder, *, top_k: int = 5) -> None:
        self.store = store
        self.embedder = embedder
        self.top_k = top_k
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> Retriever:
        """Open the index at ``index_dir`` (default: the configured one) with its model.

        The model is the one the index was built with (from its manifest), unless
        ``embedder`` is given; a configured QABOT_MODEL that differs is an error.
        """
        settings = settings if settings is not None else Settings.load()
        folder = Path(index_dir) if index_dir is not None else settings.index_dir
        manifest = read_manifest(folder)
        if embedder is None:
            configured = settings.model
            model = manifest.model if configured == Settings().model else configured
            embedder = load_embedder(
                model, cache_dir=settings.model_cache_dir, query_prompt=settings.query_prompt,
                passage_prompt=settings.passage_prompt, device=settings.device,
            )
        store = Store.open(folder, model=embedder.name)
        if store.manifest.dimension != embedder.dimension:
            raise QuestionError(f"model {embedder.name} gives {embedder.dimension} dims, the index has {store.manifest.dimension}")
        log.info("opened %s: %s, model %s", folder, store.counts(), embedder.name)
        return cls(store, embedder, top_k=settings.top_k)

    def close(self) -> None:
        with self._lock:
            self.store.close()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- questions ----------------------------------------------------------------------

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        """The ``k`` passages that best match ``question``, best first."""
        question = _clean(question)
        k = k or self.top_k
        query = self.embedder.embed_queries([question])[0]
        return self._search(question, query, k)

    def ask(self, question: str, *, k: int | None = None) -> Answer:
        """The sentence that answers ``question``, with the cited passages (best first)."""
        question = _clean(question)
        k = k or self.top_k
        query = self.embedder.embed_queries([question])[0]
        passages = self._search(question, query, k)
        found = answering.candidates(passages, split_sentences)
        if not found:
            return Answer(question=question, sentence=None, passages=tuple(passages))
        sentence_vectors = self.embedder.embed_passages([c.text for c in found])
        similarity = sentence_vectors @ query
        picked = answering.pick(question, found, similarity, [p.score for p in passages])
        if picked is None:
            return Answer(question=question, sentence=None, passages=tuple(passages))
        best, best_score = picked
        choice = found[best]
        return Answer(
            question=question,
            sentence=choice.text,
            passages=tuple(passages),
            passage_index=choice.passage_index,
            sentence_start=choice.start,
            sentence_end=choice.end,
            context=self._context(passages[choice.passage_index].article_id, choice.start, choice.end),
            score=best_score,
        )

    def stats(self) -> dict[str, Any]:
        """Size and make-up of the index, for /start and `qabot stats`."""
        with self._lock:
            first, last = self.store.date_range()
            return {**self.store.counts(), "first_date": first, "last_date": last, "model": self.store.manifest.model}

    # -- internals ----------------------------------------------------------------------

    def _search(self, question: str, query: np.ndarray, k: int) -> list[Passage]:
        with self._lock:
            ranking = search.dense_ranking(self.store, query, max(k, CANDIDATES))
            return search.passages_for(self.store, ranking[:k])

    def _context(self, article_id: str, start: int, end: int) -> str | None:
        with self._lock:
            text = self.store.article_text(article_id)
        if text is None:
            return None
        lo, hi = answering.context_span(split_sentences(text), start, end)
        return text[lo:hi]


def _clean(question: str) -> str:
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    question = " ".join(question.split())
    if not question:
        raise QuestionError("the question is empty; ask something like “When does Putin land in Alaska?”")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is too long ({len(question)} characters; at most {MAX_QUESTION_CHARS})")
    return question
