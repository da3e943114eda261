"""The ranking steps between the store's rankings and the answer picker; pure functions only.

The Retriever does the I/O (embedding, store lookups) and runs these steps in order::

    candidates(dense, keyword)   -> Candidates  fuse the legs, limit by date, cut the rerank pool
    rerank(passages, sentences)  -> Reranked    blend passage and best-sentence similarity (and a reranker's
                                                scores, when there is one), + keyword bonus
    collapse(reranked)           -> Collapsed   near-duplicate passages (wire copies) fold into one
    merge(collapsed, limit=k)    -> Merged      neighbouring chunks of one article become one passage
    renumber(merged, texts=...)  -> Ranked      the final passages, and their sentences re-pointed at them

Each takes and returns frozen dataclasses, so each can be tested with hand-made inputs.
Between merge and renumber the Retriever reads the texts of the articles that
:func:`articles_to_join` names (a merged passage is cut from its article's text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from qabot.answering import dedupe
from qabot.answering.fusion import Ranking, blend, fuse_rrf, keyword_bonus, merge_neighbours
from qabot.answering.picking import Candidate
from qabot.answering.reranker_blend import RERANKER_WEIGHT, blend_reranker
from qabot.documents import Passage

__all__ = [
    "CANDIDATES",
    "KEYWORD_BONUS",
    "Candidates",
    "Collapsed",
    "Merged",
    "Ranked",
    "Reranked",
    "articles_to_join",
    "candidates",
    "collapse",
    "leg_size",
    "merge",
    "renumber",
    "rerank",
]

# How many chunks each leg (dense, keyword) contributes to the fused candidate list.
CANDIDATES = 50
# Bonus for a high keyword (FTS5) rank: KEYWORD_BONUS / (1 + rank / 5).
KEYWORD_BONUS = 0.03


@dataclass(frozen=True)
class Candidates:
    """The chunks worth reranking, best fused first; the keyword leg (for its bonus); date notes."""

    pool: tuple[int, ...]
    keyword: tuple[tuple[int, float], ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Reranked:
    """Passages scored by their own and their best sentence's similarity, and their order."""

    passages: tuple[Passage, ...]
    sentences: tuple[Candidate, ...]
    similarity: np.ndarray  # one per sentence: its similarity to the question
    relevance: np.ndarray  # one per passage: the blend, before the keyword bonus (the abstention signal)
    scores: np.ndarray  # one per passage: relevance (blended with a reranker's) + keyword bonus (the ranking signal)
    order: tuple[int, ...]  # passage indices, best score first


@dataclass(frozen=True)
class Collapsed:
    """``reranked`` with near-duplicates folded: the keepers, best first, and how many copies each hid."""

    reranked: Reranked
    order: tuple[int, ...]
    duplicates: tuple[int, ...]  # one per keeper in ``order``


@dataclass(frozen=True)
class Merged:
    """The keepers grouped by neighbourhood: each group is passage indices, its best first."""

    collapsed: Collapsed
    groups: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Ranked:
    """The result: passages to cite (best first) and the sentences to pick an answer from."""

    passages: tuple[Passage, ...]
    sentences: tuple[Candidate, ...]  # passage_index points into ``passages``
    similarity: np.ndarray  # one per sentence
    relevance: float  # the best kept passage's blended similarity, before bonuses
    notes: tuple[str, ...]
    reranker: str | None = None  # the reranker whose scores ordered the passages (None: the bi-encoder's alone)
    reranker_best: float | None = None  # the reranker's best score among the answer sentences it read (None: it read none)


def leg_size(since: date | None, until: date | None) -> int:
    """How many chunks each leg fetches: ten times more under a date filter, which drops most."""
    return CANDIDATES * 10 if (since or until) else CANDIDATES


def candidates(
    dense: Ranking,
    keyword: Ranking,
    *,
    size: int,
    since: date | None = None,
    until: date | None = None,
    allowed: Set[int] | None = None,
    more: Sequence[Ranking] = (),
) -> Candidates:
    """Fuse the legs (dense, keyword, and ``more``: the sentence leg, when used) by
    reciprocal rank and keep the best ``size`` chunks.

    With ``since``/``until``, only chunks in ``allowed`` (those whose article is dated within
    them) are kept; when none is, all dates are kept and a note says so.
    """
    legs = [leg for leg in (dense, keyword, *more) if leg]
    fused = fuse_rrf(legs) if len(legs) > 1 else list(dense)
    notes: list[str] = []
    if since or until:
        span = f"{since or '…'} – {until or '…'}"
        if allowed:
            fused = [(c, s) for c, s in fused if c in allowed]
            notes.append(f"Only articles dated {span}.")
        else:
            notes.append(f"No article dated {span}; searched all dates.")
    return Candidates(tuple(chunk_id for chunk_id, _ in fused[:size]), tuple(keyword), tuple(notes))


