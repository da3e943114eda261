#!/usr/bin/env python
"""What verifying an index costs when it is opened: checksums, quick_check, vector norms.

    .venv/bin/python -m scripts.bench.build_synthetic ../shared/corpora/fang-covid-dev.jsonl --chunks 200000 --index /tmp/ix-200k
    .venv/bin/python -m scripts.bench.bench_open --index /tmp/ix-200k

Times, on the index at ``--index`` and on a copy of it without checksums (an index from before
they were recorded), each in a fresh process (the page cache warm, as a reader that opens a
just-published generation finds it):

- ``open_unverified``: ``Store.open(check=False)`` (manifest, SQLite);
- ``open_verified``: ``Store.open()`` (SHA-256 of qabot.db and vectors.faiss, FAISS ids);
- ``open_legacy``: ``Store.open()`` without checksums (quick_check up to 256 MiB);
- ``load_vectors`` / ``load_vectors_legacy``: reading the vectors (legacy: + every norm);
- ``check`` / ``check_legacy``: ``qabot check``;
- the SHA-256 rate (MB/s) on this machine. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qabot.store.integrity import checksums
from qabot.store.manifest import DB_NAME, FAISS_NAME, MANIFEST_NAME


def _timed(code: str, folder: Path) -> float:
    """Seconds ``code`` takes in a fresh process (imports excluded)."""
    script = (
        "import sys, time; from pathlib import Path\n"
        "from qabot.store import Store; from qabot.store.backends import check_index\n"
        f"folder = Path({str(folder)!r}); t = time.perf_counter()\n{code}\n"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="a folder index with checksums (built by this qabot)")
    args = parser.parse_args()
    manifest = json.loads((args.index / MANIFEST_NAME).read_text())
    if not manifest.get("checksums"):
        parser.error(f"{args.index}: no checksums in its manifest; build it with this qabot (scripts/bench/build_synthetic.py)")
    data = args.index / manifest["generation"]
    sizes = {name: (data / name).stat().st_size for name in (DB_NAME, FAISS_NAME)}
    started = time.perf_counter()
    checksums(data)
    sha_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        legacy = Path(tmp) / "legacy"
        shutil.copytree(args.index, legacy, ignore=shutil.ignore_patterns(".lock", "*-wal", "*-shm"))
        del manifest["checksums"]
        (legacy / MANIFEST_NAME).write_text(json.dumps(manifest))
        result = {
            "index": str(args.index), "chunks": manifest["chunks"], "mb": {k: round(v / 1e6, 1) for k, v in sizes.items()},
            "sha256_mb_per_s": round(sum(sizes.values()) / 1e6 / sha_s),
            "open_unverified_s": _timed("Store.open(folder, check=False).close()", args.index),
            "open_verified_s": _timed("Store.open(folder).close()", args.index),
            "open_legacy_s": _timed("Store.open(folder).close()", legacy),
            "load_vectors_s": _timed("s = Store.open(folder); s.load_vectors(); s.close()", args.index),
            "load_vectors_legacy_s": _timed("s = Store.open(folder); s.load_vectors(); s.close()", legacy),
            "check_s": _timed("check_index(folder)", args.index),
            "check_legacy_s": _timed("check_index(folder)", legacy),
        }
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
