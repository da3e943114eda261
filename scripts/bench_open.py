#!/usr/bin/env python
"""What verifying an index costs when it is opened: checksums, quick_check, vector norms.

    .venv/bin/python scripts/bench_open.py [--chunks 100000] [--folder /tmp/bench-open]

Builds (once, reused from ``--folder``) a synthetic published index of ``--chunks`` chunks of
~600 characters, one sentence vector each, random unit vectors (dimension 384, as
multilingual-e5-small), then times, each in a fresh process so the page cache is the only
thing shared (warm, as a reader that opens a just-published generation finds it):

- ``open_unverified``: ``Store.open(check=False)`` (manifest, SQLite);
- ``open_verified``: ``Store.open()`` (SHA-256 of qabot.db and vectors.faiss, ids);
- ``open_legacy``: ``Store.open()`` on the same index with its checksums removed (quick_check);
- ``load_vectors`` / ``load_vectors_legacy``: reading the vectors (legacy: + every norm);
- ``check``: ``qabot check`` (checksums, FTS, ids, counts);
- the SHA-256 rate (MB/s) on this machine.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from qabot.documents import Article, Chunk, Sentence
from qabot.store import generations
from qabot.store.manifest import DB_NAME, FAISS_NAME, MANIFEST_NAME

DIMENSION = 384
PER_ARTICLE = 8
WORDS = ["Regierung", "Gipfel", "Treffen", "Präsident", "Kanzler", "Wahl", "Bericht", "Stadt", "Land", "Wirtschaft", "Klima", "Energie", "Preis", "Schule"]


def build(folder: Path, chunks: int) -> None:
    """A published index of ``chunks`` synthetic chunks (skipped when ``folder`` holds one)."""
    if (folder / MANIFEST_NAME).exists():
        return
    rng = np.random.default_rng(7)
    wanted = generations.Wanted("bench", DIMENSION, 200, 1)
    with generations.writer_lock(folder):
        store = generations.begin(folder, wanted, rebuild=True)
        for start in range(0, chunks, 4_000):
            items, spans = [], []
            for a in range(start // PER_ARTICLE, min(start + 4_000, chunks) // PER_ARTICLE):
                text = " ".join(str(rng.choice(WORDS)) for _ in range(90 * PER_ARTICLE))
                step = len(text) // PER_ARTICLE
                article = Article(id=f"a{a}", text=text, title=f"Artikel {a}", date="2025-08-15", path="bench")
                items.append((article, [Chunk(article.id, i, text[i * step : (i + 1) * step], i * step, (i + 1) * step, 120)
                                        for i in range(PER_ARTICLE)]))
                spans.append([Sentence(i * step, (i + 1) * step, text[i * step : (i + 1) * step]) for i in range(PER_ARTICLE)])
            n = len(items) * PER_ARTICLE
            vectors = rng.standard_normal((2 * n, DIMENSION)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.add(items, vectors[:n], spans, vectors[n:])
        generations.publish(store)


def _timed(code: str, folder: Path) -> float:
    """Seconds ``code`` takes in a fresh process (imports excluded)."""
    script = (
        "import sys, time; from pathlib import Path\n"
        "from qabot.store import Store; from qabot.store.checks import check_index\n"
        f"folder = Path({str(folder)!r}); t = time.perf_counter()\n{code}\n"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/bench-open"))
    args = parser.parse_args()
    started = time.perf_counter()
    build(args.folder, args.chunks)
    built_s = time.perf_counter() - started
    legacy = args.folder.with_name(args.folder.name + "-legacy")
    if not legacy.exists():
        shutil.copytree(args.folder, legacy)
        manifest = json.loads((legacy / MANIFEST_NAME).read_text())
        manifest.pop("checksums", None)
        (legacy / MANIFEST_NAME).write_text(json.dumps(manifest))
    data = args.folder / json.loads((args.folder / MANIFEST_NAME).read_text())["generation"]
    sizes = {name: (data / name).stat().st_size for name in (DB_NAME, FAISS_NAME)}
    from qabot.store.integrity import checksums

    t = time.perf_counter()
    checksums(data)
    sha_s = time.perf_counter() - t
    result = {
        "chunks": args.chunks, "build_s": round(built_s, 1), "mb": {k: round(v / 1e6, 1) for k, v in sizes.items()},
        "sha256_mb_per_s": round(sum(sizes.values()) / 1e6 / sha_s),
        "open_unverified_s": _timed("Store.open(folder, check=False).close()", args.folder),
        "open_verified_s": _timed("Store.open(folder).close()", args.folder),
        "open_legacy_s": _timed("Store.open(folder).close()", legacy),
        "load_vectors_s": _timed("s = Store.open(folder); s.load_vectors(); s.close()", args.folder),
        "load_vectors_legacy_s": _timed("s = Store.open(folder); s.load_vectors(); s.close()", legacy),
        "check_s": _timed("assert check_index(folder).ok", args.folder),
        "check_legacy_s": _timed("assert check_index(folder).ok", legacy),
    }
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
