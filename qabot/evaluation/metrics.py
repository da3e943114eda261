"""The evaluation's metrics (pure): ranks to paragraph recall@k and MRR, answer sentences to
hits, per-question results to the report (overall and per half) and its table.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qabot.evaluation.dev_set import HALVES

SEARCH_K = 10  # recall@1/5/10 and MRR@10 come from search(k=10): the default rerank pool, as an answer ranks
WIDE_K = 50  # recall@50 from a second search(k=50) (its pool is 50, so its top 10 may differ); evaluate.py --no-recall-50 skips it
RECALL_AT = (1, 5, 10, 50)
MRR_K = 10


@dataclass(frozen=True)
class Result:
    """What happened to one question (one line of ``--per-question``)."""

    id: str
    language: str
    question: str
    paragraph_id: str
    rank: int | None  # 1-based rank of the gold paragraph in search(k=10) (distinct articles), None if not there
    rank_50: int | None  # the same in search(k=50), which reranks a pool of 50: only for recall@50 (None: missing, or not searched)
    top_ids: tuple[str, ...]
    sentence: str | None
    answers: tuple[str, ...]
    hit: bool
    ask_ms: float
    half: str = "A"
    reply_source: str | None = None  # with an LLM: "llm" or "extractive" (after refine)
    llm_kept: int = 0  # the LLM's sentences that passed the citation check
    llm_sentences: int = 0  # the LLM's sentences in all (0: no call, a failure, or "not in the archive")
    refine_ms: float | None = None


def distinct(ids: Iterable[str]) -> list[str]:
    """``ids`` without repeats, first occurrence kept (several chunks of one article rank apart)."""
    return list(dict.fromkeys(ids))


def gold_rank(ranked_ids: Sequence[str], gold: str) -> int | None:
    """1-based rank of ``gold`` among the distinct ids, or None when it is missing."""
    ids = distinct(ranked_ids)
    return ids.index(gold) + 1 if gold in ids else None


def paragraph_recall(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose gold paragraph ranked within the top ``k``."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def mrr_at(ranks: Sequence[int | None], k: int = MRR_K) -> float:
    """Mean reciprocal rank, counting ranks beyond ``k`` (or missing) as 0."""
    return sum(1 / r for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def sentence_hit(sentence: str | None, answers: Iterable[str]) -> bool:
    """True when any gold answer appears in ``sentence``, ignoring case and runs of whitespace."""
    if not sentence:
        return False
    found = _norm(sentence)
    return any(_norm(a) and _norm(a) in found for a in answers)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarise(results: Sequence[Result], *, wide: bool = True) -> dict[str, Any]:
    """The metrics for some results (one language's, or one half of them); ``wide`` False: the
    wide search was not run, and recall@50 is None (not measured), not 0."""
    ranks = [r.rank for r in results]
    latencies = [r.ask_ms for r in results]
    n = len(results)
    return {
        "n": n,
        **{f"recall@{k}": round(paragraph_recall(ranks, k), 4) for k in RECALL_AT if k <= SEARCH_K},
        f"recall@{WIDE_K}": round(paragraph_recall([r.rank_50 for r in results], WIDE_K), 4) if wide else None,
        f"mrr@{MRR_K}": round(mrr_at(ranks, MRR_K), 4),
        "sentence_hit@1": round(sum(r.hit for r in results) / n, 4) if n else 0.0,
        "abstention_rate": round(sum(r.sentence is None for r in results) / n, 4) if n else 0.0,
        "ask_ms_p50": round(statistics.median(latencies), 1) if latencies else 0.0,
        "ask_ms_p95": round(percentile(latencies, 0.95), 1),
        **({"llm": summarise_llm(results)} if any(r.reply_source is not None for r in results) else {}),
    }


def summarise_language(results: Sequence[Result], *, wide: bool = True) -> dict[str, Any]:
    """One language's metrics overall, and per half under ``halves``."""
    return {**summarise(results, wide=wide), "halves": {h: summarise([r for r in results if r.half == h], wide=wide) for h in HALVES}}


TABLE_COLUMNS = (
    ("n", "n", "{}"), ("R@1", "recall@1", "{:.3f}"), ("R@5", "recall@5", "{:.3f}"), ("R@10", "recall@10", "{:.3f}"),
    ("R@50", "recall@50", "{:.3f}"), ("MRR@10", "mrr@10", "{:.3f}"), ("sent", "sentence_hit@1", "{:.3f}"),
    ("abst", "abstention_rate", "{:.3f}"), ("p50 ms", "ask_ms_p50", "{:.0f}"), ("p95 ms", "ask_ms_p95", "{:.0f}"),
)


def table(report: dict[str, Any]) -> str:
    """A markdown table of a report's metrics: a row per language and half (all, A, B)."""
    head = ["lang", "half", *(name for name, _, _ in TABLE_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for language, metrics in report.items():
        if language == "settings":
            continue
        for half, m in [("all", metrics), *metrics.get("halves", {}).items()]:
            cells = [language, half, *("-" if m.get(key) is None else fmt.format(m[key]) for _, key, fmt in TABLE_COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarise_llm(results: Sequence[Result]) -> dict[str, Any]:
    """With an LLM: reply faithfulness (the share of its sentences the check kept), how often its
    checked reply replaced the extractive one, and what refine cost."""
    refined = [r for r in results if r.reply_source is not None]
    sentences = sum(r.llm_sentences for r in refined)
    costs = [r.refine_ms for r in refined if r.refine_ms is not None]
    return {
        "refined": len(refined),
        "llm_sentences": sentences,
        "faithfulness": round(sum(r.llm_kept for r in refined) / sentences, 4) if sentences else None,
        "reply_llm_rate": round(sum(r.reply_source == "llm" for r in refined) / len(refined), 4) if refined else 0.0,
        "refine_ms_p50": round(statistics.median(costs), 1) if costs else 0.0,
        "refine_ms_p95": round(percentile(costs, 0.95), 1),
    }
