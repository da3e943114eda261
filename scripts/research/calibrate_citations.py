#!/usr/bin/env python
"""Calibrate the citation check's similarity bar on parallel text (XQuAD English vs German).

    .venv/bin/python -m scripts.research.calibrate_citations --en ../shared/eval/xquad-dev/xquad.en.json \\
        --de ../shared/eval/xquad-dev/xquad.de.json [--limit N] [--output /tmp/calibration.json]

XQuAD's two files hold the same paragraphs, in the same order, in English and German. Each
English sentence is a claim "citing" a German paragraph:

- supported:   the German paragraph it was translated into;
- unsupported: another paragraph of the same article (same topic: the hard case);
- unsupported: its own paragraph, with one number changed (+1, or a year +3) or, if it
  has no number, one name swapped for a name from another article.

Every example gets the whole check of :mod:`qabot.answering.citations`: facts (numbers,
dates, names) and the best e5 similarity of the claim to the paragraph's sentences and
neighbouring pairs, embedded as the Retriever does at run time ("passage: " on both sides,
each distinct text once, in batches). The bar is tuned on the paragraphs of the even-numbered articles
(the one with the best F0.5: precision counts twice, a wrong sentence shown is worse than a
right one dropped) and precision/recall are reported on the odd-numbered articles, which the
tuning never saw. Data files are read where they lie, never copied.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qabot.answering.citations import fact_problem, support_units
from qabot.answering.normalising import fact_readings, facts, names
from qabot.config import Settings
from qabot.ingest.sentences import split_sentences
from qabot.models.embedding import embedder_for

BARS = [round(0.70 + 0.01 * i, 2) for i in range(29)]  # 0.70 .. 0.98: round values


@dataclass(frozen=True)
class Example:
    claim: str
    paragraph: int  # index into the German paragraphs
    supported: bool
    kind: str  # "translation", "other paragraph", "number changed", "name changed"
    half: str  # "tune" or "test"


def paragraphs(path: Path) -> list[tuple[int, str]]:
    """(article index, context) for every paragraph, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [(a, p["context"]) for a, article in enumerate(data["data"]) for p in article["paragraphs"]]


def changed_number(sentence: str, avoid: set[str]) -> str | None:
    """``sentence`` with its first number changed to one the paragraph does not hold."""
    for fact in facts(sentence):
        m = re.search(r"\d+", fact.shown)
        if not m:
            continue
        value = int(m.group(0))
        for new in (value + 1, value + 3, value + 7, value * 2 + 1):
            if str(new) not in avoid:
                start = sentence.index(fact.shown) + m.start()
                return sentence[:start] + str(new) + sentence[start + len(m.group(0)):]
    return None


def changed_name(sentence: str, pool: list[str], seed: int) -> str | None:
    """``sentence`` with its first name replaced by one from ``pool`` (another article's)."""
    found = names(sentence)
    if not found or not pool:
        return None
    new = pool[seed % len(pool)]
    return re.sub(rf"\b{re.escape(found[0])}\b", new, sentence, count=1)


def build_examples(en: list[tuple[int, str]], de: list[tuple[int, str]]) -> list[Example]:
    by_article: dict[int, list[int]] = {}
    for i, (article, _) in enumerate(de):
        by_article.setdefault(article, []).append(i)
    names_by_article = {a: sorted({n for i in ids for n in names(en[i][1]) if len(n) > 3}) for a, ids in by_article.items()}
    examples: list[Example] = []
    for i, ((article, english), (_, german)) in enumerate(zip(en, de, strict=True)):
        half = "tune" if article % 2 == 0 else "test"
        siblings = by_article[article]
        other = siblings[(siblings.index(i) + 1) % len(siblings)] if len(siblings) > 1 else (i + 1) % len(de)
        readings = fact_readings(german)
        pool = [n for a, ns in names_by_article.items() if a != article for n in ns]
        for s, sentence in enumerate(s.text for s in split_sentences(english)):
            if len(sentence.split()) < 4:
                continue
            examples.append(Example(sentence, i, True, "translation", half))
            examples.append(Example(sentence, other, False, "other paragraph", half))
            changed = changed_number(sentence, readings)
            if changed is not None:
                examples.append(Example(changed, i, False, "number changed", half))
            elif (swapped := changed_name(sentence, pool, i * 31 + s)) is not None and swapped != sentence:
                examples.append(Example(swapped, i, False, "name changed", half))
    return examples


