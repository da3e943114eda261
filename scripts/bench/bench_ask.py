#!/usr/bin/env python
"""Measure an index's question path: open time, warm `ask`/`search` latency against the question's own embedding, peak memory.

    .venv/bin/python -m scripts.bench.bench_ask --index index/default [--repeat 20] [QUESTION ...]
    .venv/bin/python -m scripts.bench.bench_ask --index /tmp/eval-ix --squad ../shared/eval/xquad-dev/xquad.en.json
    .venv/bin/python -m scripts.bench.bench_ask --index index/default --questions-file questions.txt [--limit 200]
    .venv/bin/python -m scripts.bench.bench_ask --index postgresql://user:pw@host/db --squad FILE --recall

Prints one JSON object. Without questions it asks a fixed English/German set about the
bundled sample, ``--repeat`` times (default 10); ``--questions-file`` (one question a line)
or ``--squad`` (a SQuAD-format file's question texts) ask many different questions, each
``--repeat`` times (default 1). Latency is wall time per call after a warm-up (the first few
questions, asked once). In the same loop it times embedding the question alone
(``retriever.embedder.embed_queries([q])``, warm), the floor of ``ask``: ``ratios`` gives
ask p50 / embed p50 and ask p95 / embed p95 against their targets (``TARGETS``).
Settings come from the environment as for the CLI, so the optional seams are measured by
setting them: QABOT_RERANKER=DIR, QABOT_READER=DIR, QABOT_LLM_URL/QABOT_LLM_MODEL (then the
LLM step, ``refine``, is timed too). ``--compare`` also times the same questions on a plain
retriever (no seams) in the same run and prints the added milliseconds.
A seam's cost without a real model: ``tests.tiny_models.build_e5_reranker(FOLDER, E5_FOLDER)`` and
``build_e5_reader`` write a 12-layer, 384-wide stand-in (multilingual-e5-small's weights, a fresh head)
to give as QABOT_RERANKER / QABOT_READER (run from the repository root).
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
WARM_UP = 4  # questions asked once before timing
TARGETS = {"ask_p50_over_embed_p50": 4.0, "ask_p95_over_embed_p95": 8.0}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def read_questions(questions_file: Path | None, squad: Path | None) -> list[str]:
    """The question texts of a plain file (one a line, blank lines skipped) and of a SQuAD file, in order."""
    questions: list[str] = []
    if questions_file is not None:
        questions += [line.strip() for line in questions_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if squad is not None:
        data = json.loads(squad.read_text(encoding="utf-8"))
        questions += [qa["question"] for entry in data["data"] for paragraph in entry["paragraphs"] for qa in paragraph["qas"]]
    return questions


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(1000 * statistics.median(values), 1),
        "p95": round(1000 * _percentile(values, 0.95), 1),
        "mean": round(1000 * statistics.fmean(values), 1),
    }


def ratios(summaries: dict[str, dict[str, float]]) -> dict[str, float | bool]:
    """``ask`` latency over the question's own embedding time, p50 and p95, and whether both meet ``TARGETS``."""
    ask, embed = summaries["ask_ms"], summaries["embed_ms"]
    out: dict[str, float | bool] = {
        "ask_p50_over_embed_p50": round(ask["p50"] / max(embed["p50"], 1e-3), 2),
        "ask_p95_over_embed_p95": round(ask["p95"] / max(embed["p95"], 1e-3), 2),
    }
    out["within_targets"] = all(out[name] <= limit for name, limit in TARGETS.items())
    return out


def hnsw_recall(retriever: Retriever, questions: list[str], k: int = 10) -> dict[str, float]:
    """Mean recall@k of the HNSW searches against exact ones (a PostgreSQL index only)."""
    store = retriever.store
    if not hasattr(store, "nearest_ids"):
        raise SystemExit("--recall measures a PostgreSQL index's HNSW indexes; this index is a folder")
    found: dict[str, list[float]] = {"chunks": [], "sentences": []}
    for question in dict.fromkeys(questions):
        vector = retriever.embedder.embed_queries([question])[0]
        for table, recalls in found.items():
            exact = set(store.nearest_ids(table, vector, k, exact=True))
            recalls.append(len(exact & set(store.nearest_ids(table, vector, k))) / max(1, len(exact)))
    return {table: round(statistics.fmean(values), 4) for table, values in found.items()}


