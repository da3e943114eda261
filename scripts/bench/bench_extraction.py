"""How well qabot finds the article on pages it did not write: precision, recall and F1 on
181 real article pages with human-checked bodies, beside the published figures.

    .venv/bin/python -m scripts.bench.bench_extraction [--corpus ../shared/corpora/article-extraction-benchmark]
        [--workers 2] [--json report.json]

The corpus (scrapinghub/article-extraction-benchmark, MIT; read from ../shared, never copied)
holds ``html/<hash>.html.gz`` and ``ground-truth.json`` (``{hash: {"url", "articleBody"}}``).
The metric is theirs (evaluate.py upstream): the page's text and the true body become
shingles of 4 ``\\w+`` tokens; true/false positives and false negatives are counted per page
and normalised by the page's total, precision and recall are averaged over the pages, and F1
is their harmonic mean. Published on the same pages: trafilatura 2.0.0 F1 0.958 (P 0.938,
R 0.978), readability.js 0.947.

Each setting of the extractor (:class:`qabot.ingest.web.Extraction`) runs through
``qabot.ingest.web.extract_page`` (qabot's own pass: charset, trafilatura, the headline dropped
from the text, a page without a paragraph of prose is no article), on all pages and on two
halves: A (even positions in hash order), where settings were chosen, and B (odd), where the
choice is confirmed. ``qabot`` is the setting the archive reader uses. Pages per second are
measured for it with ``--workers`` processes (2: the cores qabot is measured on).
Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from qabot.ingest.charset import decode_page
from qabot.ingest.web import EXTRACTION, Extraction, extract_page

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "article-extraction-benchmark"
PUBLISHED = {"trafilatura 2.0.0": {"f1": 0.958, "precision": 0.938, "recall": 0.978},
             "readability.js": {"f1": 0.947}, "newspaper4k": {"f1": 0.949}, "go-trafilatura": {"f1": 0.960}}
SETTINGS = {
    "default": Extraction(),
    "favor_precision": Extraction(favor_precision=True),
    "favor_recall": Extraction(favor_recall=True),
    "fast": Extraction(fast=True),
    "precision, recall if < 0.5": Extraction(favor_precision=True, recall_fallback=0.5),
    "default, recall if < 0.5": Extraction(recall_fallback=0.5),
}
_TOKEN = re.compile(r"\w+")


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    """Runs of ``n`` word tokens, counted (a text shorter than ``n`` tokens is one shingle)."""
    tokens = _TOKEN.findall(text)
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n])


def page_counts(true: str, predicted: str) -> tuple[float, float, float]:
    """(tp, fp, fn) over shingles, as shares of their sum, so that a long page weighs as much as a short one."""
    t, p = shingles(true), shingles(predicted)
    tp, fp, fn = sum((t & p).values()), sum((p - t).values()), sum((t - p).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def scores(counts: list[tuple[float, float, float]]) -> dict[str, float]:
    """Precision and recall averaged over pages (as upstream: a perfect empty page scores 1), and their F1."""
    def precision(tp: float, fp: float, fn: float) -> float:
        return 1.0 if fp == fn == 0 else 0.0 if tp == fp == 0 else tp / (tp + fp)

    def recall(tp: float, fp: float, fn: float) -> float:
        return 1.0 if fp == fn == 0 else 0.0 if tp == fn == 0 else tp / (tp + fn)

    p = statistics.mean(precision(*c) for c in counts if c[0] + c[1] > 0)
    r = statistics.mean(recall(*c) for c in counts if c[0] + c[2] > 0)
    return {"f1": round(2 * p * r / (p + r), 4), "precision": round(p, 4), "recall": round(r, 4)}


def extracted(page: tuple[bytes, str], settings: Extraction = EXTRACTION) -> str:
    """qabot's text of one page ("" when qabot finds no article on it)."""
    data, url = page
    try:
        return extract_page(decode_page(data)[0], url=url, settings=settings).text
    except ValueError:
        return ""


def load(corpus: Path) -> tuple[list[str], list[tuple[bytes, str]], list[str]]:
    """Keys in hash order, (page bytes, URL) and the true bodies."""
    truth = json.loads((corpus / "ground-truth.json").read_text(encoding="utf-8"))
    keys = sorted(truth)
    pages = [(gzip.decompress((corpus / "html" / f"{k}.html.gz").read_bytes()), truth[k]["url"]) for k in keys]
    return keys, pages, [truth[k].get("articleBody") or "" for k in keys]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    if not (args.corpus / "ground-truth.json").is_file():
        sys.exit(f"error: no ground-truth.json in {args.corpus}")
    keys, pages, truth = load(args.corpus)
    settings = {**SETTINGS, "qabot": EXTRACTION}
    report: dict[str, object] = {"pages": len(keys), "published": PUBLISHED, "settings": {}}
    print(f"{'setting':<28} {'F1':>6} {'P':>6} {'R':>6}   {'F1 A':>6} {'F1 B':>6}  {'pages/s (1 process)':>19}")
    for name, setting in settings.items():
        start = time.perf_counter()
        texts = [extracted(page, setting) for page in pages]
        seconds = time.perf_counter() - start
        counts = [page_counts(t, x) for t, x in zip(truth, texts)]
        row = {"extraction": asdict(setting), "all": scores(counts), "A": scores(counts[0::2]), "B": scores(counts[1::2]),
               "no_article": sum(1 for x in texts if not x), "pages_per_second_1": round(len(pages) / seconds, 1)}
        report["settings"][name] = row  # type: ignore[index]
        a = row["all"]
        print(f"{name:<28} {a['f1']:>6.3f} {a['precision']:>6.3f} {a['recall']:>6.3f}   {row['A']['f1']:>6.3f} "
              f"{row['B']['f1']:>6.3f}  {row['pages_per_second_1']:>19}", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(extracted, pages, chunksize=4))
    report["qabot_pages_per_second"] = {"workers": args.workers, "pages_per_second": round(len(pages) / (time.perf_counter() - start), 1)}
    best = report["settings"]["qabot"]["all"]["f1"]  # type: ignore[index]
    report["qabot_minus_published_trafilatura_f1"] = round(best - PUBLISHED["trafilatura 2.0.0"]["f1"], 4)
    for name, figures in PUBLISHED.items():
        print(f"{name + ' (published)':<28} {figures['f1']:>6.3f} " + " ".join(f"{figures.get(k, float('nan')):>6.3f}" for k in ("precision", "recall")))
    print(f"qabot with {args.workers} processes: {report['qabot_pages_per_second']['pages_per_second']} pages/s; "  # type: ignore[index]
          f"F1 minus published trafilatura: {report['qabot_minus_published_trafilatura_f1']:+.4f}")
    print(json.dumps(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
