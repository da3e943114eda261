"""``qabot copy SRC DEST``: an index moved between a folder and PostgreSQL, with its vectors.

Nothing is re-embedded: articles, chunks and sentences are read from the source in batches with
their stored vectors and written through the destination's own ``add`` (a folder: one new
generation, published at the end; PostgreSQL: one transaction per batch, the HNSW indexes built
once at the end, or by the next writer if the copy is killed). The destination must be new or
empty; its settings (model, dimension, chunker) are the source's. Copying from a folder whose
vectors are in an IVF index reads the vectors that index stores (float16 scalars).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qabot.documents import Article, Chunk, Sentence
from qabot.errors import StoreError
from qabot.locations import Location, PgUrl
from qabot.store import generations
from qabot.store.interface import IndexWriter
from qabot.store.manifest import FORMAT_VERSION, Manifest, is_index
from qabot.store.sentences import from_blobs
from qabot.store.store import Store

log = logging.getLogger(__name__)

BATCH_ARTICLES = 200


@dataclass(frozen=True)
class CopyReport:
    source: str
    destination: str
    articles: int
    chunks: int
    sentences: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Batch:
    """Whole articles with their chunks and sentences, and the vectors of both (in that order)."""

    items: list[tuple[Article, list[Chunk]]]
    chunk_vectors: np.ndarray
    spans: list[list[Sentence]]
    sentence_vectors: np.ndarray


def copy_index(source: Location, destination: Location, *, timeout: float = 30.0, batch_articles: int = BATCH_ARTICLES) -> CopyReport:
    """Copy every article with its chunks, sentences and vectors from ``source`` to ``destination``."""
    started = time.perf_counter()
    if str(source) == str(destination) or (isinstance(source, Path) and isinstance(destination, Path) and source.resolve() == destination.resolve()):
        raise StoreError(f"{source}: source and destination are the same index")
    totals = {"articles": 0, "chunks": 0, "sentences": 0}
    with _source(source, timeout) as (manifest, read):
        if manifest.format_version < FORMAT_VERSION:
            raise StoreError(f"the index at {source} is of format {manifest.format_version}, without sentence vectors; "
                             f"upgrade it first with `qabot index ARCHIVE --index {source}`")
        with _destination(destination, manifest, timeout) as write:
            for batch in read(batch_articles):
                write.add(batch.items, batch.chunk_vectors, batch.spans, batch.sentence_vectors)
                totals["articles"] += len(batch.items)
                totals["chunks"] += len(batch.chunk_vectors)
                totals["sentences"] += len(batch.sentence_vectors)
                log.info("copy %s -> %s: %d articles", source, destination, totals["articles"])
    return CopyReport(str(source), str(destination), seconds=time.perf_counter() - started, **totals)


@contextmanager
def _source(location: Location, timeout: float) -> Iterator[tuple[Manifest, Callable[[int], Iterator[Batch]]]]:
    """The source's manifest and a function giving its batches (``n`` articles each)."""
    if isinstance(location, PgUrl):
        from qabot.store.postgres.store import PgStore

        with PgStore.open(location, pool_size=1, timeout=timeout) as pg:
            yield pg.manifest, lambda n: _pg_batches(pg, n)
        return
    with Store.open(Path(location)) as folder:
        yield folder.manifest, lambda n: _folder_batches(folder, n)


