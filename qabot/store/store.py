"""The index folder: a SQLite database (sqlite-utils) plus a FAISS index plus a manifest.

Layout of an index folder::

    manifest.json       format version, model, dimension, chunker settings, counts, and the
                        live ``generation``: renaming a new manifest into place is the commit
    gen-000007/         one generation (the live one; the previous one is kept for readers)
        qabot.db        articles, chunks, chunks_fts (FTS5 on chunk text); opens in Datasette
        vectors.faiss   the vector index (qabot.store.vectors); FAISS id == chunks.id (the rowid)
    staging.json        only while an indexing run is building the next generation

An index written by ``Store.create`` directly (or by qabot before generations) keeps
``qabot.db`` and ``vectors.faiss`` beside the manifest (``generation == ""``); both read alike.
How generations are begun, resumed and published is in :mod:`qabot.store.generations`.

The id contract: every row of ``chunks`` has exactly one vector whose FAISS id is the
row's ``id``; ids are never positional. :meth:`Store.open` checks it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Self

import numpy as np
import sqlite_utils

from qabot.documents import Article, Chunk
from qabot.errors import IndexMismatchError, StoreError
from qabot.store.migrations import migrations
from qabot.store.vectors import VectorIndex

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
    generation: str = ""  # sub-folder holding the data; "" = beside the manifest
    previous_generation: str = ""  # kept on disk for readers that opened it before the swap

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


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Atomically replace ``folder/manifest.json``: the commit point of a generation."""
    atomic_write_bytes(Path(folder) / MANIFEST_NAME, json.dumps(asdict(manifest), indent=2).encode("utf-8"))
    fsync_path(Path(folder))


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries (making renames inside it durable), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Let ``write`` fill a temporary file beside ``path``; fsync it, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; readers may run as another user
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """One open generation of an index. :meth:`create` makes a new index, :meth:`open` opens
    the live generation, :meth:`open_data` any generation (the indexer's staging one)."""

    def __init__(self, folder: Path, db: sqlite_utils.Database, vectors: VectorIndex, manifest: Manifest) -> None:
        self.folder = Path(folder)
        self.db = db
        self.vectors = vectors
        self.manifest = manifest

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
        now = _now()
        manifest = Manifest(
            model=model, dimension=dimension, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
            created_at=now, updated_at=now, generation=generation,
        )
        data_dir = folder / generation if generation else folder
        data_dir.mkdir(parents=True, exist_ok=True)
        db = _connect(data_dir / DB_NAME)
        migrations.apply(db)
        store = cls(folder, db, VectorIndex.empty(dimension), manifest)
        if publish:
            store.save()
        return store

    @classmethod
    def open(cls, folder: Path, *, model: str | None = None, check: bool = True) -> Store:
        """Open the live generation; check that FAISS and SQLite agree and the model matches.

        Raises StoreError (or IndexMismatchError for a different model) with a clear message.
        """
        folder = Path(folder)
        manifest = read_manifest(folder)
        if model is not None and not _same_model(model, manifest.model):
            raise IndexMismatchError(
                f"the index at {folder} was built with model {manifest.model!r}, but {model!r} is configured; "
                f"set QABOT_MODEL={manifest.model} or rebuild the index with `qabot index ARCHIVE --rebuild`"
            )
        store = cls.open_data(folder, manifest)
        if check:
            problems = store.id_problems()
            if problems:
                store.close()
                raise StoreError(f"{folder}: FAISS and SQLite disagree: {'; '.join(problems)}; run `qabot check` for a full report")
        return store

    @classmethod
    def open_data(cls, folder: Path, manifest: Manifest) -> Store:
        """Open the generation ``manifest`` names, published or not."""
        data_dir = Path(folder) / manifest.generation if manifest.generation else Path(folder)
        db_path = data_dir / DB_NAME
        if not db_path.is_file():
            raise StoreError(f"{db_path}: missing; the index is incomplete, rebuild it with `qabot index ARCHIVE --rebuild`")
        vectors = _read_vectors(data_dir / FAISS_NAME)
        if vectors.d != manifest.dimension:
            raise StoreError(f"{data_dir / FAISS_NAME}: dimension {vectors.d} != manifest dimension {manifest.dimension}")
        db = _connect(db_path)
        migrations.apply(db)
        return cls(folder, db, vectors, manifest)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the id contract ------------------------------------------------------------------

    def faiss_ids(self) -> np.ndarray:
        return np.asarray(self.vectors.ids(), dtype=np.int64)

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
        now = _now()
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
        self.manifest = Manifest(**{**asdict(self.manifest), **self.counts(), "updated_at": _now()})

    def save(self) -> None:
        """Write the vectors and then publish the manifest with fresh counts."""
        self.save_vectors()
        write_manifest(self.folder, self.manifest)

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


def _read_vectors(path: Path) -> VectorIndex:
    if not path.is_file():
        raise StoreError(f"{path}: missing; the index is incomplete, run `qabot index` again")
    return VectorIndex.read(path)
