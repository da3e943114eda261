"""The index folder: a SQLite database (sqlite-utils) plus a FAISS index plus a manifest.

Layout of an index folder::

    qabot.db        articles, chunks, chunks_fts (FTS5 on chunk text); opens in Datasette as is
    vectors.faiss   IndexIDMap2 over inner-product vectors; FAISS id == chunks.id (the rowid)
    manifest.json   format version, model, dimension, chunker settings, counts

The id contract: every row of ``chunks`` has exactly one vector whose FAISS id is the
row's ``id``; ids are never positional. :meth:`Store.open` checks it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import sqlite_utils

from .documents import Article, Chunk
from .errors import IndexMismatchError, StoreError
from .migrations import migrations

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DB_NAME = "qabot.db"
FAISS_NAME = "vectors.faiss"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What an index was built with, and how big it is."""

    model: str
    dimension: int
    chunk_tokens: int
    chunk_overlap: int
    tokenizer: str = "cl100k_base"
    format_version: int = FORMAT_VERSION
    articles: int = 0
    chunks: int = 0
    vectors: int = 0
    created_at: str = ""
    updated_at: str = ""

    def settings_differ(self, *, model: str, chunk_tokens: int, chunk_overlap: int) -> list[str]:
        """Human-readable differences between this manifest and the requested settings."""
        diffs = []
        if model != self.model:
            diffs.append(f"model {self.model!r} (requested {model!r})")
        if chunk_tokens != self.chunk_tokens:
            diffs.append(f"chunk_tokens {self.chunk_tokens} (requested {chunk_tokens})")
        if chunk_overlap != self.chunk_overlap:
            diffs.append(f"chunk_overlap {self.chunk_overlap} (requested {chunk_overlap})")
        return diffs


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def is_index(folder: Path) -> bool:
    """True when ``folder`` holds a manifest (i.e. an index was built there)."""
    return (Path(folder) / MANIFEST_NAME).is_file()


