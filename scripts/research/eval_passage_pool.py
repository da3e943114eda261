#!/usr/bin/env python
"""Passage reranking: pools of 10 / 25 / 50 fused passages and blend weights, in one scoring pass.

    .venv/bin/python -m scripts.research.eval_passage_pool --index DIR \\
        [--xquad ../shared/eval/xquad-dev] [--pools 10,25,50] [--weights 0.1,0.25,0.5] [--output pool.json]

``DIR`` is an index of the dev paragraphs (and any distractors) kept by ``scripts/evaluate.py
--keep-index DIR`` (add ``--limit 1`` to build it without the full run). Every question is asked
through the real :class:`~qabot.Retriever` (the built-in reranker, or QABOT_RERANKER), once with
the passages in the bi-encoder's order (pool 0) and once per pool and weight, where the pool's
passages rank by ``(1 - w) * bi-encoder + w * reranker`` (``ranking_steps.rerank``'s
``reranker_weight``). The reranker's scores are cached per (question, text), so the largest
pool pays for the others. Prints, per configuration, language (en, de) and half (A: tuning,
B: confirming): recall@1 (search k=10, distinct articles) and answer-sentence hit@1, as
``scripts/evaluate.py`` counts them; ``reranker_seconds`` is what the scoring cost.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qabot.answering import ranking_steps
from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.evaluation.command import write_report
from qabot.evaluation.dev_set import load_questions
from qabot.evaluation.metrics import summarise_language
from qabot.evaluation.run import QuestionOnce, ask_all
from qabot.models.embedding import embedder_for

SHARED = Path(__file__).resolve().parents[3] / "shared"


class CachedReranker:
    """A reranker whose scores are remembered per (question, text); everything else is the wrapped one's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[tuple[str, str], float] = {}
        self.seconds = 0.0
        self.pairs = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def score(self, question: str, texts: Sequence[str], *, deadline: Any = None) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if (question, t) not in self.cache))
        if missing:
            started = time.perf_counter()
            scores = self.inner.score(question, missing)  # no deadline: a slow first pass must not fall back
            self.seconds += time.perf_counter() - started
            self.pairs += len(missing)
            self.cache.update({(question, t): float(s) for t, s in zip(missing, scores)})
        return np.array([self.cache[(question, t)] for t in texts], dtype=np.float32)


def figures(retriever: Retriever, questions: dict[str, list], *, k: int) -> dict[str, Any]:
    """Per language, overall and per half: recall@1 and answer-sentence hit@1 of ``retriever`` as it is set now."""
    def pick(m: dict[str, Any]) -> dict[str, float]:
        return {"R@1": m["recall@1"], "sent": m["sentence_hit@1"]}

    out = {}
    for lang, qs in questions.items():
        summary = summarise_language(ask_all(retriever, qs, k=k, wide_k=None))
        out[lang] = {"all": pick(summary), **{h: pick(m) for h, m in summary["halves"].items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="an index kept by scripts/evaluate.py --keep-index")
    parser.add_argument("--xquad", type=Path, default=SHARED / "eval" / "xquad-dev")
    parser.add_argument("--pools", default="10,25,50", help="passages the reranker rescores")
    parser.add_argument("--weights", default="0.1,0.25,0.5", help="the reranker's weight in the passages' blend")
    parser.add_argument("--limit", type=int, help="only the first N questions per language")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    pools = sorted((int(p) for p in args.pools.split(",")), reverse=True)  # the largest first: it fills the cache
    weights = [float(w) for w in args.weights.split(",")]
    if not args.index.is_dir():
        parser.error(f"--index {args.index}: no such folder (build it with scripts/evaluate.py --keep-index)")
    settings = Settings.load()
    _, questions = load_questions(args.xquad / "xquad.de.json", args.xquad / "xquad.en.json", limit=args.limit)
    embedder = QuestionOnce(embedder_for(settings))
    plain_rerank = ranking_steps.rerank
    report: dict[str, Any] = {"index": str(args.index)}
    with Retriever.open(args.index, settings=settings, embedder=embedder) as retriever:
        if retriever.reranker is None:
            parser.error("no reranker: set QABOT_RERANKER (the built-in one is qabot-reranker) and run qabot model install")
        cached = CachedReranker(retriever.reranker)
        retriever.reranker = cached
        report["reranker"] = cached.name
        retriever.rerank_pool = 0
        report["pool 0"] = figures(retriever, questions, k=settings.top_k)
        try:
            for pool in pools:
                for weight in weights:
                    ranking_steps.rerank = functools.partial(plain_rerank, reranker_weight=weight)
                    retriever.rerank_pool = pool
                    key = f"pool {pool}, w{weight:g}"
                    report[key] = figures(retriever, questions, k=settings.top_k)
                    print(key, {lang: m["all"] for lang, m in report[key].items()}, file=sys.stderr, flush=True)
        finally:
            ranking_steps.rerank = plain_rerank
        report["reranker_seconds"], report["pairs"] = round(cached.seconds, 1), cached.pairs
    write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