def _line(summaries: dict[str, dict[str, float]], ratio: dict[str, float | bool]) -> str:
    """The headline numbers in one line (stderr), beside the JSON."""
    parts = [f"{name[:-3]} p50 {s['p50']} / p95 {s['p95']} ms" for name, s in summaries.items() if name != "plain_ask_ms"]
    return (f"{'; '.join(parts)}; ask/embed p50 {ratio['ask_p50_over_embed_p50']}x (target <= {TARGETS['ask_p50_over_embed_p50']:g}x), "
            f"p95 {ratio['ask_p95_over_embed_p95']}x (target <= {TARGETS['ask_p95_over_embed_p95']:g}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("questions", nargs="*", help="questions to ask (default: a fixed set about the sample)")
    parser.add_argument("--index", default=None, help="index folder or postgresql:// URL (default: QABOT_INDEX)")
    parser.add_argument("--questions-file", type=Path, help="a text file, one question a line")
    parser.add_argument("--squad", type=Path, help="a SQuAD-format JSON file: its question texts are asked")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--repeat", type=int, help="rounds over the questions (default: 10 for the fixed set, else 1)")
    parser.add_argument("--recall", action="store_true", help="PostgreSQL: also measure the HNSW indexes' "
                        "recall@10 against exact search, for every question's vector (chunks and sentences)")
    parser.add_argument("--compare", action="store_true", help="also time a plain retriever (no seams) in the same run")
    args = parser.parse_args(argv)
    many = read_questions(args.questions_file, args.squad)
    questions = [*args.questions, *many] or DEFAULT_QUESTIONS
    questions = questions[: args.limit] if args.limit else questions
    repeat = args.repeat if args.repeat is not None else (1 if many else 10)
    if not questions or repeat < 1:
        parser.error("nothing to ask: give questions and a --repeat of at least 1")

    started = time.perf_counter()
    settings = Settings.load(index_dir=args.index)
    retriever = Retriever.open(settings.index_dir, settings=settings)
    open_seconds = time.perf_counter() - started
    plain = Retriever(retriever.store, retriever.embedder, top_k=retriever.top_k) if args.compare else None
    embedder = retriever.embedder
    timings: dict[str, list[float]] = {"ask": [], "search": [], "embed": []} | ({"refine": []} if retriever.llm else {})
    if plain is not None:
        timings["plain_ask"] = []
    for question in questions[:WARM_UP]:  # warm-up
        retriever.refine(retriever.ask(question))
        embedder.embed_queries([question])
        if plain is not None:
            plain.ask(question)
    for _ in range(repeat):  # interleaved, so load on the machine hits every step alike
        for question in questions:
            t = time.perf_counter()
            embedder.embed_queries([question])
            timings["embed"].append(time.perf_counter() - t)
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
    summaries = {f"{name}_ms": _summary(values) for name, values in timings.items()}
    result = {
        "index": str(settings.index_dir),
        **retriever.stats(),
        "models": retriever.models.to_dict(),
        "open_seconds": round(open_seconds, 3),
        "questions": len(questions),
        "distinct_questions": len(set(questions)),
        "calls": len(timings["ask"]),
        **summaries,
        "ratios": ratios(summaries),
        "targets": TARGETS,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.recall:
        result["recall_at_10"] = hnsw_recall(retriever, questions)
    if plain is not None:
        result["added_by_seams_ms_p50"] = round(1000 * (statistics.median(timings["ask"]) - statistics.median(timings["plain_ask"])), 1)
    retriever.close()
    print(_line(summaries, result["ratios"]), file=sys.stderr)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
