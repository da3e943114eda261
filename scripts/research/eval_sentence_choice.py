#!/usr/bin/env python
"""Answer-sentence choice inside the gold paragraph: today's bi-encoder blend against a reranker, and blends.

    .venv/bin/python -m scripts.research.eval_sentence_choice [--reranker FOLDER | --adapter DIR] \\
        [--xquad ../shared/eval/xquad-dev] [--weights 0,0.5,1] [--output choice.json]

Each German dev paragraph is cut by qabot's splitter; a question counts when one of its
sentences holds a gold answer (the others are reported as ``no_gold_sentence``). The
bi-encoder's choice is :func:`qabot.answering.picking.rank` (sentence similarity, word overlap,
answer type; the passage term is the same for every sentence of one paragraph). With a
reranker (a CrossEncoder folder, or ``--adapter``: an adapter folder merged into a temporary
one), each weight ``w`` ranks by ``(1 - w) * bi-encoder blend + w * reranker score``.
Prints per language (en, de), overall and per half (A: even-numbered articles, B: odd), the
share of questions whose chosen sentence holds the answer.

``--abstention`` also asks each question of its nearest *wrong* paragraph (by the bi-encoder:
what the archive offers when it lacks the answer) and reports, per language, how well each
signal separates "the paragraph answers" from "it does not" (ROC AUC): today's relevance
(0.5 x paragraph similarity + 0.5 x best sentence similarity, the gate's signal) and the
reranker's best sentence score.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from qabot.answering import picking
from qabot.config import Settings
from qabot.evaluation.command import write_report
from qabot.evaluation.dev_set import HALVES
from qabot.evaluation.metrics import sentence_hit
from qabot.ingest.sentences import split_sentences
from qabot.models.embedding import load_embedder
from qabot.models.provision import default_model_dir
from qabot.models.reranker import CrossEncoderReranker
from qabot.models.reranker_build import build_reranker


def dev_items(xquad: Path) -> list[dict]:
    """One item per (language, question): its half, the gold paragraph's sentences and which hold an answer."""
    de = json.loads((xquad / "xquad.de.json").read_text(encoding="utf-8"))
    en = json.loads((xquad / "xquad.en.json").read_text(encoding="utf-8"))
    english = {qa["id"]: qa["question"] for a in en["data"] for p in a["paragraphs"] for qa in p["qas"]}
    items = []
    for number, article in enumerate(de["data"]):
        for paragraph in article["paragraphs"]:
            sentences = [s.text for s in split_sentences(paragraph["context"])]
            for qa in paragraph["qas"]:
                answers = [a["text"] for a in qa["answers"]]
                gold = [i for i, s in enumerate(sentences) if sentence_hit(s, answers)]
                for language, question in (("en", english.get(qa["id"])), ("de", qa["question"])):
                    if question:
                        items.append({"language": language, "half": HALVES[number % 2], "question": question,
                                      "sentences": sentences, "gold": gold, "paragraph": paragraph["context"]})
    return items


def summarise(items: list[dict], chosen: list[int]) -> dict:
    out: dict = {}
    for language in ("en", "de"):
        rows = [(it, c) for it, c in zip(items, chosen) if it["language"] == language and it["gold"]]
        def share(rs: list) -> float:
            return round(sum(c in it["gold"] for it, c in rs) / max(1, len(rs)), 3)
        out[language] = {"all": share(rows), **{h: share([r for r in rows if r[0]["half"] == h]) for h in HALVES},
                         "n": len(rows)}
    return out


def auc(positive: list[float], negative: list[float]) -> float:
    """ROC AUC: the chance that a random positive scores above a random negative (ties half)."""
    pos, neg = np.asarray(positive), np.asarray(negative)
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return round(float(greater / max(1, pos.size * neg.size)), 3)


def abstention(items: list[dict], questions: np.ndarray, vectors: dict, embedder, reranker) -> dict:
    """Per language, overall and per half: AUC of today's relevance and of the reranker's best
    sentence score, gold vs nearest wrong paragraph."""
    paragraphs = sorted({it["paragraph"] for it in items})
    pvec = dict(zip(paragraphs, embedder.embed_passages(paragraphs)))
    sentences_of = {it["paragraph"]: it["sentences"] for it in items}
    out: dict = {}
    signals: dict = {}
    for it, q in zip(items, questions):
        sims = {p: float(pvec[p] @ q) for p in paragraphs}
        wrong = max((p for p in paragraphs if p != it["paragraph"]), key=sims.get)
        for label, paragraph in (("answers", it["paragraph"]), ("lacks", wrong)):
            best = max(float(vectors[s] @ q) for s in sentences_of[paragraph])
            cross = float(np.max(reranker.score(it["question"], sentences_of[paragraph]))) if reranker is not None else 0.0
            signals.setdefault((it["language"], label), []).append((0.5 * sims[paragraph] + 0.5 * best, cross, it["half"]))
    for language in ("en", "de"):
        out[language] = {}
        for half in ("all", *HALVES):
            yes, no = ([s for s in signals[(language, label)] if half in ("all", s[2])] for label in ("answers", "lacks"))
            out[language][half] = {"bi_encoder_auc": auc([a for a, _, _ in yes], [a for a, _, _ in no])}
            if reranker is not None:
                out[language][half]["reranker_auc"] = auc([b for _, b, _ in yes], [b for _, b, _ in no])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--xquad", type=Path, default=Path(__file__).resolve().parents[3] / "shared/eval/xquad-dev")
    parser.add_argument("--reranker", type=Path, help="a CrossEncoder folder")
    parser.add_argument("--adapter", type=Path, help="an adapter folder (train_reranker.py --out), merged for this run")
    parser.add_argument("--weights", default="0.25,0.5,0.75,1", help="reranker weights to report")
    parser.add_argument("--abstention", action="store_true", help="also measure abstention signals (see above)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    settings = Settings.load()
    items = dev_items(args.xquad)
    embedder = load_embedder(settings.model, cache_dir=settings.model_cache_dir)
    texts = sorted({s for it in items for s in it["sentences"]})
    vectors = dict(zip(texts, embedder.embed_passages(texts)))
    questions = embedder.embed_queries([it["question"] for it in items])
    bi = []
    for it, q in zip(items, questions):
        found = [picking.Candidate(0, 0, len(s), s) for s in it["sentences"]]
        similarity = np.array([vectors[s] @ q for s in it["sentences"]], dtype=np.float32)
        bi.append(picking.rank(it["question"], found, similarity, [1.0]))
    report: dict = {"bi_encoder": summarise(items, [int(np.argmax(s)) for s in bi]),
                    "no_gold_sentence": sum(not it["gold"] for it in items)}
    folder, reranker = args.reranker, None
    if args.adapter is not None:
        folder = build_reranker(default_model_dir(settings.model_cache_dir), Path(tempfile.mkdtemp()) / "merged",
                                adapter=args.adapter)
    if folder is not None:
        reranker = CrossEncoderReranker(folder, precision="bf16")
        started = time.monotonic()
        cross = [reranker.score(it["question"], it["sentences"]) for it in items]
        report["reranker_seconds"] = round(time.monotonic() - started, 1)
        report["pairs"] = sum(len(it["sentences"]) for it in items)
        for w in [float(x) for x in args.weights.split(",")]:
            report[f"w{w:g}"] = summarise(items, [int(np.argmax((1 - w) * b + w * c)) for b, c in zip(bi, cross)])
    if args.abstention:
        report["abstention"] = abstention(items, questions, vectors, embedder, reranker)
    write_report(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
