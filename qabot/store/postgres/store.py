"""A qabot index in PostgreSQL + pgvector: the same reads and writes as the folder's Store.

Every write is one transaction: readers see a whole batch of articles or none of it, and a
process killed at any point leaves the database as the last commit left it (a re-run redoes the
rest; the content-hash skip makes it idempotent). Writers take a transaction-scoped advisory
lock per article, in sorted order, so indexers running at once never deadlock or store an
article twice; one that finds the article already stored with the same hash leaves it alone.
The reads (searches included) are in :mod:`qabot.store.postgres.queries`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Self

import numpy as np
import psycopg
from pgvector import HalfVector

from qabot.documents import Article, Chunk, Sentence
from qabot.errors import IndexMismatchError, StoreError
from qabot.locations import PgUrl
from qabot.store.backends import POOL_SIZE, TIMEOUT
from qabot.store.manifest import FORMAT_VERSION, Manifest, now_iso, same_model
from qabot.store.postgres import schema
from qabot.store.postgres.connection import Pool, connect, ensure_extension, installed_extension, refuse_read_only
from qabot.store.postgres.queries import PgQueries

log = logging.getLogger(__name__)

_META = "model, dimension, chunk_tokens, chunk_overlap, format_version, created_at, updated_at"
# The HNSW indexes (as the schema makes them, migration 0002): dropped while a bulk copy loads, built again
# after it (pgvector builds an index over loaded rows far faster than it inserts row by row), and made again
# by the next writer if a killed copy left them missing.
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 200  # the graphs' build parameters (migration 0002; scripts/bench/hnsw_recall.py)
_HNSW = f"using hnsw (embedding halfvec_ip_ops) with (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
VECTOR_INDEXES = {
    "chunks_embedding": f"create index if not exists chunks_embedding on chunks {_HNSW}",
    "sentences_embedding": f"create index if not exists sentences_embedding on sentences {_HNSW}",
}
BUILD_MEMORY = "1GB"  # maintenance_work_mem for building them: the graph fits in memory up to a few million rows


class PgStore(PgQueries):
    """An index in one PostgreSQL database. :meth:`create_or_open` for writers, :meth:`open` for readers."""

    def __init__(self, url: PgUrl, pool: Pool, manifest: Manifest) -> None:
        self.url = url
        self.pool = pool
        self.manifest = manifest
        self._fts_errors: set[str] = set()

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, url: PgUrl, *, model: str | None = None, pool_size: int = POOL_SIZE, timeout: float = TIMEOUT) -> PgStore:
        """Open an existing index; StoreError when there is none (or pgvector is missing), IndexMismatchError
        for another model."""
        manifest = read_pg_manifest(url, timeout=timeout)
        if model is not None and not same_model(model, manifest.model):
            raise IndexMismatchError(
                f"the index at {url} was built with model {manifest.model!r}, but {model!r} is configured; "
                f"set QABOT_MODEL={manifest.model} or index into another database"
            )
        return cls(url, Pool(url, size=pool_size, timeout=timeout, statements=timeout), manifest)

    @classmethod
    def create_or_open(
        cls, url: PgUrl, *, model: str, dimension: int, chunk_tokens: int, chunk_overlap: int,
        pool_size: int = POOL_SIZE, timeout: float = TIMEOUT,
    ) -> PgStore:
        """For a writer: create the index (pgvector, the schema, its settings) if the database has none,
        migrate it, and refuse other settings (IndexMismatchError)."""
        with connect(url, timeout=timeout, vectors=False) as conn:
            refuse_read_only(conn, url)
            ensure_extension(conn, url)
            schema.migrate(conn, dimension=dimension)
            now = now_iso()
            with conn.transaction():
                conn.execute(
                    f"insert into qabot_meta ({_META}) values (%s, %s, %s, %s, %s, %s, %s) on conflict (id) do nothing",
                    [model, dimension, chunk_tokens, chunk_overlap, FORMAT_VERSION, now, now],
                )
            manifest = _meta(conn, url)
            _make_vector_indexes(conn)
        if diffs := manifest.settings_differ(model=model, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap):
            raise IndexMismatchError(
                f"the index at {url} was built with {', '.join(diffs)}; index with its settings, "
                "or into another database (a folder index can be rebuilt and copied in with `qabot copy`)"
            )
        if manifest.dimension != dimension:
            raise IndexMismatchError(f"the index at {url} holds {manifest.dimension}-dimensional vectors, not {dimension}")
        return cls(url, Pool(url, size=pool_size, timeout=timeout), manifest)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PgStore({self.url.safe!r})"

    def refuse_read_only(self) -> None:
        """StoreError when the database takes no writes (a read replica): before a writer opened with :meth:`open`."""
        with self.pool.connection() as conn:
            refuse_read_only(conn, self.url)

    def load_vectors(self, *, sentences: bool = False) -> None:
        """Nothing to load (the server holds the vectors); checks the server answers."""
        with self.pool.connection() as conn:
            conn.execute("select 1")

    def refreshed_manifest(self) -> Manifest:
        """The manifest with the counts as they are now."""
        with self.pool.connection() as conn:
            manifest = _meta(conn, self.url)
        counts = self.counts()
        return replace(manifest, articles=counts["articles"], chunks=counts["chunks"], vectors=counts["vectors"],
                       sentences=counts["sentences"])

    # -- writing ------------------------------------------------------------------------------

    def drop_vector_indexes(self) -> None:
        """Before a bulk load into an empty index: searches scan exactly (slower) until :meth:`make_vector_indexes`."""
        with self.pool.connection() as conn, conn.transaction():
            for name in VECTOR_INDEXES:
                conn.execute(f"drop index if exists {name}")

    def analyze(self) -> None:
        """Refresh the planner's statistics (and the keyword leg's word shares) after a large write."""
        with self.pool.connection() as conn:
            conn.execute("analyze articles, chunks, sentences")

    def make_vector_indexes(self) -> None:
        """Build the HNSW indexes that are missing (over the rows already loaded)."""
        with self.pool.connection() as conn:
            _make_vector_indexes(conn)

    def add(
        self, items: Sequence[tuple[Article, Sequence[Chunk]]], vectors: np.ndarray,
        sentence_spans: Sequence[Sequence[Sentence]] | None = None, sentence_vectors: np.ndarray | None = None,
    ) -> list[str]:
        """Insert (or replace) articles with their chunks and sentences in ONE transaction; the ids stored.

        Same arguments as the folder store's ``add`` (sentences are required here). An article that
        another writer stored meanwhile with the same content hash is left as it is.
        """
        dimension = self.manifest.dimension
        n_chunks = sum(len(chunks) for _, chunks in items)
        if vectors.shape != (n_chunks, dimension):
            raise ValueError(f"expected vectors of shape {(n_chunks, dimension)}, got {vectors.shape}")
        spans = list(sentence_spans) if sentence_spans is not None else None
        n_sentences = sum(len(s) for s in spans) if spans is not None else 0
        if spans is None or len(spans) != len(items) or sentence_vectors is None or sentence_vectors.shape != (n_sentences, dimension):
            raise ValueError(f"expected one sentence list per article and {n_sentences} sentence vectors")
        chunk_at = np.cumsum([0, *(len(chunks) for _, chunks in items)])
        sentence_at = np.cumsum([0, *(len(s) for s in spans)])
        ids = [article.id for article, _ in items]
        now = now_iso()
        with self.pool.connection() as conn, conn.transaction():
            for article_id in sorted(set(ids)):  # sorted: two writers never wait on each other in a cycle
                conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", [article_id])
            stored = dict(conn.execute("select id, content_hash from articles where id = any(%s)", [ids]).fetchall())
            keep = [i for i, (article, _) in enumerate(items) if stored.get(article.id) != article.content_hash]
            if not keep:
                return []
            conn.execute("delete from articles where id = any(%s)", [[items[i][0].id for i in keep]])
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into articles (id, title, date, url, source, path, line, content_hash, text, n_chunks, n_sentences, indexed_at) "
                    "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [_article_row(items[i][0], len(items[i][1]), len(spans[i]), now) for i in keep],
                )
                with cur.copy('copy chunks (article_id, idx, text, start, "end", n_tokens, embedding) from stdin (format binary)') as copy:
                    copy.set_types(["text", "int4", "text", "int4", "int4", "int4", "halfvec"])
                    for i in keep:
                        for chunk, vector in zip(items[i][1], vectors[chunk_at[i] : chunk_at[i + 1]]):
                            copy.write_row([chunk.article_id, chunk.index, chunk.text, chunk.start, chunk.end, chunk.n_tokens, HalfVector(vector)])
                with cur.copy('copy sentences (article_id, start, "end", embedding) from stdin (format binary)') as copy:
                    copy.set_types(["text", "int4", "int4", "halfvec"])
                    for i in keep:
                        for sentence, vector in zip(spans[i], sentence_vectors[sentence_at[i] : sentence_at[i + 1]]):
                            copy.write_row([items[i][0].id, sentence.start, sentence.end, HalfVector(vector)])
            conn.execute("update qabot_meta set updated_at = %s", [now])
        return [items[i][0].id for i in keep]

    def delete_articles(self, article_ids: Iterable[str]) -> int:
        """Remove articles with their chunks and sentences (one transaction per 500); the chunks removed."""
        ids = list(dict.fromkeys(article_ids))
        removed = 0
        for lo in range(0, len(ids), 500):
            part = ids[lo : lo + 500]
            with self.pool.connection() as conn, conn.transaction():
                for article_id in sorted(part):
                    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", [article_id])
                row = conn.execute("select count(*) from chunks where article_id = any(%s)", [part]).fetchone()
                conn.execute("delete from articles where id = any(%s)", [part])
                conn.execute("update qabot_meta set updated_at = %s", [now_iso()])
            removed += int(row[0]) if row else 0
        return removed


def read_pg_manifest(url: PgUrl, *, timeout: float = TIMEOUT) -> Manifest:
    """The index's settings (counts left 0); StoreError when the database holds no qabot index."""
    with connect(url, timeout=timeout, vectors=False) as conn:
        if not schema.applied(conn):
            raise StoreError(f"no qabot index in the database at {url}; create one with `qabot index ARCHIVE --index URL`")
        installed_extension(conn, url)
        if pending := schema.pending(conn):
            raise StoreError(f"the index at {url} needs migrations {', '.join(pending)}; run `qabot index ARCHIVE --index URL` to apply them")
        return _meta(conn, url)


def _make_vector_indexes(conn: psycopg.Connection) -> None:
    conn.execute(f"set maintenance_work_mem = '{BUILD_MEMORY}'")
    for sql in VECTOR_INDEXES.values():
        conn.execute(sql)
    conn.commit()


def _meta(conn: psycopg.Connection, url: PgUrl) -> Manifest:
    row = conn.execute(f"select {_META} from qabot_meta").fetchone()
    conn.rollback()
    if row is None:
        raise StoreError(f"the index at {url} has no settings row (qabot_meta); index into it with `qabot index ARCHIVE --index URL`")
    model, dimension, chunk_tokens, chunk_overlap, format_version, created_at, updated_at = row
    return Manifest(model=model, dimension=dimension, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                    format_version=format_version, created_at=created_at, updated_at=updated_at)


def _article_row(article: Article, n_chunks: int, n_sentences: int, now: str) -> list[Any]:
    return [article.id, article.title, article.date, article.url, article.source, article.path, article.line,
            article.content_hash, article.text, n_chunks, n_sentences, now]


__all__ = ["PgStore", "read_pg_manifest"]