def read_manifest(folder: Path) -> Manifest:
    path = Path(folder) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"no index at {folder} (no {MANIFEST_NAME}); build one with `qabot index PATH --index {folder}`") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable manifest: {exc}") from None
    known = {k: v for k, v in data.items() if k in Manifest.__dataclass_fields__}
    try:
        manifest = Manifest(**known)
    except TypeError as exc:
        raise StoreError(f"{path}: incomplete manifest: {exc}") from None
    if manifest.format_version > FORMAT_VERSION:
        raise StoreError(
            f"{path}: index format {manifest.format_version} is newer than this qabot understands ({FORMAT_VERSION}); upgrade qabot"
        )
    return manifest


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """One open index folder. Use :meth:`create` for a new one and :meth:`open` for an existing one."""

    def __init__(self, folder: Path, db: sqlite_utils.Database, vectors: faiss.Index, manifest: Manifest) -> None:
        self.folder = Path(folder)
        self.db = db
        self.vectors = vectors
        self.manifest = manifest

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, *, model: str, dimension: int, chunk_tokens: int, chunk_overlap: int) -> Store:
        """Create an empty index in ``folder`` (which must not hold one already)."""
        folder = Path(folder)
        if is_index(folder):
            raise StoreError(f"an index already exists at {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        db = _connect(folder / DB_NAME)
        migrations.apply(db)
        vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        now = _now()
        manifest = Manifest(
            model=model, dimension=dimension, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
            created_at=now, updated_at=now,
        )
        store = cls(folder, db, vectors, manifest)
        store.save()
        return store

    @classmethod
    def open(cls, folder: Path, *, model: str | None = None, check: bool = True) -> Store:
        """Open an existing index; check that FAISS and SQLite agree and the model matches.

        Raises StoreError (or IndexMismatchError for a different model) with a clear message.
        """
        folder = Path(folder)
        manifest = read_manifest(folder)
        if model is not None and not _same_model(model, manifest.model):
            raise IndexMismatchError(
                f"the index at {folder} was built with model {manifest.model!r}, but {model!r} is configured; "
                f"set QABOT_MODEL={manifest.model} or rebuild the index"
            )
        db_path = folder / DB_NAME
        if not db_path.is_file():
            raise StoreError(f"{db_path}: missing; the index is incomplete, rebuild it")
        db = _connect(db_path)
        migrations.apply(db)
        vectors = _read_faiss(folder / FAISS_NAME)
        if vectors.d != manifest.dimension:
            raise StoreError(f"{folder}: FAISS dimension {vectors.d} != manifest dimension {manifest.dimension}")
        store = cls(folder, db, vectors, manifest)
        if check:
            problems = store.id_problems()
            if problems:
                raise StoreError(f"{folder}: FAISS and SQLite disagree: {'; '.join(problems)}; run `qabot index` again to repair")
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the id contract ------------------------------------------------------------------

    def faiss_ids(self) -> np.ndarray:
        if self.vectors.ntotal == 0:
            return np.zeros(0, dtype=np.int64)
        return faiss.vector_to_array(self.vectors.id_map).astype(np.int64)

    def chunk_ids(self) -> np.ndarray:
        rows = self.db.execute("select id from chunks order by id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def id_problems(self) -> list[str]:
        """Empty when FAISS ids == chunk rowids; otherwise what is wrong, briefly."""
        faiss_ids, chunk_ids = set(self.faiss_ids().tolist()), set(self.chunk_ids().tolist())
        problems = []
        if len(faiss_ids) != self.vectors.ntotal:
            problems.append(f"{self.vectors.ntotal - len(faiss_ids)} duplicated FAISS ids")
        if missing := chunk_ids - faiss_ids:
            problems.append(f"{len(missing)} chunks without a vector")
        if orphans := faiss_ids - chunk_ids:
            problems.append(f"{len(orphans)} vectors without a chunk")
        return problems

    # -- writing ----------------------------------------------------------------------------

    def article_hashes(self) -> dict[str, str]:
        """article id -> content hash, for skipping unchanged articles."""
        return {r[0]: r[1] for r in self.db.execute("select id, content_hash from articles")}

    def delete_articles(self, article_ids: Iterable[str]) -> int:
        """Remove articles with their chunks and vectors; returns the number of chunks removed."""
        ids = list(article_ids)
        removed = 0
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            chunk_ids = [r[0] for r in self.db.execute(f"select id from chunks where article_id in ({marks})", part)]
            with self.db.conn:
                self.db.execute(f"delete from chunks where article_id in ({marks})", part)
                self.db.execute(f"delete from articles where id in ({marks})", part)
            if chunk_ids:
                self.vectors.remove_ids(np.array(chunk_ids, dtype=np.int64))
            removed += len(chunk_ids)
        return removed

    def add(self, items: Sequence[tuple[Article, Sequence[Chunk]]], vectors: np.ndarray) -> list[int]:
        """Insert articles and their chunks in one transaction, and their vectors under the rowids.

        ``vectors`` has one row per chunk, in the order the chunks appear in ``items``.
        An article already present (same id) is replaced with its chunks.
        """
        n_chunks = sum(len(chunks) for _, chunks in items)
        if vectors.shape != (n_chunks, self.manifest.dimension):
            raise ValueError(f"expected vectors of shape {(n_chunks, self.manifest.dimension)}, got {vectors.shape}")
        existing = [a.id for a, _ in items if self.db["articles"].count_where("id = ?", [a.id])]
        if existing:
            self.delete_articles(existing)
        now = _now()
        rowids: list[int] = []
        with self.db.conn:
            for article, chunks in items:
                self.db["articles"].insert(_article_row(article, len(chunks), now))
                for chunk in chunks:
                    cursor = self.db.execute(
                        'insert into chunks (article_id, idx, text, start, "end", n_tokens) values (?, ?, ?, ?, ?, ?)',
                        [chunk.article_id, chunk.index, chunk.text, chunk.start, chunk.end, chunk.n_tokens],
                    )
                    rowids.append(int(cursor.lastrowid))
        if rowids:
            self.vectors.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.array(rowids, dtype=np.int64))
        return rowids

    def save(self) -> None:
        """Write FAISS (atomically) and then the manifest with fresh counts."""
        data = faiss.serialize_index(self.vectors)
        _atomic_write_bytes(self.folder / FAISS_NAME, data.tobytes())
        counts = self.counts()
        self.manifest = Manifest(**{**asdict(self.manifest), **counts, "updated_at": _now()})
        _atomic_write_bytes(self.folder / MANIFEST_NAME, json.dumps(asdict(self.manifest), indent=2).encode("utf-8"))

    # -- reading ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {
            "articles": self.db["articles"].count,
            "chunks": self.db["chunks"].count,
            "vectors": int(self.vectors.ntotal),
        }

    def date_range(self) -> tuple[str | None, str | None]:
        row = self.db.execute("select min(date), max(date) from articles where date is not null").fetchone()
        return row[0], row[1]

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
        out = np.zeros((len(chunk_ids), self.vectors.d), dtype=np.float32)
        for row, chunk_id in enumerate(chunk_ids):
            out[row] = self.vectors.reconstruct(int(chunk_id))
        return out

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


def _same_model(a: str, b: str) -> bool:
    """Model names match, ignoring an ``intfloat/`` style owner prefix."""
    return a == b or a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]


def _connect(path: Path) -> sqlite_utils.Database:
    # check_same_thread=False: the bot asks from worker threads; the Retriever serialises access.
    db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))
    # WAL lets readers (the bot) keep reading while the indexer writes.
    db.execute("pragma journal_mode = wal")
    db.execute("pragma foreign_keys = on")
    return db


def _read_faiss(path: Path) -> faiss.Index:
    if not path.is_file():
        raise StoreError(f"{path}: missing; the index is incomplete, run `qabot index` again")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise StoreError(f"{path}: unreadable FAISS index: {str(exc).splitlines()[0]}") from None
    if not isinstance(index, faiss.IndexIDMap2):
        index = faiss.downcast_index(index)
        if not isinstance(index, faiss.IndexIDMap2):
            raise StoreError(f"{path}: expected an IndexIDMap2 (ids are chunk rowids), found {type(index).__name__}")
    return index