def rerank(
    passages: Sequence[Passage],
    sentences: Sequence[Candidate],
    similarity: np.ndarray,
    keyword: Ranking | tuple[tuple[int, float], ...],
    *,
    sentence_weight: float,
    bonus: float = KEYWORD_BONUS,
    reranker: np.ndarray | None = None,
    reranker_weight: float = RERANKER_WEIGHT,
) -> Reranked:
    """Score each passage: a blend of its similarity and its best sentence's, plus a keyword bonus.

    A passage without a sentence (all too short) keeps its own similarity. The order is
    stable, so equal scores keep the fused order. With ``reranker`` (one score per passage),
    the ranking score blends it in (:func:`~qabot.answering.reranker_blend.blend_reranker`);
    ``relevance``, the abstention signal, stays the bi-encoder's.
    """
    best = np.full(len(passages), -1.0, dtype=np.float32)
    for sentence, value in zip(sentences, similarity):
        best[sentence.passage_index] = max(best[sentence.passage_index], value)
    relevance = blend(np.array([p.score for p in passages], dtype=np.float32), best, weight=sentence_weight)
    ranking_score = relevance if reranker is None else blend_reranker(relevance, reranker, weight=reranker_weight)
    scores = ranking_score + keyword_bonus([p.chunk_id for p in passages], list(keyword), weight=bonus)
    order = tuple(int(i) for i in np.argsort(-scores, kind="stable"))
    return Reranked(tuple(passages), tuple(sentences), similarity, relevance, scores, order)


def collapse(reranked: Reranked) -> Collapsed:
    """Fold near-duplicate passages of different articles into the best-ranked one."""
    passages = reranked.passages
    groups = dedupe.collapse(list(reranked.order), lambda i: passages[i].text, key=lambda i: passages[i].article_id)
    return Collapsed(reranked, tuple(keeper for keeper, _ in groups), tuple(len(copies) for _, copies in groups))


def merge(collapsed: Collapsed, *, limit: int) -> Merged:
    """Group keepers that overlap or touch within one article; at most ``limit`` groups."""
    passages, order = collapsed.reranked.passages, collapsed.order
    spans = [(passages[i].article_id, passages[i].start, passages[i].end) for i in order]
    groups = merge_neighbours(spans, limit=limit)
    return Merged(collapsed, tuple(tuple(order[j] for j in group) for group in groups))


def articles_to_join(merged: Merged) -> list[str]:
    """The articles whose text :func:`renumber` needs: those with a group of several passages."""
    passages = merged.collapsed.reranked.passages
    return list(dict.fromkeys(passages[group[0]].article_id for group in merged.groups if len(group) > 1))


def renumber(merged: Merged, *, texts: Mapping[str, str | None], notes: Sequence[str] = ()) -> Ranked:
    """The final passages (one per group) and their sentences, re-pointed at them.

    ``texts`` holds the article text for :func:`articles_to_join` (None: the article went
    away meanwhile, and the group's best passage is cited alone). Sentences of dropped
    passages go, and so do repeats from overlapping chunks (same article and start).
    """
    collapsed = merged.collapsed
    reranked = collapsed.reranked
    passages = reranked.passages
    copies = dict(zip(collapsed.order, collapsed.duplicates))
    kept_passages = tuple(
        _joined([passages[i] for i in group], float(reranked.scores[group[0]]), sum(copies[i] for i in group), texts)
        for group in merged.groups
    )
    position = {i: new for new, group in enumerate(merged.groups) for i in group}
    # Sorted by the new passage order (stable: within a passage, the sentences keep their order).
    ordered = sorted(zip(reranked.sentences, reranked.similarity), key=lambda sv: position.get(sv[0].passage_index, len(merged.groups)))
    kept: list[Candidate] = []
    kept_similarity: list[float] = []
    seen: set[tuple[str, int]] = set()
    for sentence, value in ordered:
        new = position.get(sentence.passage_index)
        key = (passages[sentence.passage_index].article_id, sentence.start)
        if new is None or key in seen:
            continue
        seen.add(key)
        kept.append(replace(sentence, passage_index=new))
        kept_similarity.append(value)
    top = float(max((reranked.relevance[i] for i in position), default=0.0))
    return Ranked(kept_passages, tuple(kept), np.array(kept_similarity, dtype=np.float32), top, tuple(notes))


def _joined(parts: Sequence[Passage], score: float, duplicates: int, texts: Mapping[str, str | None]) -> Passage:
    """One passage spanning ``parts`` (the best first), cut from the article's text."""
    best = parts[0]
    text = texts.get(best.article_id) if len(parts) > 1 else None
    if text is None:
        return replace(best, score=score, duplicates=duplicates)
    start, end = min(p.start for p in parts), max(p.end for p in parts)
    return replace(best, text=text[start:end], start=start, end=end, score=score, duplicates=duplicates)
