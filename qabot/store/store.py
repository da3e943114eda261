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
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

import numpy as np
import sqlite_utils

from qabot.documents import Article, Chunk, Sentence
from qabot.errors import IndexMismatchError, StoreError
from qabot.store import integrity, partial, sentences
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
from qabot.store.queries import FTS_TABLE, Queries, keyword_search_sql
from qabot.store.vectorfile import LazyVectors
from qabot.store.vectors import VectorFileInfo, VectorIndex

log = logging.getLogger(__name__)

class Store(Queries):
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
        self._sentences: VectorIndex | None = None
        self._sentence_lock = threading.Lock()

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
        if check:  # before SQLite opens the file: it would turn an emptied one into a new database
            data_dir = folder / manifest.generation if manifest.generation else folder
            if problems := integrity.checksum_problems(data_dir, manifest.checksums, limit=integrity.VERIFY_LIMIT):
                raise StoreError(integrity.damage_message(problems))
        # an index from before checksums: its vectors' norms are checked when they load
        store = cls.open_data(folder, manifest, check_norms=check and FAISS_NAME not in manifest.checksums)
        if check:
            try:
                if problems := store.vector_problems():
                    raise StoreError(integrity.damage_message([f"{store.data_dir / FAISS_NAME}: {'; '.join(problems)}"]))
                if problems := store.id_problems():
                    raise StoreError(f"{folder}: FAISS and SQLite disagree: {'; '.join(problems)}; the index is damaged: {integrity.REPAIR}")
                if not manifest.checksums and (problems := store.unverified_damage(full=False)):
                    raise StoreError(integrity.damage_message(problems))
            except StoreError:
                store.close()
                raise
        return store

    @classmethod
    def open_data(cls, folder: Path, manifest: Manifest, *, check_norms: bool = False) -> Store:
        """Open the generation ``manifest`` names, published or not; its vectors load when first used.

        StoreError, naming the file, when SQLite cannot open or read it. With ``check_norms`` every
        vector's norm is checked when the vectors load (readers of an index without checksums;
        a writer's staging copy was verified before it was made)."""
        data_dir = Path(folder) / manifest.generation if manifest.generation else Path(folder)
        db_path = data_dir / DB_NAME
        if not db_path.is_file():
            raise StoreError(f"{db_path}: missing; the index is incomplete: {integrity.REPAIR}")
        if db_path.stat().st_size == 0:  # SQLite would take it for a new, empty database
            raise StoreError(integrity.damage_message([f"{db_path}: empty"]))
        vectors = LazyVectors(data_dir / FAISS_NAME, dimension=manifest.dimension, check_norms=check_norms)
        try:
            db = _connect(db_path)
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:  # OperationalError (cannot open, read-only, locked) included
            vectors.close()
            raise StoreError(_sqlite_message(db_path, exc)) from None
        except BaseException:
            vectors.close()
            raise
        return cls(folder, db, manifest, vectors)

    def unverified_damage(self, *, full: bool) -> list[str]:
        """For a generation without checksums: SQLite's quick_check (only when the database is
        small, unless ``full``) and, with ``full``, every vector's norm (which loads them)."""
        db_path = self.data_dir / DB_NAME
        problems = []
        if full or db_path.stat().st_size <= integrity.QUICK_CHECK_LIMIT:
            problems += integrity.quick_check_problems(self.db.conn, db_path)
        if full and not problems:
            problems += integrity.vector_norm_problems(self.vectors, source=str(self.data_dir / FAISS_NAME))
        return problems

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

    def load_vectors(self, *, sentences: bool = False) -> None:
        """Read the vectors (with ``sentences``, the sentence leg's too) now rather than at the
        first search (a server's warm-up)."""
        self._vectors.get()
        if sentences:
            self._sentence_index()

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
        sentences.delete(self.db, article_ids)
        self.db.execute(f"delete from chunks where article_id in ({marks})", list(article_ids))
        self.db.execute(f"delete from articles where id in ({marks})", list(article_ids))
        return chunk_ids

    def add(
        self, items: Sequence[tuple[Article, Sequence[Chunk]]], vectors: np.ndarray,
        sentence_spans: Sequence[Sequence[Sentence]], sentence_vectors: np.ndarray,
    ) -> list[str]:
        """Insert articles with their chunks and sentences in ONE transaction, and the chunk vectors
        under the chunks' rowids; the ids of the articles stored.

        ``vectors`` has one row per chunk, in the order the chunks appear in ``items``;
        ``sentence_spans`` one list per article (``chunk_sentences`` of its chunks) and
        ``sentence_vectors`` one row per sentence, in that order. An article already present
        (same id) is replaced with its chunks and sentences, in the same transaction, so a crash
        never leaves an article without them; one already stored with the same content hash is left
        as it is (not among the ids returned). Chunks that do not start at index 0 are a later part
        of an article stored in parts (:mod:`qabot.store.partial`).
        """
        dimension = self.manifest.dimension
        n_chunks = sum(len(chunks) for _, chunks in items)
        if vectors.shape != (n_chunks, dimension):
            raise ValueError(f"expected vectors of shape {(n_chunks, dimension)}, got {vectors.shape}")
        spans = list(sentence_spans)
        n_sentences = sum(len(s) for s in spans)
        if len(spans) != len(items) or sentence_vectors.shape != (n_sentences, dimension):
            raise ValueError(f"expected one sentence list per article and {n_sentences} sentence vectors")
        chunk_at = np.cumsum([0, *(len(chunks) for _, chunks in items)])
        sentence_at = np.cumsum([0, *(len(s) for s in spans)])
        now = now_iso()
        rowids: list[int] = []
        kept_vectors: list[np.ndarray] = []
        stored: list[str] = []
        columns = list(_article_row(items[0][0], 0, now)) if items else []
        article_sql = f"insert into articles ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"
        # db.atomic(), not "with conn": sqlite-utils commits each statement outside an explicit transaction.
        with self.db.atomic():
            hashes = self._hashes_of([a.id for a, _ in items])
            keep = [i for i, (article, chunks) in enumerate(items)
                    if partial.first_chunk_index(chunks) != 0 or hashes.get(article.id) != article.content_hash]
            # An article's first part replaces any older copy; a later part (a long article stored
            # in parts: qabot.store.partial) adds to what its earlier parts stored.
            fresh = [items[i][0].id for i in keep if partial.first_chunk_index(items[i][1]) == 0]
            stale = self._delete_rows(fresh) if fresh else []
            for i in keep:
                article, chunks = items[i]
                if partial.first_chunk_index(chunks) == 0:
                    self.db.execute(article_sql, list(_article_row(article, len(chunks), now).values()))
                else:
                    partial.append(self.db, article, len(chunks))
                for chunk in chunks:
                    cursor = self.db.execute(
                        'insert into chunks (article_id, idx, text, start, "end", n_tokens) values (?, ?, ?, ?, ?, ?)',
                        [chunk.article_id, chunk.index, chunk.text, chunk.start, chunk.end, chunk.n_tokens],
                    )
                    rowids.append(int(cursor.lastrowid))
                kept_vectors.append(vectors[chunk_at[i] : chunk_at[i + 1]])
                sentences.insert(self.db, article.id, spans[i], sentence_vectors[sentence_at[i] : sentence_at[i + 1]])
                stored.append(article.id)
        if stale:
            self.vectors.remove(np.array(stale, dtype=np.int64))
        if rowids:
            self.vectors.add(np.ascontiguousarray(np.concatenate(kept_vectors), dtype=np.float32), np.array(rowids, dtype=np.int64))
        return stored

    def add_sentences(self, found: dict[str, tuple[Sequence[Sentence], np.ndarray]]) -> None:
        """Store sentences (and their vectors) of articles already present, in one transaction (an upgrade)."""
        with self.db.atomic():
            for article_id, (spans, vectors) in found.items():
                sentences.delete(self.db, [article_id])
                sentences.insert(self.db, article_id, spans, vectors)

    def save_vectors(self) -> None:
        """Write the vector index into this generation's folder (temp file, fsync, rename)."""
        atomic_write(self.data_dir / FAISS_NAME, self.vectors.write)  # streamed: no second copy in memory
        # The files changed: checksums are recorded again when the generation is published.
        self.manifest = Manifest(**{**asdict(self.manifest), **self.counts(), "updated_at": now_iso(), "checksums": {}})

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
            "sentences": self.db["sentences"].count,
        }

    def search_vectors(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunks by inner product (cosine for normalised vectors): [(chunk_id, score)]."""
        if self.vectors.ntotal == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self.vectors.search(q, min(k, self.vectors.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def search_sentences(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Chunks by their nearest sentences: [(chunk_id, best sentence score)], best first."""
        index = self._sentence_index()
        if index.ntotal == 0 or k <= 0:
            return []
        scores, ids = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), min(k, index.ntotal))
        hits = [(int(i), float(v)) for i, v in zip(ids[0], scores[0]) if i != -1]
        chunk_of = sentences.chunks_of(self.db, [i for i, _ in hits])
        best: dict[int, float] = {}
        for sentence_id, score in hits:
            if (chunk := chunk_of.get(sentence_id)) is not None and chunk not in best:
                best[chunk] = score
        return list(best.items())

    def _sentence_index(self) -> VectorIndex:
        """The sentence leg's index, built from the stored sentence vectors on first use."""
        with self._sentence_lock:
            if self._sentences is None:
                ids, vectors = sentences.all_vectors(self.db, self.manifest.dimension)
                if problems := integrity.norm_problems(vectors, ids, source=f"{self.data_dir / DB_NAME} (sentence vectors)"):
                    raise StoreError(integrity.damage_message(problems))
                index = VectorIndex.empty(self.manifest.dimension)
                if len(ids):
                    index.add(vectors, ids)
                    index.optimize()
                self._sentences = index
            return self._sentences

    def truncate_article(self, article_id: str, keep: int) -> None:
        """Keep only the first ``keep`` chunks of a partial article (with their sentences and vectors)."""
        with self.db.atomic():
            removed = partial.truncate(self.db, article_id, keep)
        if removed:
            self.vectors.remove(np.array(removed, dtype=np.int64))

    def vectors_for(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, one row each (IndexIDMap2 keeps id -> row)."""
        return self.vectors.reconstruct([int(i) for i in chunk_ids])

def _article_row(article: Article, n_chunks: int, now: str) -> dict[str, Any]:
    return {
        "id": article.id, "title": article.title, "date": article.date, "url": article.url,
        "source": article.source, "path": article.path, "line": article.line,
        "content_hash": partial.stored_hash(article), "text": article.text, "n_chunks": n_chunks, "n_sentences": None, "indexed_at": now,
    }


def _sqlite_message(path: Path, exc: sqlite3.DatabaseError) -> str:
    """One line for an index database SQLite cannot use: damage, or a file it may not open."""
    if isinstance(exc, sqlite3.OperationalError):
        return (f"{path}: cannot open or read it ({exc}); check that this user may read the file and write "
                f"its folder (SQLite keeps its -wal and -shm files beside it)")
    return integrity.damage_message([f"{path}: {exc}"])


def _connect(path: Path) -> sqlite_utils.Database:
    # check_same_thread=False: the bot asks from worker threads; the Retriever serialises access.
    db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))
    # WAL lets readers (the bot) keep reading while the indexer writes.
    db.execute("pragma journal_mode = wal")
    db.execute("pragma foreign_keys = on")
    return db


__all__ = ["FTS_TABLE", "Store", "keyword_search_sql"]
