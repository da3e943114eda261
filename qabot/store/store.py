"""One open generation of an index: its SQLite database and, loaded when first needed, its vectors.

What an index folder holds is described in :mod:`qabot.store`; the manifest in
:mod:`qabot.store.manifest`; how generations are begun, resumed and published in
:mod:`qabot.store.generations`.

:class:`Store` runs the queries (a pure function builds the full-text SQL,
:func:`keyword_search_sql`; the thin method runs it). Opening a store reads the manifest and
opens SQLite only: the FAISS file is opened but not read until something needs the vectors
(a search, an add or delete, a save; :mod:`qabot.store.vectorfile`), so reading article
hashes or counting costs no vector load. The id contract, every row of ``chunks`` has exactly
one vector whose FAISS id is the row's ``id`` (ids are never positional), is checked by
:meth:`Store.open` from the ids alone (:func:`qabot.store.vectors.peek`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, Self

import numpy as np
import sqlite_utils

from qabot.documents import Article, Chunk
from qabot.errors import IndexMismatchError, StoreError
from qabot.store.files import atomic_write
from qabot.store.manifest import (
    DB_NAME,
    FAISS_NAME,
    Manifest,
    is_index,
    now_iso,
    read_manifest,
    same_model,
    write_manifest,
)
from qabot.store.migrations import migrations
from qabot.store.vectorfile import LazyVectors
from qabot.store.vectors import VectorFileInfo, VectorIndex

log = logging.getLogger(__name__)

FTS_TABLE = "chunks_fts"


def keyword_search_sql(*, fts_table: str = FTS_TABLE) -> str:
    """Full-text search of chunk text, best first: rows (rowid, -bm25 score); params (match, k)."""
    return f"select rowid, -bm25({fts_table}) as score from {fts_table} where {fts_table} match ? order by score desc limit ?"


class Store:
    """One open generation of an index. :meth:`create` makes a new index, :meth:`open` opens
    the live generation, :meth:`open_data` any generation (the indexer's staging one).

    ``vectors`` is loaded from the generation's FAISS file on first use (thread-safe: one
    load, whichever thread asks first); :meth:`load_vectors` loads it ahead of time.
    """

    def __init__(self, folder: Path, db: sqlite_utils.Database, manifest: Manifest, vectors: LazyVectors) -> None:
        self.folder = Path(folder)
        self.db = db
        self.manifest = manifest
        self._vectors = vectors
        self._fts_errors: set[str] = set()  # full-text errors already logged as warnings

    @property
    def data_dir(self) -> Path:
        """Where this generation's qabot.db and vectors.faiss are."""
        return self.folder / self.manifest.generation if self.manifest.generation else self.folder

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def create(
        cls, folder: Path, *, model: str, dimension: int, chunk_tokens: int, chunk_overlap: int,
        generation: str = "", publish: bool = True,
    ) -> Store:
        """Create an empty index (or, with ``publish=False``, an unpublished generation of one)."""
        folder = Path(folder)
        if publish and is_index(folder):
            raise StoreError(f"an index already exists at {folder}")
        now = now_iso()
        manifest = Manifest(
            model=model, dimension=dimension, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
            created_at=now, updated_at=now, generation=generation,
        )
        data_dir = folder / generation if generation else folder
        data_dir.mkdir(parents=True, exist_ok=True)
        db = _connect(data_dir / DB_NAME)
        migrations.apply(db)
        store = cls(folder, db, manifest, LazyVectors(data_dir / FAISS_NAME, dimension=dimension, index=VectorIndex.empty(dimension)))
        if publish:
            store.save()
        return store

    @classmethod
    def open(cls, folder: Path, *, model: str | None = None, check: bool = True) -> Store:
        """Open the live generation; check that FAISS and SQLite agree and the model matches.

        The check reads the FAISS ids only (:func:`~qabot.store.vectors.peek`), not the vectors.
        Raises StoreError (or IndexMismatchError for a different model) with a clear message.
        """
        folder = Path(folder)
        manifest = read_manifest(folder)
        if model is not None and not same_model(model, manifest.model):
            raise IndexMismatchError(
                f"the index at {folder} was built with model {manifest.model!r}, but {model!r} is configured; "
                f"set QABOT_MODEL={manifest.model} or rebuild the index with `qabot index ARCHIVE --rebuild`"
            )
        store = cls.open_data(folder, manifest)
        if check:
            try:
                if problems := store.vector_problems():
                    raise StoreError(f"{store.data_dir / FAISS_NAME}: {'; '.join(problems)}; rebuild the index with `qabot index ARCHIVE --rebuild`")
                if problems := store.id_problems():
                    raise StoreError(f"{folder}: FAISS and SQLite disagree: {'; '.join(problems)}; run `qabot check` for a full report")
            except StoreError:
                store.close()
                raise
        return store

    @classmethod
    def open_data(cls, folder: Path, manifest: Manifest) -> Store:
        """Open the generation ``manifest`` names, published or not; its vectors load when first used."""
        data_dir = Path(folder) / manifest.generation if manifest.generation else Path(folder)
        db_path = data_dir / DB_NAME
        if not db_path.is_file():
            raise StoreError(f"{db_path}: missing; the index is incomplete, rebuild it with `qabot index ARCHIVE --rebuild`")
        vectors = LazyVectors(data_dir / FAISS_NAME, dimension=manifest.dimension)
        try:
            db = _connect(db_path)
            migrations.apply(db)
        except BaseException:
            vectors.close()
            raise
        return cls(folder, db, manifest, vectors)

    def close(self) -> None:
        self._vectors.close()
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the vectors, loaded when first needed ---------------------------------------------

    @property
    def vectors(self) -> VectorIndex:
        """The FAISS index of this generation, read from its file on first use."""
        return self._vectors.get()

    @property
    def vectors_loaded(self) -> bool:
        return self._vectors.loaded

    def load_vectors(self) -> None:
        """Read the vectors now rather than at the first search (a server's warm-up)."""
        self._vectors.get()

    def vector_info(self) -> VectorFileInfo:
        """Kind, dimension, size and ids of the vectors, without loading them when not loaded yet."""
        return self._vectors.info()

    # -- the id contract ------------------------------------------------------------------

    def faiss_ids(self) -> np.ndarray:
        """Every FAISS id (int64, storage order), read without loading the vectors when not loaded yet."""
        return np.asarray(self.vector_info().ids, dtype=np.int64)

    def chunk_ids(self) -> np.ndarray:
        rows = self.db.execute("select id from chunks order by id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def vector_problems(self) -> list[str]:
        """What makes the vector file unusable for this manifest (reads the header and ids only)."""
        info = self.vector_info()
        if info.d != self.manifest.dimension:
            return [f"vector dimension {info.d} != manifest dimension {self.manifest.dimension}"]
        return []

    def id_problems(self) -> list[str]:
        """Empty when FAISS ids == chunk rowids; otherwise what is wrong, briefly."""
        info = self.vector_info()
        faiss_ids, chunk_ids = set(info.ids.tolist()), set(self.chunk_ids().tolist())
        problems = []
        if len(faiss_ids) != info.ntotal:
            problems.append(f"{info.ntotal - len(faiss_ids)} duplicated FAISS ids")
        if missing := chunk_ids - faiss_ids:
            problems.append(f"{len(missing)} chunks without a vector")
        if orphans := faiss_ids - chunk_ids:
            problems.append(f"{len(orphans)} vectors without a chunk")
        return problems

    # -- writing ----------------------------------------------------------------------------

    def article_hashes(self) -> dict[str, str]:
        """article id -> content hash, for skipping unchanged articles."""
        return {r[0]: r[1] for r in self.db.execute("select id, content_hash from articles")}

    def incomplete_articles(self) -> list[str]:
        """Articles whose stored chunk count differs from the chunks present (for repairs and checks)."""
        sql = "select a.id from articles a where a.n_chunks != (select count(*) from chunks c where c.article_id = a.id)"
        return [r[0] for r in self.db.execute(sql)]

    def articles_of_chunks(self, chunk_ids: Sequence[int]) -> list[str]:
        """The distinct article ids these chunks belong to."""
        found: set[str] = set()
        ids = list(chunk_ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(r[0] for r in self.db.execute(f"select distinct article_id from chunks where id in ({marks})", part))
        return sorted(found)

    def delete_articles(self, article_ids: Iterable[str]) -> int:
        """Remove articles with their chunks and vectors; returns the number of chunks removed."""
        ids = list(article_ids)
        removed = 0
        for start in range(0, len(ids), 500):
            with self.db.atomic():  # one transaction per 500 articles
                chunk_ids = self._delete_rows(ids[start : start + 500])
            if chunk_ids:
                self.vectors.remove(np.array(chunk_ids, dtype=np.int64))
            removed += len(chunk_ids)
        return removed

    def _delete_rows(self, article_ids: Sequence[str]) -> list[int]:
        """Delete the rows of these articles inside the caller's transaction; their chunk ids."""
        marks = ",".join("?" * len(article_ids))
        chunk_ids = [r[0] for r in self.db.execute(f"select id from chunks where article_id in ({marks})", list(article_ids))]
        self.db.execute(f"delete from chunks where article_id in ({marks})", list(article_ids))
        self.db.execute(f"delete from articles where id in ({marks})", list(article_ids))
        return chunk_ids

    def add(self, items: Sequence[tuple[Article, Sequence[Chunk]]], vectors: np.ndarray) -> list[int]:
        """Insert articles and their chunks in ONE transaction, and their vectors under the rowids.

        ``vectors`` has one row per chunk, in the order the chunks appear in ``items``.
        An article already present (same id) is replaced with its chunks, in the same
        transaction, so a crash never leaves an article without its chunks.
        """
        n_chunks = sum(len(chunks) for _, chunks in items)
        if vectors.shape != (n_chunks, self.manifest.dimension):
            raise ValueError(f"expected vectors of shape {(n_chunks, self.manifest.dimension)}, got {vectors.shape}")
        now = now_iso()
        rowids: list[int] = []
        columns = list(_article_row(items[0][0], 0, now)) if items else []
        article_sql = f"insert into articles ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"
        # db.atomic(), not "with conn": sqlite-utils commits each statement outside an explicit transaction.
        with self.db.atomic():
            stale = self._delete_rows([a.id for a, _ in items]) if items else []
            for article, chunks in items:
                self.db.execute(article_sql, list(_article_row(article, len(chunks), now).values()))
                for chunk in chunks:
                    cursor = self.db.execute(
                        'insert into chunks (article_id, idx, text, start, "end", n_tokens) values (?, ?, ?, ?, ?, ?)',
                        [chunk.article_id, chunk.index, chunk.text, chunk.start, chunk.end, chunk.n_tokens],
                    )
                    rowids.append(int(cursor.lastrowid))
        if stale:
            self.vectors.remove(np.array(stale, dtype=np.int64))
        if rowids:
            self.vectors.add(np.ascontiguousarray(vectors, dtype=np.float32), np.array(rowids, dtype=np.int64))
        return rowids

    def save_vectors(self) -> None:
        """Write the vector index into this generation's folder (temp file, fsync, rename)."""
        atomic_write(self.data_dir / FAISS_NAME, self.vectors.write)  # streamed: no second copy in memory
        self.manifest = Manifest(**{**asdict(self.manifest), **self.counts(), "updated_at": now_iso()})

    def save(self) -> None:
        """Write the vectors and then publish the manifest with fresh counts."""
        self.save_vectors()
        write_manifest(self.folder, self.manifest)

    # -- reading ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {
            "articles": self.db["articles"].count,
            "chunks": self.db["chunks"].count,
            "vectors": self._vectors.ntotal(),
        }

    def date_range(self) -> tuple[str | None, str | None]:
        row = self.db.execute("select min(date), max(date) from articles where date is not null").fetchone()
        return row[0], row[1]

    def newest_title(self) -> str | None:
        """The title of the newest dated article (whitespace collapsed); None for an empty index."""
        row = self.db.execute(
            "select title from articles where coalesce(trim(title), '') != '' order by date desc, rowid desc limit 1"
        ).fetchone()
        return " ".join(row[0].split()) if row else None

    def sources(self) -> list[str]:
        """The distinct sources of the indexed articles, sorted."""
        rows = self.db.execute("select distinct source from articles where source is not null order by 1")
        return [r[0] for r in rows]

    def search_vectors(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunks by inner product (cosine for normalised vectors): [(chunk_id, score)]."""
        if self.vectors.ntotal == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self.vectors.search(q, min(k, self.vectors.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def keyword_search(self, match: str, k: int) -> list[tuple[int, float]]:
        """Chunks matching the FTS5 expression ``match``, by bm25: [(chunk_id, score)], best first.

        An SQLite error (a malformed expression: OperationalError; a corrupt full-text index:
        DatabaseError) is logged, as a warning the first time this store meets that message,
        and gives no hits: the question is then answered from the vectors alone, not failed.
        """
        if k <= 0 or not match.strip():
            return []
        try:
            rows = self.db.execute(keyword_search_sql(), [match, k]).fetchall()
        except sqlite3.ProgrammingError:
            raise  # misuse (a closed store), not a broken index
        except sqlite3.DatabaseError as exc:  # OperationalError, and a corrupt FTS5 index's DatabaseError
            self._log_fts_error(exc, match)
            return []
        return [(int(r[0]), float(r[1])) for r in rows]

    def _log_fts_error(self, exc: sqlite3.Error, match: str) -> None:
        message = str(exc)
        first = message not in self._fts_errors
        self._fts_errors.add(message)
        log.log(logging.WARNING if first else logging.DEBUG, "%s: full-text search failed (%s) for %r; "
                "no keyword hits; `qabot check` tests the full-text index", self.data_dir / DB_NAME, message, match)

    def chunks_between(self, chunk_ids: Sequence[int], since: date | None, until: date | None) -> set[int]:
        """The chunks among ``chunk_ids`` whose article is dated within [since, until]."""
        if not chunk_ids:
            return set()
        clauses, params = ["c.id in ({})".format(",".join("?" * len(chunk_ids)))], list(chunk_ids)
        if since is not None:
            clauses.append("a.date >= ?")
            params.append(since.isoformat())
        if until is not None:
            clauses.append("a.date <= ?")
            params.append(until.isoformat())
        sql = f"select c.id from chunks c join articles a on a.id = c.article_id where {' and '.join(clauses)}"
        return {row[0] for row in self.db.execute(sql, params)}

    def vectors_for(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, one row each (IndexIDMap2 keeps id -> row)."""
        return self.vectors.reconstruct([int(i) for i in chunk_ids])

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """chunk id -> chunk joined with its article's metadata."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        sql = (
            'select c.id, c.article_id, c.idx, c.text, c.start, c."end", a.title, a.date, a.url, a.source '
            f"from chunks c join articles a on a.id = c.article_id where c.id in ({marks})"
        )
        cursor = self.db.execute(sql, list(chunk_ids))
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}

    def article_text(self, article_id: str) -> str | None:
        row = self.db.execute("select text from articles where id = ?", [article_id]).fetchone()
        return row[0] if row else None


def _article_row(article: Article, n_chunks: int, now: str) -> dict[str, Any]:
    return {
        "id": article.id, "title": article.title, "date": article.date, "url": article.url,
        "source": article.source, "path": article.path, "line": article.line,
        "content_hash": article.content_hash, "text": article.text, "n_chunks": n_chunks, "indexed_at": now,
    }


def _connect(path: Path) -> sqlite_utils.Database:
    # check_same_thread=False: the bot asks from worker threads; the Retriever serialises access.
    db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))
    # WAL lets readers (the bot) keep reading while the indexer writes.
    db.execute("pragma journal_mode = wal")
    db.execute("pragma foreign_keys = on")
    return db


__all__ = ["FTS_TABLE", "Store", "keyword_search_sql"]
