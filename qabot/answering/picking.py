"""Pick the sentence that answers, across the top passages; pure functions only.

The model's sentence similarity alone is close between near misses (the seed's 11.00
landing vs the 11.30 summit start differ by 0.002), so a sentence's score blends:

- its own similarity to the question (the main signal),
- the similarity of the passage it sits in (context the sentence alone lacks),
- how many of the question's content words it contains (names, places: "Putin", "Alaska"),
- whether it holds what the question asks for: a date or time for "when/wann", a number
  for "how many/wie viele" (:func:`answer_type_match`).

The weights were set on the XQuAD dev set (scripts/evaluate.py) and checked on both
halves of its questions; they are deliberately few and round.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qabot.answering.legs import terms
from qabot.documents import Passage, Sentence
from qabot.lexicon import MONTH_NAMES

SENTENCE_WEIGHT = 0.6
PASSAGE_WEIGHT = 0.3
OVERLAP_WEIGHT = 0.05
TYPE_WEIGHT = 0.03
NEWER_MARGIN = 0.01

_WORD = re.compile(r"\w+", re.UNICODE)
# Written-out month names only: "Mar", "Jun" are too rare in answers to be worth a false "may".
_MONTHS = "|".join(sorted(MONTH_NAMES, key=len, reverse=True))
_ASKS_WHEN = re.compile(
    r"\b(when|what year|which year|what date|what time|wann|welchem jahr|welches jahr|welchem datum|um wie viel uhr)\b", re.IGNORECASE
)
_ASKS_AMOUNT = re.compile(
    r"\b(how many|how much|what percentage|how long|how old|how large|how big|how far|"
    r"wie viele|wie viel|wieviele|wieviel|wie lange|wie alt|wie hoch|wie groß|wie weit)\b",
    re.IGNORECASE,
)
_HAS_DATE = re.compile(rf"\b(1[0-9]{{3}}|20[0-9]{{2}})\b|\b({_MONTHS})\b|\bUhr\b|\b\d{{1,2}}\.\d{{1,2}}\.", re.IGNORECASE)
_HAS_NUMBER = re.compile(
    r"\d|\b(ein|eine|einer|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|hundert|tausend|"
    r"millionen?|milliarden?|dutzend|hälfte|prozent)\b",
    re.IGNORECASE,
)


def answer_type_match(question: str, sentence: str) -> float:
    """1.0 when the sentence holds what the question asks for (a date/time, a number), else 0.0."""
    if _ASKS_WHEN.search(question):
        return 1.0 if _HAS_DATE.search(sentence) else 0.0
    if _ASKS_AMOUNT.search(question):
        return 1.0 if _HAS_NUMBER.search(sentence) else 0.0
    return 0.0


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage; ``start``/``end`` are offsets in the article text."""

    passage_index: int
    start: int
    end: int
    text: str


def stored_candidates(passages: Sequence[Passage], stored: Sequence[tuple[int, int, int]]) -> tuple[list[Candidate], list[int]]:
    """Candidates from stored sentences, given as (chunk id, start, end) in article offsets;
    and which rows of ``stored`` they came from (rows of chunks not among ``passages`` are dropped)."""
    where = {p.chunk_id: i for i, p in enumerate(passages)}
    found, rows = [], []
    for row, (chunk_id, start, end) in enumerate(stored):
        index = where.get(chunk_id)
        if index is None:
            continue
        passage = passages[index]
        found.append(Candidate(index, start, end, passage.text[start - passage.start : end - passage.start]))
        rows.append(row)
    return found, rows


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
    types: np.ndarray,
) -> np.ndarray:
    """The blended score of each candidate (all arrays have one entry per candidate)."""
    return (
        SENTENCE_WEIGHT * sentence_similarity
        + PASSAGE_WEIGHT * passage_similarity
        + OVERLAP_WEIGHT * overlaps
        + TYPE_WEIGHT * types
    )


def rank(
    question: str,
    found: Sequence[Candidate],
    sentence_similarity: np.ndarray,
    passage_similarity: Sequence[float],
) -> np.ndarray:
    """The blended score of every candidate sentence (empty when there are none)."""
    if not found:
        return np.zeros(0, dtype=np.float32)
    question_terms = terms(question)
    overlaps = np.array([overlap(question_terms, c.text) for c in found], dtype=np.float32)
    passages = np.array([passage_similarity[c.passage_index] for c in found], dtype=np.float32)
    types = np.array([answer_type_match(question, c.text) for c in found], dtype=np.float32)
    return score(np.asarray(sentence_similarity, dtype=np.float32), passages, overlaps, types)


def prefer_newer(
    found: Sequence[Candidate],
    scores: np.ndarray,
    dates: Sequence[str | None],
    articles: Sequence[str],
    *,
    margin: float = NEWER_MARGIN,
) -> int:
    """The best candidate, unless a sentence of another, newer article scores within ``margin``.

    News changes: when two articles answer about equally well, the newer one is the answer.
    """
    best = int(np.argmax(scores))
    best_date = dates[found[best].passage_index] or ""
    choice = best
    for i, candidate in enumerate(found):
        date = dates[candidate.passage_index] or ""
        if (
            scores[i] >= scores[best] - margin
            and articles[candidate.passage_index] != articles[found[best].passage_index]
            and date > best_date
            and date > (dates[found[choice].passage_index] or "")
        ):
            choice = i
    return choice


def context_span(sentences: Sequence[Sentence], start: int, end: int, *, around: int = 1) -> tuple[int, int]:
    """Offsets covering the sentence at ``start``..``end`` plus ``around`` sentences either side."""
    position = next((i for i, s in enumerate(sentences) if s.start <= start < s.end or s.start >= start), None)
    if position is None:
        return start, end
    first = max(0, position - around)
    last = min(len(sentences) - 1, position + around)
    return min(sentences[first].start, start), max(sentences[last].end, end)
