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
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Self

import numpy as np

from qabot.answering import picking as answering
from qabot.answering import rankings as search
from qabot.ingest.chunking import split_sentences
from qabot.config import Settings
from qabot.answering.dates import find_date_range
from qabot.answering.dedupe import collapse
from qabot.documents import Answer, Passage
from qabot.models.embedding import Embedder, embedder_for
from qabot.errors import QuestionError
from qabot.lexicon import detect_language
from qabot.store.store import Store, read_manifest

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
# How many chunks each leg (dense, keyword) contributes to the fused candidate list.
CANDIDATES = 50
# How many fused candidates are split into sentences and reranked.
RERANK = 12
# Bonus for a high keyword (FTS5) rank: KEYWORD_BONUS / (1 + rank / 5).
KEYWORD_BONUS = 0.03
# Below this best-passage relevance the answer is "not in the archive". Calibrated for
# multilingual-e5-small on the XQuAD dev set, per question language (see the README):
# German questions score higher against German text, so they need a higher bar. English
# 0.78 keeps ~98% of answerable questions; German 0.83 keeps ~97% and answers ~8% of
# questions whose article is absent (at 0.78 it answered ~97% of those).
CALIBRATED_MIN_SCORE = {"multilingual-e5-small": {"en": 0.78, "de": 0.83}}


