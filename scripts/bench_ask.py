#!/usr/bin/env python
"""Measure an index's question path: open time, warm `ask`/`search` latency, peak memory.

    .venv/bin/python scripts/bench_ask.py --index index/default [--repeat 20] [QUESTION ...]

Prints one JSON object. Without questions it asks a fixed English/German set about the
bundled sample. Latency is wall time per call after one warm-up call per question.
Settings come from the environment as for the CLI, so the optional seams are measured by
setting them: QABOT_RERANKER=DIR, QABOT_READER=DIR, QABOT_LLM_URL/QABOT_LLM_MODEL (then the
LLM step, ``refine``, is timed too). ``--compare`` also times the same questions on a plain
retriever (no seams) in the same run and prints the added milliseconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

from qabot import Retriever, Settings

DEFAULT_QUESTIONS = [
    "When does Putin land in Alaska?",
    "Wann landet Putin in Alaska?",
    "How many political prisoners are in Belarus?",
    "Wo legte Putin Blumen nieder?",
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="*", default=DEFAULT_QUESTIONS)
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--compare", action="store_true", help="also time a plain retriever (no seams) in the same run")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    settings = Settings.load(index_dir=args.index)
    retriever = Retriever.open(settings.index_dir, settings=settings)
    open_seconds = time.perf_counter() - started
    plain = Retriever(retriever.store, retriever.embedder, top_k=retriever.top_k) if args.compare else None
    timings: dict[str, list[float]] = {"ask": [], "search": []} | ({"refine": []} if retriever.llm else {})
    if plain is not None:
        timings["plain_ask"] = []
    for question in args.questions:  # warm-up
        retriever.refine(retriever.ask(question))
        if plain is not None:
            plain.ask(question)
    for _ in range(args.repeat):  # interleaved, so load on the machine hits both alike
        for question in args.questions:
            t = time.perf_counter()
            answer = retriever.ask(question)
            timings["ask"].append(time.perf_counter() - t)
            if "refine" in timings:
                t = time.perf_counter()
                retriever.refine(answer)
                timings["refine"].append(time.perf_counter() - t)
            t = time.perf_counter()
            retriever.search(question)
            timings["search"].append(time.perf_counter() - t)
            if plain is not None:
                t = time.perf_counter()
                plain.ask(question)
                timings["plain_ask"].append(time.perf_counter() - t)
    result = {
        "index": str(settings.index_dir),
        **retriever.stats(),
        "models": retriever.models.to_dict(),
        "open_seconds": round(open_seconds, 3),
        "calls": len(timings["ask"]),
        **{
            f"{name}_ms": {
                "p50": round(1000 * statistics.median(values), 1),
                "p95": round(1000 * _percentile(values, 0.95), 1),
                "mean": round(1000 * statistics.fmean(values), 1),
            }
            for name, values in timings.items()
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if plain is not None:
        result["added_by_seams_ms_p50"] = round(1000 * (statistics.median(timings["ask"]) - statistics.median(timings["plain_ask"])), 1)
    retriever.close()
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
