"""Long articles stored in parts, so that an indexing run's checkpoints can fall inside one.

An article with more chunks than one batch holds is stored part by part, one transaction
each (:func:`qabot.indexer.steps.batches` with ``split``). Until its last part is stored, its
``content_hash`` is ``PARTIAL`` + the real hash, and ``n_chunks`` counts the chunks stored so
far (so "every article has all its chunks" holds after every commit). A run that is killed
inside such an article resumes it at its first chunk without a vector
(:func:`truncate` drops the chunks a lost FAISS checkpoint left without one); an article still
partial when a generation is published (it left the archive meanwhile) is removed first, so
readers never see half an article. Everything here runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import sqlite_utils

from qabot.documents import Article, Chunk

PARTIAL = "partial:"


def mark(article: Article) -> Article:
    """``article`` as one of its earlier parts: stored with its hash marked partial."""
    return replace(article, partial=True)


def stored_hash(article: Article) -> str:
    """The ``content_hash`` column for ``article`` (or for one of its earlier parts)."""
    return PARTIAL + article.content_hash if article.partial else article.content_hash


def stored_chunks(db: sqlite_utils.Database) -> dict[str, int]:
    """Partial article id -> how many of its chunks are stored (chunks 0 .. n-1)."""
    sql = "select id, n_chunks from articles where content_hash like ? escape '\\'"
    return {r[0]: r[1] for r in db.execute(sql, [PARTIAL.replace("_", "\\_") + "%"])}


def append(db: sqlite_utils.Database, article: Article, n_chunks: int) -> None:
    """Record ``n_chunks`` more chunks of an article already (partly) stored, and its hash now."""
    db.execute("update articles set content_hash = ?, n_chunks = n_chunks + ? where id = ?", [stored_hash(article), n_chunks, article.id])


def truncate(db: sqlite_utils.Database, article_id: str, keep: int) -> list[int]:
    """Keep the first ``keep`` chunks of a partial article (and the sentences inside them); the
    ids of the chunks removed (their vectors, where saved, are the caller's to remove)."""
    removed = [r[0] for r in db.execute("select id from chunks where article_id = ? and idx >= ?", [article_id, keep])]
    db.execute("delete from chunks where article_id = ? and idx >= ?", [article_id, keep])
    db.execute(
        'delete from sentences where article_id = ? and not exists (select 1 from chunks c where c.article_id = sentences.article_id '
        'and sentences.start >= c.start and sentences."end" <= c."end")', [article_id],
    )
    count = db.execute("select count(*) from sentences where article_id = ?", [article_id]).fetchone()[0]
    db.execute("update articles set n_chunks = ?, n_sentences = ? where id = ?", [keep, count, article_id])
    return removed


def first_chunk_index(chunks: Sequence[Chunk]) -> int:
    """The chunk index a part starts at (0: the article's first part, which replaces any older copy)."""
    return chunks[0].index if chunks else 0


__all__ = ["PARTIAL", "append", "first_chunk_index", "mark", "stored_chunks", "stored_hash", "truncate"]
