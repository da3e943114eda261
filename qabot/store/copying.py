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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qabot.documents import Article, Chunk, Sentence
from qabot.errors import StoreError
from qabot.locations import Location
from qabot.store.manifest import FORMAT_VERSION

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
    from qabot.store.backends import backend_for  # the backends import this module's Batch

    started = time.perf_counter()
    if str(source) == str(destination) or (isinstance(source, Path) and isinstance(destination, Path) and source.resolve() == destination.resolve()):
        raise StoreError(f"{source}: source and destination are the same index")
    totals = {"articles": 0, "chunks": 0, "sentences": 0}
    with backend_for(source, pool_size=1, timeout=timeout).copy_source() as (manifest, read):
        if manifest.format_version < FORMAT_VERSION:
            raise StoreError(f"the index at {source} is of format {manifest.format_version}, without sentence vectors; "
                             f"upgrade it first with `qabot index ARCHIVE --index {source}`")
        with backend_for(destination, pool_size=1, timeout=timeout).copy_destination(manifest) as write:
            for batch in read(batch_articles):
                write.add(batch.items, batch.chunk_vectors, batch.spans, batch.sentence_vectors)
                totals["articles"] += len(batch.items)
                totals["chunks"] += len(batch.chunk_vectors)
                totals["sentences"] += len(batch.sentence_vectors)
                log.info("copy %s -> %s: %d articles", source, destination, totals["articles"])
    return CopyReport(str(source), str(destination), seconds=time.perf_counter() - started, **totals)


def article_from_row(row: Sequence[Any]) -> Article:
    article_id, title, date, url, source, path, line, text = row
    return Article(id=article_id, text=text, title=title, date=date, url=url, source=source, path=path or "", line=line)


def assemble(articles: list[Article], chunk_rows: list[tuple[Any, ...]], chunk_vectors: np.ndarray,
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


__all__ = ["BATCH_ARTICLES", "Batch", "CopyReport", "article_from_row", "assemble", "copy_index"]
