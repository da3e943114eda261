"""The PostgreSQL backend: an index in one database (pgvector), written one transaction per batch.

:class:`PgBackend` is :class:`qabot.store.interface.Backend` for a ``postgresql://`` URL. Readers
see each committed batch as it lands, so there is nothing to reopen (its reload signal is None);
a killed indexer keeps every batch it committed and the next run skips those by their hash;
several indexers may write at once (on different archives or shards). ``--rebuild`` is refused:
a new index goes into a new database, or a folder index is rebuilt and copied in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from qabot.documents import Chunk, Sentence
from qabot.errors import StoreError
from qabot.locations import PgUrl
from qabot.store.backends import POOL_SIZE, TIMEOUT
from qabot.store.copying import Batch, article_from_row, assemble
from qabot.store.interface import Batches, CheckReport, DeleteReport, IndexWriter, Wanted
from qabot.store.manifest import Manifest
from qabot.store.postgres import schema
from qabot.store.postgres.checks import check_pg, pg_stats
from qabot.store.postgres.connection import connect
from qabot.store.postgres.queries import matrix
from qabot.store.postgres.store import PgStore, read_pg_manifest


class PgBackend:
    """The index in the database at ``url``."""

    def __init__(self, url: PgUrl, *, pool_size: int = POOL_SIZE, timeout: float = TIMEOUT) -> None:
        self.url, self.pool_size, self.timeout = url, pool_size, timeout
        self.name = url.safe

    @classmethod
    def at(cls, url: PgUrl, *, pool_size: int = POOL_SIZE, timeout: float = TIMEOUT) -> PgBackend:
        return cls(url, pool_size=pool_size, timeout=timeout)

    def __repr__(self) -> str:
        return f"PgBackend({self.name!r})"

    def exists(self) -> bool:
        """Whether the database holds a qabot index (StoreError when it cannot be reached)."""
        with connect(self.url, timeout=self.timeout, vectors=False) as conn:
            return bool(schema.applied(conn))

    def manifest(self) -> Manifest:
        return read_pg_manifest(self.url, timeout=self.timeout)

    def open_reader(self, *, model: str | None = None) -> PgStore:
        return PgStore.open(self.url, model=model, pool_size=self.pool_size, timeout=self.timeout)

    @contextmanager
    def indexing(self, wanted: Wanted, *, rebuild: bool, repair: bool, checkpoint_seconds: float) -> Iterator[PgRun]:
        """The index, created in the database when it has none; other settings are refused (IndexMismatchError)."""
        if rebuild:
            raise StoreError(
                f"--rebuild is for index folders; for {self.name} index into a new, empty database (readers switch by "
                "changing QABOT_INDEX), or rebuild a folder index and move it with `qabot copy FOLDER URL`"
            )
        store = PgStore.create_or_open(self.url, model=wanted.model, dimension=wanted.dimension, chunk_tokens=wanted.chunk_tokens,
                                       chunk_overlap=wanted.chunk_overlap, pool_size=self.pool_size, timeout=self.timeout)
        with store:
            yield PgRun(store)

    def delete(self, article_ids: Sequence[str]) -> DeleteReport:
        with PgStore.open(self.url, pool_size=1, timeout=self.timeout) as store:
            store.refuse_read_only()
            present = store.present(article_ids)
            wanted = list(dict.fromkeys(article_ids))
            found = [a for a in wanted if a in present]
            removed = store.delete_articles(found) if found else 0
            counts = store.counts()
        return DeleteReport(tuple(found), tuple(a for a in wanted if a not in present), removed, counts["articles"], counts["chunks"])

    def check(self) -> CheckReport:
        problems, notes, counts = check_pg(self.url, timeout=self.timeout)
        return CheckReport(index=self.name, problems=problems, notes=notes, counts=counts)

    def stats(self) -> dict[str, Any]:
        return pg_stats(self.url, timeout=self.timeout)

    def version(self) -> tuple[int, ...] | None:
        return None  # readers see every committed batch as it lands: nothing to reopen

    @contextmanager
    def copy_source(self) -> Iterator[tuple[Manifest, Batches]]:
        with PgStore.open(self.url, pool_size=1, timeout=self.timeout) as store:
            yield store.manifest, lambda n: _batches(store, n)

    @contextmanager
    def copy_destination(self, manifest: Manifest) -> Iterator[IndexWriter]:
        """The (empty) index with ``manifest``'s settings; its HNSW indexes are built once at the end, also
        after an error (what was copied stays searchable through them)."""
        m = manifest
        with PgStore.create_or_open(self.url, model=m.model, dimension=m.dimension, chunk_tokens=m.chunk_tokens,
                                    chunk_overlap=m.chunk_overlap, pool_size=1, timeout=self.timeout) as store:
            if (n := store.counts()["articles"]) > 0:
                raise StoreError(f"{self.name} already holds {n} articles; copy into an empty database")
            store.drop_vector_indexes()  # built once at the end: far faster than row by row
            try:
                yield store
            finally:
                store.make_vector_indexes()
                store.analyze()


class PgRun:
    """One indexing run on a database: every batch is its own transaction, so an error keeps what was
    committed; publishing refreshes the planner's statistics when anything changed."""

    split_articles = False  # a batch holds whole articles: readers never see part of one
    resumed = False

    def __init__(self, store: PgStore) -> None:
        self.store = store
        self.manifest = store.manifest
        self.known = store.article_hashes()
        self._changed = False

    def article_hashes(self) -> dict[str, str]:
        return self.store.article_hashes()

    def stored_parts(self) -> dict[str, int]:
        return {}

    def add(self, items: Sequence[tuple[Any, Sequence[Chunk]]], vectors: np.ndarray,
            sentence_spans: Sequence[Sequence[Sentence]], sentence_vectors: np.ndarray) -> list[str]:
        stored = self.store.add(items, vectors, sentence_spans, sentence_vectors)
        self._changed = self._changed or bool(stored)
        return stored

    def after_batch(self) -> None:
        pass  # committed with the batch

    def delete_articles(self, article_ids: Sequence[str] | Any) -> int:
        ids = list(article_ids)
        if not ids:
            return 0
        self._changed = True
        return self.store.delete_articles(ids)

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def articles_without_sentences(self) -> list[str]:
        return []  # every PostgreSQL index has stored sentence vectors from its first migration

    def article_chunks(self, article_ids: Sequence[str]) -> dict[str, list[Chunk]]:
        raise NotImplementedError("a PostgreSQL index has no articles without sentences")

    def add_sentences(self, found: dict[str, tuple[Sequence[Sentence], np.ndarray]]) -> None:
        raise NotImplementedError("a PostgreSQL index has no articles without sentences")

    def publish(self) -> Manifest:
        if self._changed:
            self.store.analyze()  # the planner's statistics and the keyword leg's word shares
        return self.store.refreshed_manifest()

    def close(self) -> None:
        self.store.close()


