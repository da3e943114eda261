#!/usr/bin/env python
"""Ablation: can the keyword leg help English questions: their words translated into the archive's German words, or fed back?

    .venv/bin/python -m scripts.research.ablate_translation --index /tmp/eval-ix \\
        --de ../shared/eval/xquad-dev/xquad.de.json --en ../shared/eval/xquad-dev/xquad.en.json \\
        [--min-similarity 0.85 0.9] [--prf 3 6] [--no-baseline] [--limit N] [--output /tmp/translation.json]

English questions against German text get keyword matches only on names and numbers. Here each
English question's content words (qabot's ``terms``) are looked up among the archive's own German
words by nearest neighbour in the model's space (every word embedded alone as "query: WORD", both
sides), and the nearest German word above ``--min-similarity`` (not the word itself) is added to
the keyword query. The rest of the answer is qabot's, unchanged (``Retriever.ask``/``search``).

The index must be one ``scripts/evaluate.py --keep-index DIR`` built (dev paragraphs, optionally
among distractors). The archive's vocabulary is read from that index's chunks (words in at least
``--min-chunks`` chunks), embedded once here. This is an experiment: it embeds the question's
words separately, which qabot at question time does not do (only the question is embedded) —
kept only if it helps by a point on the tuning half (A), see issue 10. ``--prf N``: instead,
classic pseudo-relevance feedback: the N most salient words (tf x idf over the archive's chunks)
of the top ``PRF_DOCS`` dense chunks are added to the keyword query. Prints one JSON object:
per setting (baseline, each threshold, each feedback size), English recall@1/@10 and sentence hit per half.

Measured (2026-12-02, the 120 dev paragraphs alone, 4,509 archive words, fp32): English recall@1
tuning half A 0.914 -> 0.883 at 0.85 and at 0.9, half B 0.935 -> 0.902 / 0.906; sentence hit A
unchanged (0.699), B 0.739 -> 0.723. Feedback (--prf 3 6): A 0.886 both, B 0.915 / 0.909; sentence
hit A 0.695 / 0.702, B 0.739 / 0.743. Both left out of qabot.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from qabot.answering import legs
from qabot.answering.legs import terms
from qabot.config import Settings
from qabot.evaluation import command, dev_set, metrics, run
from qabot.models.embedding import embedder_for

PRF_DOCS = 3  # pseudo-relevance feedback: the top dense chunks whose salient words are added


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def document_counts(store) -> tuple[Counter[str], int]:
    """The archive's content words (lower-cased, stopwords out, letters only): in how many chunks each is; and the chunks."""
    counts: Counter[str] = Counter()
    ids = [int(i) for i in store.chunk_ids()]
    for start in range(0, len(ids), 2000):
        for row in store.chunk_rows(ids[start:start + 2000]).values():
            counts.update(w for w in terms(row["text"]) if w.isalpha())
    return counts, len(ids)


def salient_terms(texts: list[str], leave_out: set[str], counts: Counter[str], chunks: int, n: int) -> list[str]:
    """The ``n`` words of ``texts`` (longer than 3 letters, not in ``leave_out``) with the highest tf x idf."""
    tf = Counter(w for text in texts for w in terms(text) if w.isalpha() and len(w) > 3 and w not in leave_out)
    return sorted(tf, key=lambda w: (-tf[w] * math.log(chunks / max(1, counts[w])), w))[:n]


class Translator:
    """English word -> nearest German archive word (cosine of "query: word" vectors) above a threshold."""

    def __init__(self, embedder, words: list[str]) -> None:
        self.embedder = embedder
        self.words = words
        self.index = set(words)
        self.vectors = embedder.embed_queries(words)
        self.cache: dict[str, tuple[str, float]] = {}

    def nearest(self, word: str) -> tuple[str, float]:
        if word not in self.cache:
            scores = self.vectors @ self.embedder.embed_queries([word])[0]
            order = np.argsort(-scores)
            best = next((int(i) for i in order[:3] if self.words[int(i)] != word), int(order[0]))
            self.cache[word] = (self.words[best], float(scores[best]))
        return self.cache[word]

    def expand(self, question: str, threshold: float) -> list[str]:
        words = terms(question)
        extra = []
        for word in words:
            if not word.isalpha() or word in self.index:  # names and numbers already match as they are
                continue
            german, score = self.nearest(word)
            if score >= threshold and german not in words:
                extra.append(german)
        return words + list(dict.fromkeys(extra))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index evaluate.py --keep-index built")
    parser.add_argument("--de", type=Path, required=True)
    parser.add_argument("--en", type=Path, required=True)
    parser.add_argument("--min-similarity", type=float, nargs="*", default=[0.85, 0.9])
    parser.add_argument("--min-chunks", type=int, default=1, help="vocabulary: words in at least this many chunks")
    parser.add_argument("--prf", type=int, nargs="*", default=[], metavar="N",
                        help=f"also: the N most salient words of the top {PRF_DOCS} dense chunks added to the keyword query")
    parser.add_argument("--no-baseline", action="store_true", help="skip qabot's own keyword leg (known from an earlier run)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    settings = Settings.load()
    embedder = embedder_for(settings)
    _, questions = dev_set.load_questions(args.de, args.en, limit=args.limit)
    english = questions["en"]
    from qabot.answering.retriever import Retriever

    with Retriever.open(args.index, settings=settings, embedder=embedder) as retriever:
        started = time.perf_counter()
        counts, chunks = document_counts(retriever.store)
        words = sorted(w for w, n in counts.items() if n >= args.min_chunks)
        translator = Translator(embedder, words) if args.min_similarity else None  # embedding the vocabulary takes a while
        say(f"vocabulary: {len(words)} words{' embedded' if translator else ''} in {time.perf_counter() - started:.1f} s")
        original, original_dense = legs.keyword_ranking, legs.dense_ranking
        last_dense: list[tuple[int, float]] = []

        def recording_dense(store, vector, k):
            last_dense[:] = original_dense(store, vector, k)
            return last_dense

        def translated(threshold):
            def keyword(store, question, k):
                words = translator.expand(question, threshold)
                return store.keyword_search_words(words, k) if words else []
            return keyword

        def feedback(n):
            def keyword(store, question, k):
                words = terms(question)
                rows = store.chunk_rows([c for c, _ in last_dense[:PRF_DOCS]])
                words += salient_terms([r["text"] for r in rows.values()], set(words), counts, chunks, n)
                return store.keyword_search_words(words, k) if words else []
            return keyword

        variants = ([] if args.no_baseline else [("baseline", original)]) + [
            *((f"min_similarity {t:g}", translated(t)) for t in args.min_similarity),
            *((f"prf {n} words of {PRF_DOCS} chunks", feedback(n)) for n in args.prf)]
        report: dict[str, object] = {"vocabulary": len(words)}
        legs.dense_ranking = recording_dense
        try:
            for name, keyword in variants:
                legs.keyword_ranking = keyword
                report[name] = metrics.summarise_language(run.ask_all(retriever, english, k=settings.top_k))
                halves = report[name]["halves"]
                say(f"{name}: " + json.dumps({h: {m: halves[h][m] for m in ("recall@1", "recall@10", "sentence_hit@1")} for h in halves}))
        finally:
            legs.keyword_ranking, legs.dense_ranking = original, original_dense
        if translator is not None:
            report["examples"] = {q.text: translator.expand(q.text, min(args.min_similarity)) for q in english[:15]}
    command.write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
