"""The legs of a search: the rankings the store makes for a question, and their passages.

Every ranker returns a :data:`~qabot.answering.fusion.Ranking` (chunk id, score), best first:
dense (chunk vectors), sentence (sentence vectors, by a chunk's best sentence) and keyword
(the full-text index). Building the keyword query (:func:`terms`, :func:`fts_query`) is pure;
the thin functions that run a ranking or look passages up take the store.
:mod:`qabot.answering.fusion` puts the legs together.
"""

from __future__ import annotations

import re

import numpy as np

from qabot.answering.fusion import Ranking
from qabot.documents import Passage
from qabot.lexicon import STOPWORDS
from qabot.store.interface import IndexReader
from qabot.store.queries import fts5_match

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
