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
from collections import OrderedDict
from dataclasses import replace
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
# How many chunks each leg (dense, keyword) contributes to the fused candidate list.
CANDIDATES = 50
# How many fused candidates are split into sentences and reranked.
RERANK = 8
# Passage score = (1 - w) * passage similarity + w * best sentence similarity.
SENTENCE_WEIGHT = 0.5
SENTENCE_CACHE = 20_000


class Retriever:
    """Answers questions from one index folder."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        *,
        top_k: int = 5,
        hybrid: bool = True,
        rerank: int = RERANK,
        sentence_weight: float = SENTENCE_WEIGHT,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.top_k = top_k
        self.hybrid = hybrid
        self.rerank = rerank
        self.sentence_weight = sentence_weight
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

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
        query = self.embedder.embed_queries([question])[0]
        passages, _, _ = self._rank(question, query, k or self.top_k)
        return passages

    def ask(self, question: str, *, k: int | None = None) -> Answer:
        """The sentence that answers ``question``, with the cited passages (best first)."""
        question = _clean(question)
        query = self.embedder.embed_queries([question])[0]
        passages, found, similarity = self._rank(question, query, k or self.top_k)
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

    def _rank(self, question: str, query: np.ndarray, k: int) -> tuple[list[Passage], list[answering.Candidate], np.ndarray]:
        """Top ``k`` passages, reranked by their best sentence; and those sentences' similarities.

        Candidates come from the dense leg (and the keyword leg when ``hybrid``), fused by
        reciprocal rank; the best ``max(k, rerank)`` are split into sentences, and each
        passage's score becomes a blend of its own similarity and its best sentence's.
        """
        with self._lock:
            dense = search.dense_ranking(self.store, query, CANDIDATES)
            keyword = search.keyword_ranking(self.store, question, CANDIDATES) if self.hybrid else []
            fused = search.fuse_rrf([dense, keyword]) if keyword else dense
            pool = [chunk_id for chunk_id, _ in fused[: max(k, self.rerank)]]
            vectors = self.store.vectors_for(pool)
            passages = search.passages_for(self.store, list(zip(pool, (vectors @ query).tolist())))
        found = answering.candidates(passages, split_sentences, dedupe=False)
        similarity = self._sentence_vectors([c.text for c in found]) @ query if found else np.zeros(0, np.float32)
        best = np.full(len(passages), -1.0, dtype=np.float32)
        for candidate, value in zip(found, similarity):
            best[candidate.passage_index] = max(best[candidate.passage_index], value)
        scores = search.blend(np.array([p.score for p in passages], dtype=np.float32), best, weight=self.sentence_weight)
        order = [int(i) for i in np.argsort(-scores, kind="stable")][:k]
        ranked = [replace(passages[i], score=float(scores[i])) for i in order]
        # Re-number the candidates for the kept passages, dropping repeats from overlapping chunks.
        position = {old: new for new, old in enumerate(order)}
        kept, kept_similarity, seen = [], [], set()
        for candidate, value in sorted(zip(found, similarity), key=lambda cv: position.get(cv[0].passage_index, k)):
            new = position.get(candidate.passage_index)
            key = (passages[candidate.passage_index].article_id, candidate.start)
            if new is None or key in seen:
                continue
            seen.add(key)
            kept.append(replace(candidate, passage_index=new))
            kept_similarity.append(value)
        return ranked, kept, np.array(kept_similarity, dtype=np.float32)

    def _sentence_vectors(self, texts: list[str]) -> np.ndarray:
        """Passage embeddings of sentences, cached: follow-ups and neighbours reuse them."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.embedder.embed_passages(missing)):
                self._cache[text] = vector
                if len(self._cache) > SENTENCE_CACHE:
                    self._cache.popitem(last=False)
        for text in texts:
            self._cache.move_to_end(text)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)

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
