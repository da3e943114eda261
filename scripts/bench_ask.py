#!/usr/bin/env python
"""Measure an index's question path: open time, warm `ask`/`search` latency, peak memory.

    .venv/bin/python scripts/bench_ask.py --index index/default [--repeat 20] [QUESTION ...]

Prints one JSON object. Without questions it asks a fixed English/German set about the
bundled sample. Latency is wall time per call after one warm-up call per question.
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
    args = parser.parse_args(argv)

    started = time.perf_counter()
    settings = Settings.load(index_dir=args.index)
    retriever = Retriever.open(settings.index_dir, settings=settings)
    open_seconds = time.perf_counter() - started
    timings: dict[str, list[float]] = {"ask": [], "search": []}
    for question in args.questions:  # warm-up
        retriever.ask(question)
    for _ in range(args.repeat):
        for question in args.questions:
            t = time.perf_counter()
            retriever.ask(question)
            timings["ask"].append(time.perf_counter() - t)
            t = time.perf_counter()
            retriever.search(question)
            timings["search"].append(time.perf_counter() - t)
    result = {
        "index": str(settings.index_dir),
        **retriever.stats(),
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
    retriever.close()
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
