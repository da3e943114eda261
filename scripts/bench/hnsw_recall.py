#!/usr/bin/env python
"""pgvector HNSW recall on real vectors, at a size the dev set cannot reach.

    .venv/bin/python -m tests.pg_server shared_buffers=2GB &      # prints a URL (or any server with pgvector)
    .venv/bin/python -m scripts.bench.hnsw_recall ../shared/corpora/fang-covid-dev.jsonl --sentences 100000 \\
        --store-url URL --squad ../shared/eval/xquad-dev/xquad.en.json ../shared/eval/xquad-dev/xquad.de.json \\
        --cache /tmp/fang-sentences.npy

The archive's sentences (as the indexer cuts them: chunks_for, sentences_for; each distinct text
once) are embedded with the configured model, as many as ``--sentences``, and loaded into a
table of ``halfvec`` with the HNSW index a qabot index uses (inner product, m 32, ef_construction
200; ``--m`` and ``--ef-construction`` try others). For two sets of queries, the questions of ``--squad`` (off the
archive's topics) and sentences of later articles that were not loaded (on its topics, as
questions), the script compares the HNSW top k with the exact top k (a full scan): at k 10 and
at the k an ``ask`` fetches (50 chunks, 150 sentences), each at pgvector's default breadth 40
and at qabot's (:func:`~qabot.store.postgres.queries.ef_search`). Embedding is the slow part
(about 60 sentences a second on 2 cores): ``--cache`` keeps the vectors for the next run.
The table is made in the given database and dropped at the end. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from qabot import Settings
from qabot.indexer import chunks_for, sentences_for
from qabot.ingest.archive import iter_articles
from qabot.models.embedding import embedder_for
from qabot.store.postgres.queries import ef_search
from qabot.store.postgres.store import HNSW_EF_CONSTRUCTION, HNSW_M
from scripts.bench.bench_ask import read_questions

TABLE = "qabot_hnsw_recall"


def archive_sentences(archive: Path, embedder, n: int, held_out: int) -> list[str]:
    """The first ``n`` + ``held_out`` distinct sentence texts of ``archive``, in order."""
    seen: dict[str, None] = {}
    for article in iter_articles(archive):
        chunks = chunks_for(article, embedder, chunk_tokens=200, chunk_overlap=1)
        for sentence in sentences_for(chunks):
            text = " ".join(article.text[sentence.start : sentence.end].split())
            if len(text) > 20:
                seen.setdefault(text, None)
        if len(seen) >= n + held_out:
            break
    texts = list(seen)[: n + held_out]
    if len(texts) < n + held_out:
        raise SystemExit(f"{archive} holds only {len(texts)} distinct sentences; ask for fewer")
    return texts


def embedded(texts: list[str], embedder, cache: Path | None) -> np.ndarray:
    """``embed_passages(texts)``, from ``cache`` when it holds exactly these texts' vectors."""
    key = hashlib.sha256("\n".join([embedder.name, *texts]).encode()).hexdigest()[:16]
    path = cache.with_name(f"{cache.stem}-{key}{cache.suffix}") if cache else None
    if path is not None and path.exists():
        return np.load(path)
    started = time.perf_counter()
    vectors = embedder.embed_passages(texts, batch_size=64, show_progress=True)
    print(f"embedded {len(texts)} sentences in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if path is not None:
        np.save(path, vectors)
    return vectors


def load(conn: psycopg.Connection, vectors: np.ndarray, *, m: int, ef_construction: int) -> dict[str, float]:
    """The table and its HNSW index, built with ``m`` and ``ef_construction``; seconds taken."""
    conn.execute(f"drop table if exists {TABLE}")
    conn.execute(f"create table {TABLE} (id integer primary key, embedding halfvec({vectors.shape[1]}) not null)")
    started = time.perf_counter()
    with conn.cursor().copy(f"copy {TABLE} (id, embedding) from stdin with (format binary)") as copy:
        copy.set_types(["int4", "halfvec"])
        for i, vector in enumerate(vectors):
            copy.write_row([i, HalfVector(vector)])
    loaded = time.perf_counter()
    conn.execute("set maintenance_work_mem = '1GB'")
    conn.execute(f"create index on {TABLE} using hnsw (embedding halfvec_ip_ops) with (m = {int(m)}, ef_construction = {int(ef_construction)})")
    conn.execute(f"analyze {TABLE}")
    conn.commit()
    return {"load_s": round(loaded - started, 1), "index_build_s": round(time.perf_counter() - loaded, 1), "m": m,
            "ef_construction": ef_construction}


def nearest(conn: psycopg.Connection, query: np.ndarray, k: int, ef: int | None) -> tuple[list[int], float]:
    """The ``k`` nearest ids: through the index at breadth ``ef``, or exactly (None); and the seconds taken."""
    with conn.transaction():
        if ef is None:
            conn.execute("set local enable_indexscan = off")
        else:
            conn.execute("select set_config('hnsw.ef_search', %s, true)", [str(ef)])
        started = time.perf_counter()
        rows = conn.execute(f"select id from {TABLE} order by embedding <#> %s limit %s", [HalfVector(query), k]).fetchall()
        return [r[0] for r in rows], time.perf_counter() - started


def recall(conn: psycopg.Connection, queries: np.ndarray, exact: list[list[int]], k: int, ef: int) -> dict[str, float]:
    """Mean recall@k through the index at breadth ``ef`` (``exact``: each query's true nearest, at least k)."""
    found, seconds = [], []
    for query, truth in zip(queries, exact, strict=True):
        approx, took = nearest(conn, query, k, ef)
        found.append(len(set(truth[:k]) & set(approx)) / k)
        seconds.append(took)
    return {"k": k, "ef_search": ef, "recall_mean": round(statistics.fmean(found), 4), "recall_min": round(min(found), 2),
            "below_0.9": round(sum(f < 0.9 for f in found) / len(found), 3),
            "search_ms_p50": round(1000 * statistics.median(seconds), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("archive", type=Path, help="a qabot archive (file or folder) whose sentences are loaded")
    parser.add_argument("--sentences", type=int, default=100_000, help="how many (default 100,000)")
    parser.add_argument("--store-url", required=True, help="a PostgreSQL database with pgvector (a scratch table is made there)")
    parser.add_argument("--held-out", type=int, default=300, help="sentences after those, asked as questions (default 300)")
    parser.add_argument("--squad", type=Path, nargs="*", default=[], help="SQuAD-format files whose questions are asked too")
    parser.add_argument("--cache", type=Path, help="keep the sentence vectors in this .npy file (a hash of the texts is added to its name)")
    parser.add_argument("--k", type=int, nargs="+", default=[10, 50, 150], help="hits wanted (default: 10, and what an ask fetches: 50 150)")
    parser.add_argument("--ef", type=int, nargs="*", help="search breadths to try (default: pgvector's 40 and qabot's for each k)")
    parser.add_argument("--m", type=int, default=HNSW_M, help=f"HNSW build parameter (default: qabot's, {HNSW_M}; pgvector's is 16)")
    parser.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION,
                        help=f"HNSW build parameter (default: qabot's, {HNSW_EF_CONSTRUCTION}; pgvector's is 64)")
    args = parser.parse_args(argv)

    embedder = embedder_for(Settings.load())
    texts = archive_sentences(args.archive, embedder, args.sentences, args.held_out)
    vectors = embedded(texts, embedder, args.cache)
    loaded = vectors[: args.sentences]
    questions = [q for path in args.squad for q in read_questions(None, path)]
    query_sets = {"archive_sentences_as_questions": embedder.embed_queries(texts[args.sentences :])}
    if questions:
        query_sets["squad_questions"] = embedder.embed_queries(questions)
    with psycopg.connect(args.store_url, autocommit=False) as conn:
        conn.execute("create extension if not exists vector")
        conn.commit()
        register_vector(conn)
        result: dict[str, object] = {"sentences": len(loaded), "dimension": int(loaded.shape[1]), "model": embedder.name}
        result |= load(conn, loaded, m=args.m, ef_construction=args.ef_construction)
        for name, queries in query_sets.items():
            exact = [nearest(conn, query, max(args.k), None)[0] for query in queries]
            result[name] = {"queries": len(queries), "at": [
                recall(conn, queries, exact, k, ef) for k in args.k for ef in (args.ef or dict.fromkeys((40, ef_search(k))))]}
        conn.execute(f"drop table {TABLE}")
        conn.commit()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