@contextmanager
def _destination(location: Location, manifest: Manifest, timeout: float) -> Iterator[IndexWriter]:
    """The destination, created with the source's settings and empty; a folder is published (a
    database's HNSW indexes built) when the copy ends without an error."""
    m = manifest
    if isinstance(location, PgUrl):
        from qabot.store.postgres.store import PgStore

        with PgStore.create_or_open(location, model=m.model, dimension=m.dimension, chunk_tokens=m.chunk_tokens,
                                    chunk_overlap=m.chunk_overlap, pool_size=1, timeout=timeout) as pg:
            if (n := pg.counts()["articles"]) > 0:
                raise StoreError(f"{location} already holds {n} articles; copy into an empty database")
            pg.drop_vector_indexes()  # built once at the end: far faster than row by row
            try:
                yield pg
            finally:  # also after an error: what was copied stays searchable through its indexes
                pg.make_vector_indexes()
                pg.analyze()
        return
    folder = Path(location)
    if is_index(folder) or (folder.exists() and any(folder.iterdir())):
        raise StoreError(f"{folder}: exists and is not empty; copy into a new folder")
    with generations.writer_lock(folder):
        staging = generations.begin(folder, generations.Wanted(m.model, m.dimension, m.chunk_tokens, m.chunk_overlap), rebuild=False)
        try:
            yield staging
        except BaseException:
            staging.close()
            generations.abandon(folder)
            raise
        generations.publish(staging)


def _article(row: Sequence[Any]) -> Article:
    article_id, title, date, url, source, path, line, text = row
    return Article(id=article_id, text=text, title=title, date=date, url=url, source=source, path=path or "", line=line)


_ARTICLE_COLUMNS = "id, title, date, url, source, path, line, text"


def _assemble(articles: list[Article], chunk_rows: list[tuple[Any, ...]], chunk_vectors: np.ndarray,
              sentence_rows: list[tuple[Any, ...]], sentence_vectors: np.ndarray) -> Batch:
    """Rows (article id first, in article order) -> one Batch."""
    chunks: dict[str, list[Chunk]] = {a.id: [] for a in articles}
    for article_id, idx, text, start, end, n_tokens in chunk_rows:
        chunks[article_id].append(Chunk(article_id, idx, text, start, end, n_tokens))
    texts = {a.id: a.text for a in articles}
    spans: dict[str, list[Sentence]] = {a.id: [] for a in articles}
    for article_id, start, end in sentence_rows:
        spans[article_id].append(Sentence(start, end, texts[article_id][start:end]))
    return Batch([(a, chunks[a.id]) for a in articles], chunk_vectors, [spans[a.id] for a in articles], sentence_vectors)


def _folder_batches(store: Store, n: int) -> Iterator[Batch]:
    last = ""
    while True:
        rows = store.db.execute(f"select {_ARTICLE_COLUMNS} from articles where id > ? order by id limit ?", [last, n]).fetchall()
        if not rows:
            return
        articles = [_article(r) for r in rows]
        last = articles[-1].id
        ids = [a.id for a in articles]
        marks = ",".join("?" * len(ids))
        order = {a: i for i, a in enumerate(ids)}
        chunk_rows = store.db.execute(f'select id, article_id, idx, text, start, "end", n_tokens from chunks where article_id in ({marks})', ids).fetchall()
        chunk_rows.sort(key=lambda r: (order[r[1]], r[2]))
        vectors = store.vectors_for([r[0] for r in chunk_rows]) if chunk_rows else np.zeros((0, store.manifest.dimension), np.float32)
        sentence_rows = store.db.execute(f'select article_id, start, "end", vector from sentences where article_id in ({marks})', ids).fetchall()
        sentence_rows.sort(key=lambda r: (order[r[0]], r[1], r[2]))
        yield _assemble(articles, [r[1:] for r in chunk_rows], vectors, [r[:3] for r in sentence_rows],
                        from_blobs([r[3] for r in sentence_rows], store.manifest.dimension))


def _pg_batches(store: Any, n: int) -> Iterator[Batch]:
    from qabot.store.postgres.queries import matrix

    last = ""
    while True:
        with store.pool.connection() as conn:
            rows = conn.execute(f"select {_ARTICLE_COLUMNS} from articles where id > %s order by id limit %s", [last, n]).fetchall()
            if not rows:
                return
            articles = [_article(r) for r in rows]
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
        yield _assemble(articles, [r[:6] for r in chunk_rows], matrix([r[6] for r in chunk_rows], dimension),
                        [r[:3] for r in sentence_rows], matrix([r[3] for r in sentence_rows], dimension))


__all__ = ["BATCH_ARTICLES", "Batch", "CopyReport", "copy_index"]
