"""Fusion: putting rankings together; pure functions only (the ranking steps in
:mod:`qabot.answering.ranking_steps` use them).

Every ranker returns ``list[tuple[int, float]]``: (chunk id, score), best first.
:func:`fuse_rrf` fuses the legs' rankings, :func:`blend` mixes a passage's similarity with its
best sentence's, :func:`keyword_bonus` lifts what the keyword leg ranks high, and
:func:`merge_neighbours` groups neighbouring chunks of one article.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Ranking = list[tuple[int, float]]


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
