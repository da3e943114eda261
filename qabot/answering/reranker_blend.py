"""Blending a reranker's scores with the bi-encoder's; pure functions only.

A cross-encoder reads the question and a text together, so it judges relevance better than
the bi-encoder's cosine, but on a scale of its own (a sigmoid, 0-1, spread wide), while
multilingual-e5-small's cosines sit between ~0.7 and ~0.9. It is used in two places:

- **Answer sentences** (always, with a reranker): the ``RERANK_SENTENCES`` best candidates by
  the bi-encoder's blend (:func:`qabot.answering.picking.rank`) are read by the reranker and
  ranked by ``(1 - SENTENCE_RERANKER_WEIGHT) * blend + SENTENCE_RERANKER_WEIGHT * reranker``
  (:func:`rescore_best`); only those can be the answer. :func:`lead_with` can cite the
  winner's passage first (measured and off: ``LEAD_WITH_ANSWER`` in the retriever). Few
  sentences of ~40 tokens: cheap enough for a CPU.
- **Passages** (``QABOT_RERANK_POOL`` > 0): the fused pool's passages, by
  ``(1 - RERANKER_WEIGHT) * bi-encoder + RERANKER_WEIGHT * reranker`` (:func:`blend_reranker`;
  the keyword bonus is added on top). Passages are ~200 tokens: costly on a CPU.

The weights were measured with qabot's own reranker on the dev set's tuning half and checked
on the other (``scripts/research/eval_sentence_choice.py``, ``scripts/evaluate.py``; docs/models.md has
the figures). Abstention does not use these blends: "not in the archive" stays the
bi-encoder's relevance against its calibrated threshold (``Ranked.relevance``); docs/models.md
gives the measurement of the reranker's score as a gate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # ranking_steps imports this module for the blend
    from qabot.answering.ranking_steps import Ranked

RERANKER_WEIGHT = 0.5
# Answer sentences: how many of the best (by the bi-encoder's blend) the reranker reads, and its
# weight in their final score; set on the dev set's tuning half (scripts/research/eval_sentence_choice.py).
RERANK_SENTENCES = 6  # 12 was as good in the paragraph, worse among 1,000 news articles (docs/models.md)
SENTENCE_RERANKER_WEIGHT = 0.25


def blend_reranker(bi_encoder: np.ndarray, reranker: np.ndarray, *, weight: float = RERANKER_WEIGHT) -> np.ndarray:
    """``(1 - weight) * bi_encoder + weight * reranker``, element-wise, float32."""
    bi, cross = np.asarray(bi_encoder, dtype=np.float32), np.asarray(reranker, dtype=np.float32)
    if bi.shape != cross.shape:
        raise ValueError(f"one reranker score per item: {cross.shape} for {bi.shape}")
    return ((1.0 - weight) * bi + weight * cross).astype(np.float32)


def best_indices(scores: np.ndarray, count: int) -> list[int]:
    """The indices of the ``count`` highest ``scores``, best first (ties: the earlier first)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [int(i) for i in order[: max(0, count)]]


def rescore_best(scores: np.ndarray, best: list[int], reranker: np.ndarray, *, weight: float = SENTENCE_RERANKER_WEIGHT) -> np.ndarray:
    """``scores`` with the candidates in ``best`` blended with their reranker scores
    (``(1 - weight) * score + weight * reranker``) and every other candidate put below them all:
    only what the reranker read can be the answer. float32, same length as ``scores``."""
    cross = np.asarray(reranker, dtype=np.float32)
    if cross.shape != (len(best),):
        raise ValueError(f"one reranker score per chosen candidate: {cross.shape} for {len(best)}")
    out = np.full(len(scores), -np.inf, dtype=np.float32)
    if best:
        out[best] = (1.0 - weight) * np.asarray(scores, dtype=np.float32)[best] + weight * cross
    return out


def lead_with(ranked: Ranked, index: int) -> Ranked:
    """``ranked`` with passage ``index`` moved to the front (the others keep their order) and the
    sentences re-pointed; the passage that holds the chosen answer is cited first."""
    if index <= 0 or index >= len(ranked.passages):
        return ranked
    order = [index, *(i for i in range(len(ranked.passages)) if i != index)]
    where = {old: new for new, old in enumerate(order)}
    sentences = tuple(replace(s, passage_index=where[s.passage_index]) for s in ranked.sentences)
    return replace(ranked, passages=tuple(ranked.passages[i] for i in order), sentences=sentences)