def default_min_score(model: str, language: str = "en") -> float:
    """The abstention threshold calibrated for ``model`` and a question in ``language``
    ("en"/"de"); 0 (never abstain) for uncalibrated models."""
    calibrated = CALIBRATED_MIN_SCORE.get(model.rsplit("/", 1)[-1])
    return calibrated.get(language, calibrated["en"]) if calibrated else 0.0

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
        min_score: float | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.top_k = top_k
        self.hybrid = hybrid
        self.rerank = rerank
        self.sentence_weight = sentence_weight
        self.min_score = min_score  # None: the calibrated threshold for the question's language
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
            embedder = embedder_for(settings, model)
        store = Store.open(folder, model=embedder.name)
        if store.manifest.dimension != embedder.dimension:
            raise QuestionError(f"model {embedder.name} gives {embedder.dimension} dims, the index has {store.manifest.dimension}")
        log.info("opened %s: %s, model %s", folder, store.counts(), embedder.name)
        return cls(store, embedder, top_k=settings.top_k, min_score=settings.min_score)

    def close(self) -> None:
        with self._lock:
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- questions ----------------------------------------------------------------------

    def search(self, question: str, k: int | None = None, *, since: date | None = None, until: date | None = None) -> list[Passage]:
        """The ``k`` passages that best match ``question``, best first (near-duplicates collapsed).

        ``since``/``until`` (inclusive) limit the articles by date; without them, a date
        expression in the question ("im August 2025", "last week") is used, resolved against
        the newest article's date. When a date filter leaves nothing, all dates are searched.
        """
        return self._rank(_clean(question), k or self.top_k, since, until).passages

    def threshold(self, question: str) -> float:
        """The relevance below which ``question`` gets "not in the archive"."""
        if self.min_score is not None:
            return self.min_score
        return default_min_score(self.embedder.name, detect_language(None, question))

    def ask(self, question: str, *, k: int | None = None, since: date | None = None, until: date | None = None) -> Answer:
        """The sentence that answers ``question``, with the cited passages (best first).

        ``sentence`` is None ("not in the archive") when no passage is relevant enough
        (``min_score``). Dates work as in :meth:`search`.
        """
        question = _clean(question)
        ranked = self._rank(question, k or self.top_k, since, until)
        passages, notes = ranked.passages, list(ranked.notes)
        if not passages or ranked.relevance < self.threshold(question):
            return Answer(question=question, sentence=None, passages=tuple(passages), notes=tuple(notes))
        scores = answering.rank(question, ranked.found, ranked.similarity, [p.score for p in passages])
        if scores.size == 0:
            return Answer(question=question, sentence=None, passages=tuple(passages), notes=tuple(notes))
        best = answering.prefer_newer(ranked.found, scores, [p.date for p in passages], [p.article_id for p in passages])
        if best != int(np.argmax(scores)):
            older = passages[ranked.found[int(np.argmax(scores))].passage_index].date
            notes.append(f"Articles differ; the newer one ({passages[ranked.found[best].passage_index].date}) is preferred over {older}.")
        choice = ranked.found[best]
        return Answer(
            question=question,
            sentence=choice.text,
            passages=tuple(passages),
            passage_index=choice.passage_index,
            sentence_start=choice.start,
            sentence_end=choice.end,
            context=self._context(passages[choice.passage_index].article_id, choice.start, choice.end),
            score=float(scores[best]),
            notes=tuple(notes),
        )

    def stats(self) -> dict[str, Any]:
        """Size and make-up of the index, for /start and `qabot stats`."""
        with self._lock:
            first, last = self.store.date_range()
            return {**self.store.counts(), "first_date": first, "last_date": last, "model": self.store.manifest.model}

    # -- internals ----------------------------------------------------------------------

    def _rank(self, question: str, k: int, since: date | None, until: date | None) -> _Ranked:
        """Top ``k`` passages, reranked by their best sentence; and those sentences' similarities.

        Candidates come from the dense leg (and the keyword leg when ``hybrid``), fused by
        reciprocal rank, optionally limited by date; the best ``max(k, rerank)`` are split into
        sentences, and each passage's score becomes a blend of its own similarity and its best
        sentence's, plus a small bonus for a high keyword rank. Near-duplicates are collapsed.
        """
        notes: list[str] = []
        query = self.embedder.embed_queries([question])[0]
        with self._lock:
            if since is None and until is None:
                since, until = self._dates_in(question)
            wide = CANDIDATES * 10 if (since or until) else CANDIDATES
            dense = search.dense_ranking(self.store, query, wide)
            keyword = search.keyword_ranking(self.store, question, wide) if self.hybrid else []
            fused = search.fuse_rrf([dense, keyword]) if keyword else dense
            if since or until:
                allowed = self.store.chunks_between([c for c, _ in fused], since, until)
                span = f"{since or '…'} – {until or '…'}"
                if allowed:
                    fused = [(c, s) for c, s in fused if c in allowed]
                    notes.append(f"Only articles dated {span}.")
                else:
                    notes.append(f"No article dated {span}; searched all dates.")
            pool = [chunk_id for chunk_id, _ in fused[: max(k, self.rerank)]]
            vectors = self.store.vectors_for(pool)
            passages = search.passages_for(self.store, list(zip(pool, (vectors @ query).tolist())))
        found = answering.candidates(passages, split_sentences, dedupe=False)
        similarity = self._sentence_vectors([c.text for c in found]) @ query if found else np.zeros(0, np.float32)
        best = np.full(len(passages), -1.0, dtype=np.float32)
        for candidate, value in zip(found, similarity):
            best[candidate.passage_index] = max(best[candidate.passage_index], value)
        relevance = search.blend(np.array([p.score for p in passages], dtype=np.float32), best, weight=self.sentence_weight)
        bonus = search.keyword_bonus([p.chunk_id for p in passages], keyword, weight=KEYWORD_BONUS)
        scores = relevance + bonus
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        groups = collapse(order, lambda i: passages[i].text, key=lambda i: passages[i].article_id)
        duplicates = {keeper: len(dups) for keeper, dups in groups}
        order = [keeper for keeper, _ in groups]
        # Neighbouring chunks of one article become one passage (more context, fewer repeats).
        merged = search.merge_neighbours([(passages[i].article_id, passages[i].start, passages[i].end) for i in order], limit=k)
        ranked = [self._merged([passages[order[j]] for j in group], float(scores[order[group[0]]]),
                               sum(duplicates[order[j]] for j in group)) for group in merged]
        # Re-number the candidates for the kept passages, dropping repeats from overlapping chunks.
        position = {order[j]: new for new, group in enumerate(merged) for j in group}
        order = [order[group[0]] for group in merged]
        kept, kept_similarity, seen = [], [], set()
        for candidate, value in sorted(zip(found, similarity), key=lambda cv: position.get(cv[0].passage_index, k)):
            new = position.get(candidate.passage_index)
            key = (passages[candidate.passage_index].article_id, candidate.start)
            if new is None or key in seen:
                continue
            seen.add(key)
            kept.append(replace(candidate, passage_index=new))
            kept_similarity.append(value)
        top = float(max((relevance[i] for i in position), default=0.0))
        return _Ranked(ranked, kept, np.array(kept_similarity, dtype=np.float32), top, tuple(notes))

    def _merged(self, parts: list[Passage], score: float, duplicates: int) -> Passage:
        """One passage spanning ``parts`` (the best first), cut from the article's text."""
        best = parts[0]
        if len(parts) == 1:
            return replace(best, score=score, duplicates=duplicates)
        start, end = min(p.start for p in parts), max(p.end for p in parts)
        with self._lock:
            text = self.store.article_text(best.article_id)
        if text is None:  # the article went away meanwhile: keep the best part alone
            return replace(best, score=score, duplicates=duplicates)
        return replace(best, text=text[start:end], start=start, end=end, score=score, duplicates=duplicates)

    def _dates_in(self, question: str) -> tuple[date | None, date | None]:
        """A date expression in the question, resolved against the newest article's date."""
        newest = self.store.date_range()[1]
        found = find_date_range(question, today=date.fromisoformat(newest) if newest else date.today())
        return (found.since, found.until) if found else (None, None)

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


@dataclass(frozen=True)
class _Ranked:
    passages: list[Passage]
    found: list[answering.Candidate]
    similarity: np.ndarray
    relevance: float  # the best passage's blended similarity, before bonuses: the abstention signal
    notes: tuple[str, ...]


def _clean(question: str) -> str:
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    question = " ".join(question.split())
    if not question:
        raise QuestionError("the question is empty; ask something like “When does Putin land in Alaska?”")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is too long ({len(question)} characters; at most {MAX_QUESTION_CHARS})")
    return question
