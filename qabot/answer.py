"""Pick the sentence that answers, across the top passages; pure functions only.

The model's sentence similarity alone is close between near misses (the seed's 11.00
landing vs the 11.30 summit start differ by 0.002), so a sentence's score blends:

- its own similarity to the question (the main signal),
- the similarity of the passage it sits in (context the sentence alone lacks),
- how many of the question's content words it contains (names, places: "Putin", "Alaska").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .documents import Passage, Sentence
from .search import terms

SENTENCE_WEIGHT = 0.6
PASSAGE_WEIGHT = 0.3
OVERLAP_WEIGHT = 0.1
MIN_SENTENCE_CHARS = 12

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage; ``start``/``end`` are offsets in the article text."""

    passage_index: int
    start: int
    end: int
    text: str


def candidates(passages: Sequence[Passage], split: Callable[[str], list[Sentence]], *, dedupe: bool = True) -> list[Candidate]:
    """Every sentence of ``passages``; with ``dedupe``, a sentence repeated by overlapping chunks only once."""
    seen: set[tuple[str, int]] = set()
    found = []
    for index, passage in enumerate(passages):
        for sentence in split(passage.text):
            key = (passage.article_id, passage.start + sentence.start)
            if (dedupe and key in seen) or len(sentence.text) < MIN_SENTENCE_CHARS:
                continue
            seen.add(key)
            found.append(Candidate(index, passage.start + sentence.start, passage.start + sentence.end, sentence.text))
    return found


def overlap(question_terms: Sequence[str], sentence: str) -> float:
    """Share of the question's content words found in the sentence.

    A word counts when a sentence word starts with its first five letters, so German
    inflection ("Gipfel"/"Gipfels", "landet"/"landen") still matches.
    """
    if not question_terms:
        return 0.0
    words = {w.lower() for w in _WORD.findall(sentence)}
    hits = 0
    for term in question_terms:
        stem = term[:5]
        if term in words or (len(stem) >= 4 and any(w.startswith(stem) for w in words)):
            hits += 1
    return hits / len(question_terms)


def score(
    sentence_similarity: np.ndarray,
    passage_similarity: np.ndarray,
    overlaps: np.ndarray,
) -> np.ndarray:
    """The blended score of each candidate (all arrays have one entry per candidate)."""
    return SENTENCE_WEIGHT * sentence_similarity + PASSAGE_WEIGHT * passage_similarity + OVERLAP_WEIGHT * overlaps


def pick(
    question: str,
    found: Sequence[Candidate],
    sentence_similarity: np.ndarray,
    passage_similarity: Sequence[float],
) -> tuple[int, float] | None:
    """Index into ``found`` of the answering sentence and its score, or None when there is none."""
    if not found:
        return None
    question_terms = terms(question)
    overlaps = np.array([overlap(question_terms, c.text) for c in found], dtype=np.float32)
    passages = np.array([passage_similarity[c.passage_index] for c in found], dtype=np.float32)
    scores = score(np.asarray(sentence_similarity, dtype=np.float32), passages, overlaps)
    best = int(np.argmax(scores))
    return best, float(scores[best])


def context_span(sentences: Sequence[Sentence], start: int, end: int, *, around: int = 1) -> tuple[int, int]:
    """Offsets covering the sentence at ``start``..``end`` plus ``around`` sentences either side."""
    position = next((i for i, s in enumerate(sentences) if s.start <= start < s.end or s.start >= start), None)
    if position is None:
        return start, end
    first = max(0, position - around)
    last = min(len(sentences) - 1, position + around)
    return min(sentences[first].start, start), max(sentences[last].end, end)
