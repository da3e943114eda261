"""Sentence vectors stored with the chunk data: one SQLite row per sentence, float16 blobs.

Each sentence of an article (as :func:`qabot.ingest.chunking.chunk_sentences` cuts them; the
indexer cuts and embeds, this module only stores) is
stored once with its span in the article text and its embedding. The rows are written in the
same transaction as the article's chunks and deleted with them, so the two never disagree;
they stay on disk and are read per question for the few chunks being ranked (a chunk's
sentences are those whose span lies inside the chunk's). Functions take the open database
(``sqlite_utils.Database``); :class:`qabot.store.store.Store` wraps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from qabot.documents import Chunk, Sentence

BLOB_DTYPE = np.dtype("<f2")  # float16: half the disk of float32; similarities move by < 1e-3
BATCH = 500  # ids per IN (...) query


@dataclass(frozen=True)
class StoredSentence:
    """A stored sentence inside chunk ``chunk_id``: its span in the article text (the vector comes beside it)."""

    chunk_id: int
    start: int
    end: int


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=BLOB_DTYPE).tobytes()


def from_blobs(blobs: Sequence[bytes], dimension: int) -> np.ndarray:
    """Blobs -> float32 matrix, one row each; ValueError for a blob of the wrong size."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    joined = b"".join(blobs)
    if len(joined) != len(blobs) * dimension * BLOB_DTYPE.itemsize:
        raise ValueError(f"sentence vectors are not {dimension}-dimensional float16")
    return np.frombuffer(joined, dtype=BLOB_DTYPE).reshape(len(blobs), dimension).astype(np.float32)


def insert(db: sqlite_utils.Database, article_id: str, sentences: Sequence[Sentence], vectors: np.ndarray) -> None:
    """Store ``article_id``'s sentences (inside the caller's transaction) and record how many it has."""
    db.conn.executemany(
        'insert or replace into sentences (article_id, start, "end", vector) values (?, ?, ?, ?)',
        [(article_id, s.start, s.end, to_blob(v)) for s, v in zip(sentences, vectors, strict=True)],
    )
    set_stored(db, article_id, db.execute("select count(*) from sentences where article_id = ?", [article_id]).fetchone()[0])


def delete(db: sqlite_utils.Database, article_ids: Sequence[str]) -> None:
    """Delete these articles' sentences (inside the caller's transaction)."""
    marks = ",".join("?" * len(article_ids))
    db.execute(f"delete from sentences where article_id in ({marks})", list(article_ids))


def for_chunks(db: sqlite_utils.Database, chunk_ids: Sequence[int], dimension: int) -> tuple[list[StoredSentence], np.ndarray]:
    """The stored sentences inside these chunks (chunk order as given, then by position) and their vectors."""
    ids = list(dict.fromkeys(int(i) for i in chunk_ids))
    rows = _rows_in(db, 'select c.id, s.start, s."end", s.vector from chunks c join sentences s on s.article_id = c.article_id '
                        'and s.start >= c.start and s."end" <= c."end" where c.id in ({marks})', ids)
    position = {chunk_id: i for i, chunk_id in enumerate(ids)}
    rows.sort(key=lambda r: (position[r[0]], r[1], r[2]))
    return [StoredSentence(r[0], r[1], r[2]) for r in rows], from_blobs([r[3] for r in rows], dimension)


def _rows_in(db: sqlite_utils.Database, sql: str, ids: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (``{marks}`` where its IN list goes) for all ``ids``, ``BATCH`` ids a query."""
    rows: list[tuple[Any, ...]] = []
    for lo in range(0, len(ids), BATCH):
        part = list(ids[lo : lo + BATCH])
        rows.extend(db.execute(sql.format(marks=",".join("?" * len(part))), part).fetchall())
    return rows


def all_vectors(db: sqlite_utils.Database, dimension: int, *, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Every stored sentence's id and vector (float32), read in batches: for the sentence leg's index."""
    ids: list[np.ndarray] = []
    vectors: list[np.ndarray] = []
    last = -1
    while True:
        rows = db.execute("select id, vector from sentences where id > ? order by id limit ?", [last, batch]).fetchall()
        if not rows:
            break
        ids.append(np.array([r[0] for r in rows], dtype=np.int64))
        vectors.append(from_blobs([r[1] for r in rows], dimension))
        last = rows[-1][0]
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dimension), dtype=np.float32)
    return np.concatenate(ids), np.concatenate(vectors)


def chunks_of(db: sqlite_utils.Database, sentence_ids: Sequence[int]) -> dict[int, int]:
    """sentence id -> the first chunk that holds it (a sentence in an overlap is in two)."""
    return dict(_rows_in(db, "select s.id, min(c.id) from sentences s join chunks c on c.article_id = s.article_id "
                             'and s.start >= c.start and s."end" <= c."end" where s.id in ({marks}) group by s.id',
                         [int(i) for i in sentence_ids]))


def articles_without(db: sqlite_utils.Database) -> list[str]:
    """Articles whose sentences were never stored (an index from before sentence vectors)."""
    return [r[0] for r in db.execute("select id from articles where n_sentences is null order by id")]


def set_stored(db: sqlite_utils.Database, article_id: str, count: int) -> None:
    """Record that ``article_id``'s ``count`` sentences are stored (inside the caller's transaction)."""
    db.execute("update articles set n_sentences = ? where id = ?", [count, article_id])


def article_chunks(db: sqlite_utils.Database, article_ids: Sequence[str]) -> dict[str, list[Chunk]]:
    """article id -> its stored chunks, in order."""
    found: dict[str, list[Chunk]] = {a: [] for a in article_ids}
    sql = 'select article_id, idx, text, start, "end", n_tokens from chunks where article_id in ({marks}) order by article_id, idx'
    for row in _rows_in(db, sql, list(article_ids)):
        found[row[0]].append(Chunk(*row))
    return found


def problems(db: sqlite_utils.Database, dimension: int) -> list[str]:
    """What is wrong with the stored sentences: articles without them, counts that disagree,
    rows outside every chunk of their article, vectors of the wrong size."""
    checks = [
        ("select count(*) from articles where n_sentences is null", [],
         "{} articles have no sentence vectors (an index from before format 2); "
         "run `qabot index ARCHIVE` on it to add them (only the sentences are embedded)"),
        ("select count(*) from articles a where a.n_sentences is not null "
         "and a.n_sentences != (select count(*) from sentences s where s.article_id = a.id)", [],
         "{} articles have missing or extra sentence vectors"),
        ("select count(*) from sentences s where not exists (select 1 from chunks c where c.article_id = s.article_id "
         'and s.start >= c.start and s."end" <= c."end")', [],
         "{} stored sentence vectors belong to no chunk"),
        ("select count(*) from sentences where length(vector) != ?", [dimension * BLOB_DTYPE.itemsize],
         f"{{}} sentence vectors are not {dimension}-dimensional float16"),
    ]
    counts = [(db.execute(sql, params).fetchone()[0], message) for sql, params, message in checks]
    return [message.format(count) for count, message in counts if count]


__all__ = [
    "StoredSentence", "all_vectors", "article_chunks", "articles_without", "chunks_of", "delete", "for_chunks", "from_blobs", "insert", "problems",
    "set_stored", "to_blob",
]
