"""Rankings and fusion: the building blocks the ranking steps (ranking.py) put together.

Every ranker returns ``list[tuple[int, float]]``: (chunk id, score), best first.
Building the query (:func:`fts_query`), fusing rankings (:func:`fuse_rrf`), blending,
the keyword bonus and grouping neighbours are pure functions; the thin functions that run a
ranking or look passages up take the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from qabot.documents import Passage
from qabot.lexicon import STOPWORDS
from qabot.store.interface import IndexReader
from qabot.store.queries import fts5_match

Ranking = list[tuple[int, float]]

# Words only: letters/digits with inner hyphens, dots or apostrophes ("Kreml-Chef", "11.00").
_WORD = re.compile(r"\w+(?:[-'.]\w+)*", re.UNICODE)


def terms(text: str) -> list[str]:
    """Lower-cased content words of ``text`` (stopwords dropped), in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression that searches ``text``'s words as plain words, OR-ed
    (:func:`~qabot.store.queries.fts5_match`); None when nothing searchable is left."""
    return fts5_match(terms(text))


def dense_ranking(store: IndexReader, query_vector: np.ndarray, k: int) -> Ranking:
    """Chunks nearest to the query vector (cosine)."""
    return store.search_vectors(query_vector, k)


def sentence_ranking(store: IndexReader, query_vector: np.ndarray, k: int) -> Ranking:
    """Chunks holding the sentences nearest to the query vector (cosine), by their best sentence."""
    return store.search_sentences(query_vector, k)


def keyword_ranking(store: IndexReader, question: str, k: int) -> Ranking:
    """Chunks matching the question's words in the store's full-text index (higher is better)."""
    words = terms(question)
    return store.keyword_search_words(words, k) if words else []


def fuse_rrf(rankings: Sequence[Ranking], *, k: int = 60, weights: Sequence[float] | None = None) -> Ranking:
    """Reciprocal-rank fusion: score(id) = sum_i weight_i / (k + rank_i(id)), rank from 1."""
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[int, float] = {}
    for weight, ranking in zip(weights, rankings):
        for rank, (item, _) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def blend(passage: np.ndarray, best_sentence: np.ndarray, *, weight: float) -> np.ndarray:
    """(1 - weight) * passage similarity + weight * its best sentence's (where it has one)."""
    has_sentence = best_sentence > -1.0
    return np.where(has_sentence, (1.0 - weight) * passage + weight * best_sentence, passage)


def keyword_bonus(chunk_ids: Sequence[int], keyword: Ranking, *, weight: float, scale: float = 5.0) -> np.ndarray:
    """A small bonus for chunks the keyword leg ranks high: weight / (1 + rank / scale), 0 if absent."""
    ranks = {chunk_id: rank for rank, (chunk_id, _) in enumerate(keyword, start=1)}
    return np.array([weight / (1.0 + ranks[c] / scale) if c in ranks else 0.0 for c in chunk_ids], dtype=np.float32)


def merge_neighbours(spans: Sequence[tuple[str, int, int]], *, limit: int) -> list[list[int]]:
    """Group ranked passages that overlap or touch within one article, best first.

    ``spans`` are (article id, start, end) in rank order. Each group starts with its
    best-ranked member; a later passage joins a group whose merged span it overlaps or
    touches (neighbouring chunks of the same article), so the reader gets one passage with
    more context and the freed slot goes to another article. At most ``limit`` groups.
    """
    groups: list[list[int]] = []
    merged: list[tuple[str, int, int]] = []
    for index, (article, start, end) in enumerate(spans):
        for g, (g_article, g_start, g_end) in enumerate(merged):
            if g_article == article and start <= g_end + 1 and end >= g_start - 1:
                groups[g].append(index)
                merged[g] = (article, min(start, g_start), max(end, g_end))
                break
        else:
            if len(groups) < limit:
                groups.append([index])
                merged.append((article, start, end))
    return groups


def passages_for(store: IndexReader, ranking: Ranking) -> list[Passage]:
    """Turn a ranking into passages with their article metadata, keeping the order."""
    rows = store.chunk_rows([chunk_id for chunk_id, _ in ranking])
    passages = []
    for chunk_id, score in ranking:
        row = rows.get(chunk_id)
        if row is None:  # deleted between ranking and lookup
            continue
        passages.append(
            Passage(
                chunk_id=chunk_id, article_id=row["article_id"], title=row["title"], date=row["date"],
                url=row["url"], source=row["source"], text=row["text"], start=row["start"], end=row["end"],
                score=score,
            )
        )
    return passages