def _batches(store: PgStore, n: int) -> Iterator[Batch]:
    """Every article with its chunks, sentences and stored vectors, ``n`` articles at a time, by id."""
    last = ""
    while True:
        with store.pool.connection() as conn:
            rows = conn.execute("select id, title, date, url, source, path, line, text from articles where id > %s "
                                "order by id limit %s", [last, n]).fetchall()
            if not rows:
                return
            articles = [article_from_row(r) for r in rows]
            last = articles[-1].id
            ids = [a.id for a in articles]
            chunk_rows = conn.execute('select article_id, idx, text, start, "end", n_tokens, embedding from chunks '
                                      "where article_id = any(%s) order by article_id, idx", [ids]).fetchall()
            sentence_rows = conn.execute('select article_id, start, "end", embedding from sentences '
                                         'where article_id = any(%s) order by article_id, start, "end"', [ids]).fetchall()
        order = {a: i for i, a in enumerate(ids)}
        chunk_rows.sort(key=lambda r: (order[r[0]], r[1]))
        sentence_rows.sort(key=lambda r: (order[r[0]], r[1], r[2]))
        dimension = store.manifest.dimension
        yield assemble(articles, [r[:6] for r in chunk_rows], matrix([r[6] for r in chunk_rows], dimension),
                       [r[:3] for r in sentence_rows], matrix([r[3] for r in sentence_rows], dimension))


__all__ = ["PgBackend", "PgRun"]
