"""The Retriever: a question in, ranked passages or a cited Answer out.

    >>> from qabot import Retriever
    >>> r = Retriever.open("index/my-archive")
    >>> answer = r.ask("When does Putin land in Alaska?")
    >>> answer.sentence, answer.passages[0].date

It does the I/O of answering (embedding the question, the only text embedded at question
time; store lookups, sentence vectors included, stored at index time) and hands
the rest to pure steps: :func:`~qabot.answering.questions.clean_question` for the question,
the ranking steps of :mod:`qabot.answering.ranking_steps` (candidates -> rerank -> collapse -> merge
-> renumber) for the passages, and :mod:`qabot.answering.picking` for the answering sentence.
It is safe to call from several threads at once (the bot runs each question in a worker
thread): the SQLite connection and the vector index are shared under one lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np

from qabot.answering import answer_span, legs, picking, ranking_steps, reranker_blend
from qabot.answering.dates import find_date_range
from qabot.answering.llm_answer import LLMAnswerer
from qabot.answering.questions import clean_question
from qabot.config import DEFAULT_MODEL, MAX_QUESTION_CHARS, Settings
from qabot.documents import Answer, Models, Passage
from qabot.errors import IndexMismatchError, StoreError
from qabot.ingest.sentences import split_sentences
from qabot.lexicon import detect_language
from qabot.models.embedding import Embedder, embedder_for
from qabot.models.llm import LLMClient, llm_for
from qabot.models.optional import Deadline, SlowModelError
from qabot.models.reader import Reader, ReaderAnswer, reader_for
from qabot.models.reranker import Reranker, reranker_for
from qabot.store.backends import Location, manifest_at, open_reader, parse_location
from qabot.store.interface import IndexReader
from qabot.store.manifest import FORMAT_VERSION

log = logging.getLogger(__name__)

# How many fused candidates are split into sentences and reranked.
RERANK = 12
# Below this best-passage relevance the answer is "not in the archive". Calibrated for
# multilingual-e5-small on the XQuAD dev set, per question language (docs/models.md):
# German questions score higher against German text, so they need a higher bar. English
# 0.78 keeps ~98% of answerable questions; German 0.83 keeps ~97% and answers ~8% of
# questions whose article is absent (at 0.78 it answered ~97% of those).
CALIBRATED_MIN_SCORE = {DEFAULT_MODEL: {"en": 0.78, "de": 0.83}}


def default_min_score(model: str, language: str = "en") -> float:
    """The abstention threshold calibrated for ``model`` and a question in ``language``
    ("en"/"de"); 0 (never abstain) for uncalibrated models."""
    calibrated = CALIBRATED_MIN_SCORE.get(model.rsplit("/", 1)[-1])
    return calibrated.get(language, calibrated["en"]) if calibrated else 0.0

# The sentence leg: chunks ranked by their sentences nearest to the question, fused with the
# chunk and keyword legs; it reads this many sentences per chunk it ranks (several are one chunk's).
# Off by default: hidden among 1,000 fang-covid articles it moved English recall@1 by +0.3 points
# on the tuning half (+1.3 on the other), recall@10 by +0.6 (+1.3), German by 0, at +12 ms a
# question and the sentence vectors in memory (docs/models.md). QABOT_SENTENCE_LEG=1 turns it on.
SENTENCE_LEG = False
SENTENCE_HITS = 3
# Passage score = (1 - w) * passage similarity + w * best sentence similarity.
SENTENCE_WEIGHT = 0.5
# With a reranker: how many fused candidates it rescores (QABOT_RERANK_POOL).
RERANK_POOL = 25
# With a reranker: cite the passage holding the reranked answer sentence first? Measured and off:
# with qabot-reranker it moved a wrong passage first often enough that dev recall@1 fell
# (EN 0.924 -> 0.897, DE 0.972 -> 0.957) while the answer sentences improved either way.
LEAD_WITH_ANSWER = False
# How long one optional model (reranker, reader) may take per question before the answer falls
# back to the bi-encoder's; checked between its batches, so one batch may overrun it.
SEAM_SECONDS = 10.0
# How many of the top passages the reader reads (its cost grows with each).
READER_PASSAGES = 3

T = TypeVar("T")


class Retriever:
    """Answers questions from one index folder; safe to share between threads."""

    def __init__(
        self,
        store: IndexReader,
        embedder: Embedder,
        *,
        top_k: int = 5,
        hybrid: bool = True,
        sentence_leg: bool = SENTENCE_LEG,
        rerank: int = RERANK,
        sentence_weight: float = SENTENCE_WEIGHT,
        min_score: float | None = None,
        max_question_chars: int = MAX_QUESTION_CHARS,
        reranker: Reranker | None = None,
        rerank_pool: int = RERANK_POOL,
        rerank_sentences: int = reranker_blend.RERANK_SENTENCES,
        lead_with_answer: bool | None = None,
        reader: Reader | None = None,
        seam_seconds: float | None = SEAM_SECONDS,
        llm: LLMClient | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.top_k = top_k
        self.hybrid = hybrid
        self.sentence_leg = sentence_leg
        self.rerank = rerank
        self.sentence_weight = sentence_weight
        self.min_score = min_score  # None: the calibrated threshold for the question's language
        self.max_question_chars = max_question_chars
        # The optional models: each None when unset; a failure falls back to the bi-encoder's answer.
        self.reranker = reranker
        self.rerank_pool = rerank_pool  # 0: the reranker reads answer sentences only
        self.rerank_sentences = rerank_sentences
        self.lead_with_answer = LEAD_WITH_ANSWER if lead_with_answer is None else lead_with_answer
        self.reader = reader
        self.seam_seconds = seam_seconds
        # The LLM answer (refine): its reply is checked against the passages with this model.
        self.llm = LLMAnswerer(llm, embedder) if llm is not None else None
        self._failed: set[str] = set()  # seams whose failure was logged (once)
        self._lock = threading.RLock()  # the store (one SQLite connection, one FAISS index)

    @classmethod
    def open(
        cls,
        index_dir: str | Path | Location | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> Retriever:
        """Open the index at ``index_dir`` with its model.

        ``settings`` are the caller's (front ends pass the ones they loaded); without them the
        defaults, ``Settings()``, are used: this never reads the environment or ``.env``, so
        QABOT_* variables count only through settings built from them. ``index_dir`` defaults
        to ``settings.index_dir``. The model is the one the index was built with (from its
        manifest), unless ``embedder`` is given; a configured model that differs is an error.
        Raises StoreError for a missing or broken index, IndexMismatchError for a model that
        does not fit it.
        """
        settings = settings if settings is not None else Settings()
        folder = parse_location(index_dir) if index_dir is not None else settings.index_dir
        # Built before the store is opened: a half-set LLM (ConfigError) must not leave it open.
        llm = llm_for(settings.llm_url, settings.llm_model, api_key=settings.llm_api_key, timeout=settings.llm_timeout)
        manifest = manifest_at(folder, timeout=settings.pg_timeout)
        if embedder is None:
            configured = settings.model
            model = manifest.model if configured == Settings().model else configured
            embedder = embedder_for(settings, model)
        store = open_reader(folder, model=embedder.name, pool_size=settings.pg_pool, timeout=settings.pg_timeout)
        if store.manifest.dimension != embedder.dimension:
            store.close()
            raise IndexMismatchError(
                f"the index at {folder} holds {store.manifest.dimension}-dimensional vectors (model "
                f"{store.manifest.model}), but model {embedder.name} gives {embedder.dimension}: open it with "
                f"the model it was built with, or rebuild it with `qabot index ARCHIVE --rebuild`"
            )
        if store.manifest.format_version < FORMAT_VERSION:
            store.close()
            raise StoreError(
                f"the index at {folder} is of format {store.manifest.format_version}, from before sentence vectors; "
                f"upgrade it with `qabot index ARCHIVE --index {folder}` (it embeds only the sentences, and readers "
                "keep the old one meanwhile)"
            )
        log.info("opened %s: %s, model %s", folder, store.counts(), embedder.name)
        try:
            return cls(store, embedder, top_k=settings.top_k, min_score=settings.min_score, sentence_leg=settings.sentence_leg,
                       hybrid=settings.hybrid, max_question_chars=settings.max_question_chars,
                       reranker=reranker_for(settings), rerank_pool=settings.rerank_pool,
                       rerank_sentences=settings.rerank_sentences, reader=reader_for(settings),
                       llm=llm)
        except BaseException:
            store.close()
            raise

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
        Raises QuestionError for a question that is not text, empty or too long.
        """
        question = clean_question(question, max_chars=self.max_question_chars)
        if self.lead_with_answer:  # the reranked answer's passage first: the sentence stage orders passages too
            return list(self._scored(question, k or self.top_k, since, until)[0].passages)
        return list(self._rank(question, k or self.top_k, since, until).passages)

    def threshold(self, question: str) -> float:
        """The relevance below which ``question`` gets "not in the archive"."""
        if self.min_score is not None:
            return self.min_score
        return default_min_score(self.embedder.name, detect_language(None, question))

    def ask(self, question: str, *, k: int | None = None, since: date | None = None, until: date | None = None) -> Answer:
        """The sentence that answers ``question``, with the cited passages (best first).

        ``sentence`` is None ("not in the archive") when no passage is relevant enough
        (``min_score``). Dates and errors work as in :meth:`search`.
        """
        question = clean_question(question, max_chars=self.max_question_chars)
        ranked, scores = self._scored(question, k or self.top_k, since, until)
        passages, found, notes = ranked.passages, ranked.sentences, list(ranked.notes)
        models = replace(self.models, reranker=ranked.reranker, reader=None, llm=None)  # llm: set by refine only
        if not passages or ranked.relevance < self.threshold(question) or scores.size == 0:
            return Answer(question=question, sentence=None, passages=passages, notes=tuple(notes), models=models)
        read = self._read(question, passages)
        if read is not None:
            models = replace(models, reader=self.models.reader)
            if read.abstains:  # the reader is surer that the passages do not answer than of any span
                notes.append(answer_span.NO_ANSWER_NOTE)
                return Answer(question=question, sentence=None, passages=passages, notes=tuple(notes), models=models)
        located = answer_span.locate(passages, read, split_sentences) if read is not None else None
        if located is not None:  # the sentence that holds the reader's span
            choice, span = located.sentence, located.span
            same = [i for i, c in enumerate(found) if (c.passage_index, c.start) == (choice.passage_index, choice.start)]
            score = float(scores[same[0]]) if same else passages[choice.passage_index].score
        else:
            top = int(np.argmax(scores))
            best = picking.prefer_newer(found, scores, [p.date for p in passages], [p.article_id for p in passages])
            if best != top:
                newer, older = passages[found[best].passage_index].date, passages[found[top].passage_index].date
                notes.append(f"Articles differ; the newer one ({newer}) is preferred over {older}.")
            choice, span, score = found[best], None, float(scores[best])
            models = replace(models, reader=None)
        return Answer(
            question=question, sentence=choice.text, passages=passages, passage_index=choice.passage_index,
            sentence_start=choice.start, sentence_end=choice.end, score=score, notes=tuple(notes),
            context=self._context(passages[choice.passage_index].article_id, choice.start, choice.end),
            span=span, models=models,
        )

    @property
    def models(self) -> Models:
        """The models behind this retriever's answers (the optional seams: None when unset)."""
        return Models(
            embedder=self.embedder.name, reranker=self.reranker.name if self.reranker is not None else None,
            reader=self.reader.name if self.reader is not None else None,
            llm=self.llm.name if self.llm is not None else None,
        )

    def warm_up(self) -> None:
        """Load the vectors (and the sentence leg's) and run the model once, so a server's first
        question is not the slow one."""
        self.store.load_vectors(sentences=self.sentence_leg)
        self.embedder.embed_queries(["warm-up"])

    def refine(self, answer: Answer) -> Answer:
        """``answer`` with a checked LLM reply (``reply_source`` "llm") when an LLM is configured
        and some of its sentences are supported by the cited passages; else ``answer`` as it is
        (``models.llm`` None). Slow (an LLM call): front ends show :meth:`ask`'s answer first."""
        if self.llm is None:
            return answer
        return self.llm.refine(answer)

    def stats(self) -> dict[str, Any]:
        """Size and make-up of the index, for /start and the chat's greeting; ``newest_title``
        is the newest article's headline, the front ends' example of what the archive holds."""
        with self._lock:
            first, last = self.store.date_range()
            return {**self.store.counts(), "first_date": first, "last_date": last, "model": self.store.manifest.model,
                    "newest_title": self.store.newest_title()}

    # -- internals ----------------------------------------------------------------------

    def _rank(self, question: str, k: int, since: date | None, until: date | None) -> ranking_steps.Ranked:
        """Top ``k`` passages and their sentences: the I/O, around the steps of :mod:`ranking`."""
        query = self.embedder.embed_queries([question])[0]
        with self._lock:
            if since is None and until is None:
                since, until = self._dates_in(question)
            size = ranking_steps.leg_size(since, until)
            dense = legs.dense_ranking(self.store, query, size)
            keyword = legs.keyword_ranking(self.store, question, size) if self.hybrid else []
            sentence = legs.sentence_ranking(self.store, query, size * SENTENCE_HITS) if self.sentence_leg else []
            ids = list(dict.fromkeys(c for c, _ in [*dense, *keyword, *sentence]))
            allowed = self.store.chunks_between(ids, since, until) if (since or until) else None
            rerank_passages = self.reranker is not None and self.rerank_pool > 0
            pool = max(k, self.rerank_pool if rerank_passages else self.rerank)
            found = ranking_steps.candidates(dense, keyword, size=pool, since=since, until=until, allowed=allowed, more=[sentence])
            similarity = self.store.vectors_for(found.pool) @ query
            passages = legs.passages_for(self.store, list(zip(found.pool, similarity.tolist())))
        reranker = self.reranker
        cross = None
        if reranker is not None and rerank_passages and passages:
            cross = self._seam("reranker", lambda d: reranker.score(question, [p.text for p in passages], deadline=d))
        if cross is None:  # no reranker (or it failed): the bi-encoder's own, smaller pool
            passages = passages[: max(k, self.rerank)]
        with self._lock:  # the sentences' vectors were stored at index time: nothing is embedded here
            stored, vectors = self.store.sentences_in([p.chunk_id for p in passages])
        sentences, rows = picking.stored_candidates(passages, [(s.chunk_id, s.start, s.end) for s in stored])
        sentence_similarity = vectors[rows] @ query if rows else np.zeros(0, np.float32)
        reranked = ranking_steps.rerank(passages, sentences, sentence_similarity, found.keyword, sentence_weight=self.sentence_weight,
                                  reranker=cross)
        merged = ranking_steps.merge(ranking_steps.collapse(reranked), limit=k)
        with self._lock:
            texts = {article: self.store.article_text(article) for article in ranking_steps.articles_to_join(merged)}
        ranked = ranking_steps.renumber(merged, texts=texts, notes=found.notes)
        return replace(ranked, reranker=reranker.name) if cross is not None and reranker is not None else ranked

    def _scored(self, question: str, k: int, since: date | None, until: date | None) -> tuple[ranking_steps.Ranked, np.ndarray]:
        """The ranked passages and every candidate sentence's score (with a reranker: its stage
        done): what ``ask`` and ``search`` share."""
        ranked = self._rank(question, k, since, until)
        scores = picking.rank(question, ranked.sentences, ranked.similarity, [p.score for p in ranked.passages])
        return self._rerank_sentences(question, ranked, scores)

    def _rerank_sentences(self, question: str, ranked: ranking_steps.Ranked, scores: np.ndarray) -> tuple[ranking_steps.Ranked, np.ndarray]:
        """The best ``rerank_sentences`` candidate answers (by ``scores``, the bi-encoder's blend)
        rescored with the reranker, the others out of the running (with ``lead_with_answer``, the
        passage holding the new best one is cited first). Unchanged without a reranker, or when it fails."""
        reranker = self.reranker
        if reranker is None or self.rerank_sentences <= 0 or scores.size == 0:
            return ranked, scores
        if self.rerank_pool > 0 and ranked.reranker is None:  # it failed on the passages: do not try again
            return ranked, scores
        best = reranker_blend.best_indices(scores, self.rerank_sentences)
        texts = [ranked.sentences[i].text for i in best]
        cross = self._seam("reranker", lambda d: reranker.score(question, texts, deadline=d))
        if cross is None:
            return ranked, scores
        scores = reranker_blend.rescore_best(scores, best, cross)
        ranked = replace(ranked, reranker=reranker.name, reranker_best=float(np.max(cross)))
        if self.lead_with_answer:
            ranked = reranker_blend.lead_with(ranked, ranked.sentences[int(np.argmax(scores))].passage_index)
        return ranked, scores

    def _read(self, question: str, passages: tuple[Passage, ...]) -> ReaderAnswer | None:
        """The reader's best span in the top passages; None without a reader, or when it fails."""
        reader = self.reader
        if reader is None or not passages:
            return None
        texts = [p.text for p in passages[:READER_PASSAGES]]
        return self._seam("reader", lambda d: reader.read(question, texts, deadline=d))

    def _seam(self, kind: str, call: Callable[[Deadline], T]) -> T | None:
        """``call``'s result within :attr:`seam_seconds`; None when the optional model raises or is too
        slow, and the answer falls back to the bi-encoder's. Each seam's first failure is logged
        as one line (the traceback only at DEBUG); later ones only at DEBUG."""
        try:
            return call(Deadline(self.seam_seconds))
        except Exception as exc:  # any failure of an optional model: never break an answer
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            if kind not in self._failed:
                self._failed.add(kind)
                log.warning("%s failed, answering without it (logged once): %s", kind, reason)
            else:
                log.debug("%s failed again: %s", kind, reason)
            log.debug("%s failure", kind, exc_info=not isinstance(exc, SlowModelError))
            return None

    def _dates_in(self, question: str) -> tuple[date | None, date | None]:
        """A date expression in the question, resolved against the newest article's date."""
        newest = self.store.date_range()[1]
        found = find_date_range(question, today=date.fromisoformat(newest) if newest else date.today())
        return (found.since, found.until) if found else (None, None)

    def _context(self, article_id: str, start: int, end: int) -> str | None:
        with self._lock:
            text = self.store.article_text(article_id)
        if text is None:
            return None
        lo, hi = picking.context_span(split_sentences(text), start, end)
        return text[lo:hi]
