#!/usr/bin/env python
"""Build an index of any size with synthetic vectors: memory and speed at sizes this machine cannot embed.

    .venv/bin/python -m scripts.bench.build_synthetic ../shared/corpora/fang-covid-dev.jsonl \\
        --chunks 1000000 --index /tmp/ix-1m
    .venv/bin/python -m scripts.bench.bench_ask --index /tmp/ix-1m --squad ../shared/eval/xquad-dev/xquad.en.json --limit 200

The real articles of ARCHIVE are repeated under new ids (``ID~r2`` ...) until the index holds
about ``--chunks`` chunks, and ``build_index`` indexes them exactly as it does real ones
(chunking with the real tokenizers, SQLite, the full-text index, one row and vector per
sentence, FAISS, and the IVF index once past 100k chunks). Only the encoder is replaced:
:class:`SyntheticEmbedder` has the real model's name and dimension and counts tokens with the
real tokenizer (so chunks are cut as for real), but draws each vector instead of computing it:
a shared mean direction (e5's vectors are strongly anisotropic) + one of ``n/400`` random topics
(picked by a hash of the text) + noise, normalised. The index opens with the real model
(``bench_ask.py``, ``qabot ask``), so a reader holds what it would at that size; its answers
are meaningless, its memory and latency are not. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import numpy as np

from qabot import Settings
from qabot.indexer import build_index, chunks_for
from qabot.ingest.archive import iter_articles
from qabot.models.embedding import embedder_for

SAMPLE = 200  # articles chunked to estimate chunks per article
TOPIC_SIZE = 400  # chunks per synthetic topic


class SyntheticEmbedder:
    """The real model's name, dimension and token counting; drawn vectors (see the module doc)."""

    def __init__(self, real, *, chunks: int, seed: int = 0) -> None:
        self.name, self.dimension, self.max_seq_length = real.name, real.dimension, real.max_seq_length
        self.count_tokens = real.count_tokens
        rng = np.random.default_rng(seed)
        self._mean = _unit(rng.standard_normal(self.dimension)) * 2.0
        self._topics = _unit(rng.standard_normal((max(1, chunks // TOPIC_SIZE), self.dimension)))
        self._rng = rng

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_passages(texts)

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        topics = np.array([zlib.crc32(t.encode("utf-8")) % len(self._topics) for t in texts], dtype=np.int64)
        noise = self._rng.standard_normal((len(texts), self.dimension)).astype(np.float32) * 0.05
        return _unit(self._mean + self._topics[topics] + noise).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_archive(source: Path, target: Path, *, articles: int) -> int:
    """``articles`` articles into ``target`` (JSON lines): those of ``source`` again and again, new ids."""
    originals = [a for a in iter_articles(source) if a.text.strip()]
    if not originals:
        raise SystemExit(f"{source}: no article with text")
    with target.open("w", encoding="utf-8") as out:
        for n in range(articles):
            a = originals[n % len(originals)]
            copy = n // len(originals)
            out.write(json.dumps({"id": a.id if copy == 0 else f"{a.id}~r{copy}", "title": a.title, "date": a.date,
                                  "url": a.url, "source": a.source, "text": a.text}, ensure_ascii=False) + "\n")
    return len(originals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("archive", type=Path, help="real articles to repeat (a qabot archive file or folder)")
    parser.add_argument("--chunks", type=int, default=1_000_000, help="about how many chunks (default 1,000,000)")
    parser.add_argument("--index", type=Path, required=True, help="index folder to build (must not exist)")
    args = parser.parse_args(argv)
    if args.index.exists():
        parser.error(f"{args.index} exists: give a new folder")
    settings = Settings.load()
    real = embedder_for(settings)
    sample = list(islice((a for a in iter_articles(args.archive) if a.text.strip()), SAMPLE))
    per_article = sum(len(chunks_for(a, real, chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap))
                      for a in sample) / max(1, len(sample))
    articles = max(1, round(args.chunks / max(per_article, 1e-9)))
    embedder = SyntheticEmbedder(real, chunks=args.chunks)
    with tempfile.TemporaryDirectory(prefix="qabot-synthetic-") as tmp:
        archive = Path(tmp) / "archive.jsonl"
        distinct = write_archive(args.archive, archive, articles=articles)
        started = time.perf_counter()
        report = build_index(archive, args.index, embedder=embedder, chunk_tokens=settings.chunk_tokens,
                             chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size,
                             checkpoint_seconds=3600.0)
        seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in args.index.rglob("*") if p.is_file())
    print(json.dumps({
        "index": str(args.index), "articles": articles, "distinct_texts": distinct,
        "chunks_per_article_estimate": round(per_article, 2), "report": report.to_dict(),
        "build_seconds": round(seconds, 1), "disk_mb": round(size / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
