"""``qabot check`` and ``qabot stats`` for an index in PostgreSQL.

The same promises as a folder's check: the settings row, the schema's migrations, pgvector, the
per-article chunk and sentence counts, sentences inside their chunks, the vector and full-text
indexes present and valid, and the full text in step with the chunk text (on a sample).
"""

from __future__ import annotations

from typing import Any

from qabot.errors import StoreError
from qabot.locations import PgUrl
from qabot.store.postgres import schema
from qabot.store.postgres.connection import Pool, connect, installed_extension
from qabot.store.postgres.store import PgStore, read_pg_manifest

# Every index the schema makes; a missing or invalid one (a failed CREATE INDEX CONCURRENTLY) is a problem.
INDEXES = ("chunks_embedding", "sentences_embedding", "chunks_fts_simple", "articles_date")
FTS_SAMPLE = 1000  # chunks whose stored full text is recomputed and compared


def _problem_counts(url: PgUrl, timeout: float) -> tuple[list[str], list[str]]:
    problems, notes = [], []
    with connect(url, timeout=timeout, vectors=False) as conn:
        notes.append(f"pgvector {installed_extension(conn, url)}")
        if pending := schema.pending(conn):
            problems.append(f"migrations not applied: {', '.join(pending)} (the next `qabot index` applies them)")
            return problems, notes
        valid = dict(conn.execute("select c.relname, i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid "
                                  "where c.relname = any(%s)", [list(INDEXES)]).fetchall())
        for name in INDEXES:
            if name not in valid:
                problems.append(f"index {name} is missing")
            elif not valid[name]:
                problems.append(f"index {name} is invalid (rebuild it: REINDEX INDEX {name})")
        checks = [
            ("select count(*) from articles a where a.n_chunks != (select count(*) from chunks c where c.article_id = a.id)",
             "{} articles have missing or extra chunks"),
            ("select count(*) from articles a where a.n_sentences != (select count(*) from sentences s where s.article_id = a.id)",
             "{} articles have missing or extra sentence vectors"),
            ("select count(*) from sentences s where not exists (select 1 from chunks c where c.article_id = s.article_id "
             'and s.start >= c.start and s."end" <= c."end")', "{} stored sentence vectors belong to no chunk"),
            (f"select count(*) from (select fts_simple, text from chunks order by random() limit {FTS_SAMPLE}) c "
             "where c.fts_simple is distinct from to_tsvector('simple', c.text)",
             "{} of a sample of chunks have full text out of step with their text"),
        ]
        for sql, message in checks:
            row = conn.execute(sql).fetchone()
            if row and row[0]:
                problems.append(message.format(row[0]))
        conn.rollback()
    return problems, notes


def check_pg(url: PgUrl, *, timeout: float) -> tuple[list[str], list[str], dict[str, int]]:
    """(problems, notes, counts) of the index at ``url``."""
    try:
        manifest = read_pg_manifest(url, timeout=timeout)
    except StoreError as exc:
        return [str(exc)], [], {}
    problems, notes = _problem_counts(url, timeout)
    with PgStore(url, Pool(url, size=1, timeout=timeout), manifest) as store:
        counts = store.counts()
    if counts["vectors"] != counts["chunks"]:
        problems.append(f"{counts['chunks'] - counts['vectors']} chunks without a vector")
    return problems, notes, counts


def pg_stats(url: PgUrl, *, timeout: float) -> dict[str, Any]:
    """Articles, chunks, vectors, dates, sources, size in the database, model."""
    manifest = read_pg_manifest(url, timeout=timeout)
    with PgStore(url, Pool(url, size=1, timeout=timeout), manifest) as store:
        first, last = store.date_range()
        result: dict[str, Any] = {
            "index": url.safe, **store.counts(), "first_date": first, "last_date": last, "sources": store.sources(),
            "model": manifest.model, "dimension": manifest.dimension, "chunk_tokens": manifest.chunk_tokens,
            "chunk_overlap": manifest.chunk_overlap,
        }
        with store.pool.connection() as conn:
            version = conn.execute("select extversion from pg_extension where extname = 'vector'").fetchone()
            sizes = conn.execute("select pg_total_relation_size('articles') + pg_total_relation_size('chunks') "
                                 "+ pg_total_relation_size('sentences'), pg_database_size(current_database())").fetchone()
            updated = conn.execute("select updated_at from qabot_meta").fetchone()
    result.update({
        "vector_index": f"hnsw (pgvector {version[0] if version else '?'}, halfvec)", "updated_at": updated[0] if updated else "",
        "bytes_on_disk": int(sizes[0]) if sizes else 0, "bytes_database": int(sizes[1]) if sizes else 0,
    })
    return result


__all__ = ["check_pg", "pg_stats"]
