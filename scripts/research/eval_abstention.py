"""Abstention through ``ask``: does the archive hold the answer? Each dev question asked twice.

    .venv/bin/python -m scripts.research.eval_abstention --index DIR [--xquad ../shared/eval/xquad-dev] \\
        [--keep 0.97] [--work /tmp/qabot-abstention] [--output FILE]

``--index`` is an index kept by ``scripts/evaluate.py --keep-index`` (the dev paragraphs, and
distractors if it was built with them). Each question is asked of it ("answers": its paragraph
is there) and of a copy without the question's whole Wikipedia article ("absent": what a user
gets when the archive lacks the story; the copy is the index with the article's paragraphs
deleted, one copy per article, nothing re-embedded). For each, the two signals a gate could
use are recorded: the bi-encoder's relevance (the best passage's blended similarity, today's
gate) and the reranker's best score among the answer sentences it read (the reranker is what
``QABOT_RERANKER`` gives; the built-in one unless set).

Per question language it reports each signal's ROC AUC (answers vs absent) per half, and a
threshold chosen on half A (the highest that keeps ``--keep`` of A's answerable questions)
applied to half B: the share of B's answerable questions kept and of its absent ones answered.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.evaluation.command import write_report
from qabot.evaluation.dev_set import HALVES, load_questions
from qabot.indexer import delete_articles
from qabot.models.embedding import embedder_for
from scripts.research.eval_sentence_choice import auc

SIGNALS = ("relevance", "reranker")


def signals(retriever: Retriever, question: str) -> dict[str, float | None]:
    """The two gate signals ``ask`` sees for ``question`` (the reranker's None when it read nothing)."""
    ranked, _ = retriever._scored(question, retriever.top_k, None, None)  # what ask gates on
    return {"relevance": ranked.relevance if ranked.passages else 0.0, "reranker": ranked.reranker_best}


def threshold_keeping(values: list[float], keep: float) -> float:
    """The highest threshold that ``keep`` of ``values`` reach (value >= threshold passes)."""
    ordered = sorted(values, reverse=True)
    return float(ordered[max(0, min(len(ordered) - 1, int(np.ceil(keep * len(ordered))) - 1))])


def summarise(rows: list[dict], keep: float) -> dict:
    """Per language and signal (one a row lacks is left out): AUC per half, and half A's threshold
    for ``keep`` with the shares of each half's answerable questions kept and absent ones answered."""
    out: dict = {}
    for language in sorted({r["language"] for r in rows}):
        mine = [r for r in rows if r["language"] == language]
        out[language] = {}
        for signal in SIGNALS:
            if any(r[signal] is None for r in mine):
                continue
            part: dict = {}
            for half in ("all", *HALVES):
                sel = [r for r in mine if half in ("all", r["half"])]
                yes = [r[signal] for r in sel if r["case"] == "answers"]
                no = [r[signal] for r in sel if r["case"] == "absent"]
                part[f"auc_{half}"] = auc(yes, no)
            tuned = threshold_keeping([r[signal] for r in mine if r["half"] == "A" and r["case"] == "answers"], keep)
            part["threshold_from_A"] = round(tuned, 4)
            for half in HALVES:
                yes = [r[signal] for r in mine if r["half"] == half and r["case"] == "answers"]
                no = [r[signal] for r in mine if r["half"] == half and r["case"] == "absent"]
                part[f"kept_answerable_{half}"] = round(float(np.mean([v >= tuned for v in yes])), 4)
                part[f"answered_absent_{half}"] = round(float(np.mean([v >= tuned for v in no])), 4)
            out[language][signal] = part
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index kept by scripts/evaluate.py --keep-index")
    parser.add_argument("--xquad", type=Path, default=Path(__file__).resolve().parents[3] / "shared/eval/xquad-dev")
    parser.add_argument("--keep", type=float, default=0.97, help="the share of half A's answerable questions a threshold keeps")
    parser.add_argument("--work", type=Path, default=Path("/tmp/qabot-abstention"), help="the per-article copies (removed after)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions per language")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.index.is_dir():
        parser.error(f"--index {args.index}: no such folder (build it with scripts/evaluate.py --keep-index)")

    started = time.perf_counter()
    articles, questions = load_questions(args.xquad / "xquad.de.json", args.xquad / "xquad.en.json", limit=args.limit)
    paragraphs_of: dict[str, list[str]] = defaultdict(list)  # Wikipedia article -> its paragraph ids
    for article in articles:
        paragraphs_of[article.id.split("#")[0]].append(article.id)
    settings = Settings.load()
    embedder = embedder_for(settings)
    rows: list[dict] = []

    def ask_all(index: Path, chosen: list, case: str) -> None:
        with Retriever.open(index, settings=settings, embedder=embedder) as retriever:
            for q in chosen:
                rows.append({"id": q.id, "language": q.language, "half": q.half, "case": case, **signals(retriever, q.text)})

    everyone = [q for qs in questions.values() for q in qs]
    ask_all(args.index, everyone, "answers")
    for title, ids in paragraphs_of.items():
        asked = [q for q in everyone if q.paragraph_id.split("#")[0] == title]
        if not asked:
            continue
        copy = args.work / "without"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(args.index, copy)
        delete_articles(copy, ids)
        ask_all(copy, asked, "absent")
        print(f"{title}: {len(ids)} paragraphs left out, {len(asked)} questions; {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    shutil.rmtree(args.work / "without", ignore_errors=True)
    report = {"index": str(args.index), "keep": args.keep, "questions": len(everyone),
              "reranker": settings.reranker, "seconds": round(time.perf_counter() - started, 1),
              **summarise(rows, args.keep)}
    write_report(report, args.output)
    if args.output is not None:
        args.output.with_suffix(".rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
