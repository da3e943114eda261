#!/usr/bin/env python
"""Benchmark qabot's vector index on synthetic vectors: flat (exact) vs the approximate index.

    .venv/bin/python -m scripts.bench.bench_faiss [--sizes 100000,1000000] [--queries 200]

Prints one JSON object. For each size it reports, for the flat index and for the IVF index
that ``VectorIndex.optimize`` builds: build/train time, add time, single-query search latency
(p50/p95, k=10 and k=50, one query at a time as the retriever asks), recall@10 and @50 against
exact search, index bytes, and memory. ``kinds.*.serve`` comes from a fresh process that
loads the index as the store does (file bytes -> ``VectorIndex.from_bytes``, bytes dropped):
its ``peak_rss_mb`` is ``resource.getrusage`` of that process, ``index_rss_mb`` what the index
adds to the process once loaded; ``read_peak_rss_mb`` is the peak when loading with
``VectorIndex.read(path)`` instead. Each measurement runs in its own process (this file with
``--worker``) so the peaks do not mix. ``picked`` is the kind the default threshold chooses at that size.

Synthetic vectors (``make_corpus``) are fitted to real ones: 5,711 multilingual-e5-small
passage vectors (10kGNAD news + XQuAD paragraphs) and 1,264 XQuAD questions. chunk = a shared
mean direction (e5 vectors are strongly anisotropic) + one of n/400 topics (Zipf-like
popularity) + an article part shared by its 1-8 chunks + chunk noise, each part with a
power-law spectrum, rotated, L2-normalised. A query is question-like: the mean, topic and
article part of an indexed article, fresh noise (1.5x a chunk's) and a fixed shift (e5's
"query: " prompt); near its article's chunks, never equal to one. Real -> synthetic at 5.7k:
|mean| 0.885 -> 0.885, mean pairwise cosine 0.78 -> 0.78, nearest neighbour 0.91 -> 0.91,
query top-1/top-10/mean cosine 0.85/0.80/0.73 -> 0.85/0.80/0.73, IVF64 recall@10 at
nprobe 1/4/16/32 0.44/0.72/0.92/0.98 -> 0.50/0.78/0.95/0.995 (real questions are a little
harder). Cluster-friendly random data would flatter IVF: an earlier, more clustered
generator needed 4x fewer lists probed for the same recall.

``run(sizes, ...) -> dict`` is what ``scripts/bench/benchmark.py`` imports.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qabot.store.vectors import (
    APPROX_THRESHOLD,
    MIN_APPROX,
    SEARCH_THREADS,
    VectorIndex,
    recall_at,
)

DIM = 384
LATENCY_BUDGET_S = 10.0  # per kind and k; at least 20 queries are timed whatever it takes


def make_corpus(
    n: int, d: int = DIM, *, seed: int = 0, nq: int = 200, block: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """n corpus vectors and nq question-like query vectors, float32, L2-normalised.

    chunk = mean direction + topic + article + chunk noise, then a fixed random rotation;
    query = an indexed article's mean + topic + article, 1.5x the chunk noise, and a shift
    shared by all queries (e5's "query: " prompt moves questions off the passages).
    """
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.standard_normal((d, d)))[0].astype(np.float32)
    scale = (np.arange(1, d + 1) ** -0.25).astype(np.float32)  # variance ~ rank^-0.5
    scale /= np.linalg.norm(scale)
    mean, shift = np.eye(2, d, dtype=np.float32)
    n_topics = max(8, n // 400)
    topics = rng.standard_normal((n_topics, d), dtype=np.float32) * scale
    popularity = 1.0 / (np.arange(n_topics) + 10.0)  # Zipf-like: a few topics dominate
    popularity /= popularity.sum()
    w_mean, w_topic, w_article, w_chunk = np.sqrt([0.78, 0.22 * 0.1, 0.22 * 0.45, 0.22 * 0.45]).astype(np.float32)
    asked = set(rng.choice(n, nq, replace=False).tolist())  # the chunks whose articles are asked about
    out = np.empty((n, d), np.float32)
    queries = []
    done = 0
    while done < n:
        m = min(block, n - done)
        sizes = rng.integers(1, 9, size=m)  # chunks per article
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), m) + 1]
        base = w_mean * mean + w_topic * topics[rng.choice(n_topics, size=len(sizes), p=popularity)]
        base += w_article * rng.standard_normal((len(sizes), d), dtype=np.float32) * scale
        owner = np.repeat(np.arange(len(sizes)), sizes)[:m]
        x = (base[owner] + w_chunk * rng.standard_normal((m, d), dtype=np.float32) * scale) @ rotation
        out[done : done + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        for i in sorted(a - done for a in asked if done <= a < done + m):
            noise = 1.5 * w_chunk * rng.standard_normal(d, dtype=np.float32) * scale
            queries.append((base[owner[i]] + noise + 0.2 * shift) @ rotation)
        done += m
    q = np.array(queries, dtype=np.float32)
    return out, q / np.linalg.norm(q, axis=1, keepdims=True)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _build(n: int, workdir: str, nq: int, seed: int) -> dict[str, Any]:
    """In a fresh process: data, exact ground truth, the flat index and the IVF made from it."""
    out: dict[str, Any] = {}
    t = time.perf_counter()
    x, queries = make_corpus(n, seed=seed, nq=nq)
    ids = np.arange(n, dtype=np.int64) * 2 + 1  # rowid-like: sparse, not positions
    out["generate_s"] = round(time.perf_counter() - t, 2)
    index = VectorIndex.empty(DIM, approx_threshold=0)  # 0: optimize() builds the IVF at any size
    t = time.perf_counter()
    index.add(x, ids)
    flat_add = time.perf_counter() - t
    del x
    t = time.perf_counter()
    _, exact = index.search(queries, 50)
    out["ground_truth_s"] = round(time.perf_counter() - t, 2)
    np.save(Path(workdir) / "queries.npy", queries)
    np.save(Path(workdir) / "exact.npy", exact)
    kinds: dict[str, Any] = {}
    for name in ("flat", "ivf"):
        if name == "ivf":
            t = time.perf_counter()
            index.optimize()
            kinds[name] = {"build_s": round(time.perf_counter() - t, 2), **index.last_optimize}
            kinds[name]["add_s"] = kinds[name]["move_s"]  # every vector added, during optimize()
        else:
            kinds[name] = {"build_s": 0.0, "add_s": round(flat_add, 2)}
        path = Path(workdir) / f"{name}.faiss"
        with open(path, "wb") as fh:
            index.write(fh)
        kinds[name].update(describe=index.describe(), nlist=index.nlist, nprobe=index.nprobe, index_bytes=path.stat().st_size)
        kinds[name].update(_churn(index, seed))
    out["kinds"] = kinds
    out["build_peak_rss_mb"] = _peak_rss_mb()
    return out


def _churn(index: VectorIndex, seed: int, m: int = 10_000) -> dict[str, float]:
    """Time adding and then removing m new vectors by id (an incremental indexing run)."""
    rng = np.random.default_rng(seed + 7)
    extra = rng.standard_normal((m, index.d), dtype=np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    new_ids = np.arange(m, dtype=np.int64) * 2 + 10**12
    t = time.perf_counter()
    index.add(extra, new_ids)
    added = time.perf_counter() - t
    t = time.perf_counter()
    removed = index.remove(new_ids)
    assert removed == m, (removed, m)
    return {"add_10k_s": round(added, 3), "remove_10k_s": round(time.perf_counter() - t, 3)}


def _serve(path: str, workdir: str, latency_queries: int, how: str) -> dict[str, Any]:
    """In a fresh process: load as the store does, then time single queries and measure recall."""
    queries = np.load(Path(workdir) / "queries.npy")
    exact = np.load(Path(workdir) / "exact.npy")
    base = _rss_mb()
    t = time.perf_counter()
    if how == "read":
        index = VectorIndex.read(path)
    else:
        data = Path(path).read_bytes()
        index = VectorIndex.from_bytes(data, source=path)
        del data
    out: dict[str, Any] = {"load_s": round(time.perf_counter() - t, 2), "index_rss_mb": round(_rss_mb() - base, 1)}
    if how == "read":
        return {"read_peak_rss_mb": _peak_rss_mb()}
    for q in queries[:10]:  # warm-up
        index.search(q[None, :], 50)
    for k in (10, 50):
        times: list[float] = []
        budget = time.perf_counter() + LATENCY_BUDGET_S  # flat at 1M: ~0.2 s a query
        for q in queries[:latency_queries]:
            t = time.perf_counter()
            index.search(q[None, :], k)
            times.append(time.perf_counter() - t)
            if len(times) >= 20 and t > budget:
                break
        out[f"search_k{k}_queries"] = len(times)
        out[f"search_k{k}_p50_ms"] = round(float(np.percentile(times, 50)) * 1e3, 3)
        out[f"search_k{k}_p95_ms"] = round(float(np.percentile(times, 95)) * 1e3, 3)
    found = index.search(queries, 50)[1]
    out["recall_at_10"] = round(recall_at(found, exact, 10), 4)
    out["recall_at_50"] = round(recall_at(found, exact, 50), 4)
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def run(
    sizes: list[int], *, queries: int = 200, latency_queries: int = 100, seed: int = 0,
    workdir: str | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Benchmark both kinds at each size; returns the JSON-able report."""
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(), "faiss": faiss.__version__, "search_threads": SEARCH_THREADS,
            "load_average_before": round(os.getloadavg()[0], 2),  # the CPU may be shared: read timings with it
        },
        "threshold": max(APPROX_THRESHOLD, MIN_APPROX), "dimension": DIM, "queries": queries, "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-faiss-", dir=workdir) as tmp:
        for n in sizes:
            started = time.perf_counter()
            _say(progress, f"{n}: building (data, ground truth, flat, ivf)")
            report = _in_child("build", n, tmp, queries, seed)
            for name, stats in report["kinds"].items():
                _say(progress, f"{n}: searching {name}")
                path = str(Path(tmp) / f"{name}.faiss")
                for how in ("bytes", "read"):
                    stats.update(_in_child("serve", path, tmp, latency_queries, how))
            report["picked"] = "ivf" if n >= max(APPROX_THRESHOLD, MIN_APPROX) else "flat"
            report["wall_s"] = round(time.perf_counter() - started, 1)
            result["sizes"][str(n)] = report
    result["machine"]["load_average_after"] = round(os.getloadavg()[0], 2)
    return result


WORKERS = {"build": _build, "serve": _serve}


def _in_child(worker: str, *args: Any) -> dict[str, Any]:
    """Run a worker in a fresh interpreter (so its peak RSS is its own); JSON comes back.

    A subprocess of this very file, not multiprocessing: it works however the caller
    imported this module (scripts.bench.benchmark imports it).
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, json.dumps(args)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_faiss {worker} worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated vector counts")
    parser.add_argument("--queries", type=int, default=200, help="queries for recall")
    parser.add_argument("--latency-queries", type=int, default=100, help="single queries timed per k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("worker_args", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](*json.loads(args.worker_args))))
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    report = run(sizes, queries=args.queries, latency_queries=args.latency_queries, seed=args.seed, progress=not args.quiet)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
