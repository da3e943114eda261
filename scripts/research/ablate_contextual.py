#!/usr/bin/env python
"""Ablation: isolated vs contextual ("late chunking") sentence vectors for answer-sentence choice.

    .venv/bin/python -m scripts.research.ablate_contextual [--de ../shared/eval/xquad-dev/xquad.de.json] \\
        [--en ../shared/eval/xquad-dev/xquad.en.json] [--weights 1,0.75,0.5,0.25,0]
        [--threads 1] [--limit N] [--output /tmp/ablation.json]

For every XQuAD question, inside its own gold German paragraph (the paragraph is one chunk),
the paragraph's sentences (``split_sentences``, none shorter than ``MIN_SENTENCE_CHARS``) are
ranked by cosine to the question's vector (``Embedder.embed_queries``: "query: " + question);
a hit is a top sentence that contains one of the German gold answers (case- and
whitespace-insensitive). The same German paragraphs are asked with the English questions
(same ids, from the English file) and with the German ones.

Sentence vectors:

- isolated:   "passage: " + sentence, mean-pooled, normalised (``Embedder.embed_passages``);
- contextual: one pass over "passage: " + paragraph, the final token states of each sentence's
  character span (tokenizer offset mapping) mean-pooled and normalised;
- blend w:    normalise(w * isolated + (1 - w) * contextual); w = 1 is the isolated baseline.

Hit rates are reported per question language (en, de), per half (A = even-numbered articles in
``data``, B = odd) and in all; ``answerable`` counts the questions where some sentence contains
a gold answer at all (the ceiling). Times are per paragraph, both vector kinds, same process.
The model is the configured default (multilingual-e5-small) in float32 on the CPU. Data files
are read where they lie, never copied. Prints one JSON object and a table; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from qabot.config import Settings
from qabot.ingest.sentences import MIN_SENTENCE_CHARS, split_sentences
from qabot.models.embedding import SentenceTransformerEmbedder, embedder_for

EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval" / "xquad-dev"
WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)

def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def contextual_vectors(model: Any, text: str, spans: list[tuple[int, int]], prompt: str) -> np.ndarray:
    """Contextual vectors, one row per ``text[start:end]`` span: one pass over ``prompt + text``
    (truncated to the model's max_seq_length), each span's final token states (tokens whose
    offsets overlap the span, shifted by ``len(prompt)``) mean-pooled and normalised. A span with
    no token inside the window gets its isolated vector (``prompt + text[start:end]``) instead;
    one partly inside pools the tokens that are."""
    import torch

    tok = model.tokenizer(prompt + text, return_offsets_mapping=True, truncation=True,
                          max_length=int(model.max_seq_length), return_tensors="pt")
    offsets = tok.pop("offset_mapping")[0].tolist()
    with torch.inference_mode():
        states = model[0]({k: v.to(model.device) for k, v in tok.items()})["token_embeddings"][0].float().cpu().numpy()
    out = np.zeros((len(spans), states.shape[1]), dtype=np.float32)
    shift = len(prompt)
    beyond = []
    for row, (start, end) in enumerate(spans):
        idx = [i for i, (a, b) in enumerate(offsets) if b > a and a < end + shift and b > start + shift]
        if not idx:  # wholly past the truncated window: the isolated vector instead
            beyond.append(row)
            continue
        vec = states[idx].mean(axis=0)
        out[row] = vec / max(float(np.linalg.norm(vec)), 1e-12)
    if beyond:
        out[beyond] = model.encode([prompt + text[spans[r][0]:spans[r][1]] for r in beyond], prompt="",
                                   normalize_embeddings=True, convert_to_numpy=True)
    return out


def blend(isolated: np.ndarray, contextual: np.ndarray, weight: float) -> np.ndarray:
    mixed = weight * isolated + (1.0 - weight) * contextual
    return (mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def load(de_path: Path, en_path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Paragraphs: {article, context, questions: [(id, de, en, [answers])]}."""
    de = json.loads(de_path.read_text(encoding="utf-8"))["data"]
    en = json.loads(en_path.read_text(encoding="utf-8"))["data"]
    en_q = {qa["id"]: qa["question"] for art in en for para in art["paragraphs"] for qa in para["qas"]}
    paragraphs = []
    for a, art in enumerate(de):
        for para in art["paragraphs"]:
            qs = [(qa["id"], qa["question"], en_q[qa["id"]], [x["text"] for x in qa["answers"]]) for qa in para["qas"]]
            paragraphs.append({"article": a, "context": para["context"], "questions": qs})
    return paragraphs[:limit] if limit else paragraphs


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    embedder = embedder_for(Settings(precision="fp32", device="cpu"))
    assert isinstance(embedder, SentenceTransformerEmbedder) and embedder.precision == "fp32"
    model = embedder.sentence_transformer
    paragraphs = load(args.de, args.en, args.limit)
    weights = [float(w) for w in args.weights.split(",")]
    hits = {(w, lang, half): 0 for w in weights for lang in ("en", "de") for half in "AB"}
    counts = {half: 0 for half in "AB"}
    answerable = {half: 0 for half in "AB"}
    t_iso: list[float] = []
    t_ctx: list[float] = []
    n_tokens: list[int] = []
    n_sentences: list[int] = []
    for p, para in enumerate(paragraphs):
        text, half = para["context"], "AB"[para["article"] % 2]
        sentences = [s for s in split_sentences(text) if len(s.text) >= MIN_SENTENCE_CHARS]
        spans = [(s.start, s.end) for s in sentences]
        n_sentences.append(len(sentences))
        n_tokens.append(embedder.count_tokens(text))
        t0 = time.perf_counter()
        iso = embedder.embed_passages([s.text for s in sentences])
        t1 = time.perf_counter()
        ctx = contextual_vectors(model, text, spans, prompt=embedder.passage_prompt)
        t2 = time.perf_counter()
        t_iso.append(t1 - t0)
        t_ctx.append(t2 - t1)
        blends = {w: blend(iso, ctx, w) for w in weights}
        questions = para["questions"]
        queries = {"de": embedder.embed_queries([q[1] for q in questions]),
                   "en": embedder.embed_queries([q[2] for q in questions])}
        contains = [[any(_norm(a) in _norm(s.text) for a in q[3]) for s in sentences] for q in questions]
        for qi in range(len(questions)):
            counts[half] += 1
            answerable[half] += any(contains[qi])
            for w, vecs in blends.items():
                for lang, qv in queries.items():
                    hits[(w, lang, half)] += contains[qi][int(np.argmax(vecs @ qv[qi]))]
        if (p + 1) % 20 == 0:
            say(f"{p + 1}/{len(paragraphs)} paragraphs")
    rate = {}
    for w in weights:
        for lang in ("en", "de"):
            row: dict[str, float | None] = {half: round(100 * hits[(w, lang, half)] / counts[half], 2) if counts[half] else None for half in "AB"}
            row["all"] = round(100 * (hits[(w, lang, "A")] + hits[(w, lang, "B")]) / max(sum(counts.values()), 1), 2)
            rate[f"w={w:g}/{lang}"] = row
    return {
        "model": embedder.name, "precision": embedder.precision, "threads": args.threads,
        "paragraphs": len(paragraphs), "questions": counts, "answerable": answerable,
        "sentences_per_paragraph": round(statistics.mean(n_sentences), 2),
        "tokens_per_paragraph": {"mean": round(statistics.mean(n_tokens), 1), "max": max(n_tokens)},
        "ms_per_paragraph": {
            "isolated": {"mean": round(1000 * statistics.mean(t_iso), 1), "median": round(1000 * statistics.median(t_iso), 1)},
            "contextual": {"mean": round(1000 * statistics.mean(t_ctx), 1), "median": round(1000 * statistics.median(t_ctx), 1)},
        },
        "hit_rate_pct": rate,
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"{'w':>5} {'lang':>4} {'A':>7} {'B':>7} {'all':>7}"]
    for key, row in result["hit_rate_pct"].items():
        w, lang = key[2:].split("/")
        cells = " ".join(f"{row[k]:7.2f}" if row[k] is not None else f"{'-':>7}" for k in ("A", "B", "all"))
        lines.append(f"{w:>5} {lang:>4} {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--de", type=Path, default=EVAL / "xquad.de.json")
    parser.add_argument("--en", type=Path, default=EVAL / "xquad.en.json")
    parser.add_argument("--weights", default=",".join(f"{w:g}" for w in WEIGHTS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--limit", type=int, default=None, help="first N paragraphs only")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    for path in (args.de, args.en):
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return 1
    result = run(args)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    print(table(result))
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