def similarities(examples: list[Example], german: list[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """The best cosine of each example's claim to its paragraph's units, as the run-time check
    computes it: ``embed`` is the embedder's ``embed_passages`` (the Retriever embeds claims and
    passage sentences with the "passage: " prompt), and every distinct text is embedded once."""
    units = [support_units(text) for text in german]
    texts = list(dict.fromkeys([e.claim for e in examples] + [u for us in units for u in us]))
    vectors = embed(texts)
    row = {t: i for i, t in enumerate(texts)}
    out = np.zeros(len(examples), dtype=np.float32)
    for k, e in enumerate(examples):
        block = vectors[[row[u] for u in units[e.paragraph]]]
        out[k] = float(np.max(block @ vectors[row[e.claim]])) if len(block) else 0.0
    return out


def scores(kept: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int(np.sum(kept & truth))
    precision = tp / max(1, int(np.sum(kept)))
    recall = tp / max(1, int(np.sum(truth)))
    f05 = (1.25 * precision * recall / (0.25 * precision + recall)) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f0.5": round(f05, 4), "kept": int(np.sum(kept))}


def tune_bar(kept_by_facts: np.ndarray, sim: np.ndarray, truth: np.ndarray) -> float:
    """The bar with the best F0.5 of the whole check; ties go to the lower (rounder) bar."""
    return max(BARS, key=lambda bar: (scores(kept_by_facts & (sim >= bar), truth)["f0.5"], -bar))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--en", type=Path, required=True, help="English SQuAD-format file (XQuAD)")
    parser.add_argument("--de", type=Path, required=True, help="the German file with the same paragraphs")
    parser.add_argument("--model", default="multilingual-e5-small", help="embedding model (default: the offline e5)")
    parser.add_argument("--limit", type=int, help="use only the first N paragraphs (a quicker, rougher run)")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    en, de = paragraphs(args.en), paragraphs(args.de)
    if [a for a, _ in en] != [a for a, _ in de]:
        print("error: the two files do not hold the same paragraphs in the same order", file=sys.stderr)
        return 1
    if args.limit:
        en, de = en[: args.limit], de[: args.limit]
    embedder = embedder_for(Settings.load(), args.model)  # its device and precision (bf16 where there is one)
    examples = build_examples(en, de)
    german = [text for _, text in de]
    truth = np.array([e.supported for e in examples])
    tune = np.array([e.half == "tune" for e in examples])
    kinds = list(dict.fromkeys(e.kind for e in examples))
    kind = np.array([e.kind for e in examples])
    started = time.perf_counter()
    facts_ok = np.array([fact_problem(e.claim, [german[e.paragraph]]) is None for e in examples])
    facts_seconds = time.perf_counter() - started
    started = time.perf_counter()
    sim = similarities(examples, german, lambda texts: np.asarray(embedder.embed_passages(texts, batch_size=64)))
    embed_seconds = time.perf_counter() - started
    bar = tune_bar(facts_ok[tune], sim[tune], truth[tune])
    kept = facts_ok & (sim >= bar)
    test = ~tune
    topical = test & np.isin(kind, ["translation", "other paragraph"])  # meaning's own job: same topic, other text
    report: dict[str, Any] = {
        "model": embedder.name, "prompt": "passage: on both sides (as at run time)",
        "paragraphs": len(de), "examples": len(examples),
        "by_kind": {k: int(np.sum(kind == k)) for k in kinds},
        "bar": bar,
        "test": {
            "whole_check": scores(kept[test], truth[test]),
            "facts_only": scores(facts_ok[test], truth[test]),
            "meaning_only": scores(sim[test] >= bar, truth[test]),
            "meaning_only_translation_vs_other_paragraph": scores(sim[topical] >= bar, truth[topical]),
            "rejected_by_kind": {k: round(float(np.mean(~kept[test & (kind == k)])), 4) for k in kinds},
        },
        "tune": {"whole_check": scores(kept[tune], truth[tune])},
        "similarity_percentiles_test": {
            k: [round(float(v), 3) for v in np.percentile(sim[test & (kind == k)], [5, 25, 50, 75, 95])]
            for k in kinds if np.any(test & (kind == k))
        },
        "seconds": {"facts": round(facts_seconds, 1), "embedding": round(embed_seconds, 1)},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
