"""Blending a reranker's scores with the bi-encoder's; pure functions only.

A cross-encoder reads the question and a text together, so it judges relevance better than
the bi-encoder's cosine, but on a scale of its own (a sigmoid, 0-1, spread wide), while
multilingual-e5-small's cosines sit between ~0.7 and ~0.9. The blend

    (1 - RERANKER_WEIGHT) * bi-encoder score + RERANKER_WEIGHT * reranker score

is used twice: for the passages of the rerank pool (their ranking score; the keyword bonus is
added on top) and for the candidate answer sentences (the similarity the answer picker weighs).
Because the reranker's scores spread ~5x wider, at 0.5 it decides most orderings and the
bi-encoder breaks its near-ties. The weight could not be measured offline: no real reranker can
be downloaded here (the test models have random heads); ``scripts/evaluate.py --reranker``
measures it on XQuAD for anyone who has one.

Abstention does not use these blends: "not in the archive" stays the bi-encoder's relevance
against its calibrated threshold (``Ranked.relevance``), because a reranker's scale differs per
model and cannot be calibrated here. The reranker only reorders what passes that gate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # ranking imports this module for the blend
    from qabot.answering.ranking import Ranked

RERANKER_WEIGHT = 0.5


def blend_reranker(bi_encoder: np.ndarray, reranker: np.ndarray, *, weight: float = RERANKER_WEIGHT) -> np.ndarray:
    """``(1 - weight) * bi_encoder + weight * reranker``, element-wise, float32."""
    bi, cross = np.asarray(bi_encoder, dtype=np.float32), np.asarray(reranker, dtype=np.float32)
    if bi.shape != cross.shape:
        raise ValueError(f"one reranker score per item: {cross.shape} for {bi.shape}")
    return ((1.0 - weight) * bi + weight * cross).astype(np.float32)


def rescore_sentences(ranked: Ranked, reranker: np.ndarray, *, weight: float = RERANKER_WEIGHT) -> Ranked:
    """``ranked`` with each sentence's similarity blended with its reranker score (same order);
    passages, relevance (the abstention signal) and notes unchanged."""
    return replace(ranked, similarity=blend_reranker(ranked.similarity, reranker, weight=weight))
