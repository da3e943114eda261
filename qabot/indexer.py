"""Build or update an index: archive -> chunking -> embedding (batches) -> store.

Idempotent: an article whose content hash is unchanged is skipped; a changed one is
re-chunked and replaced. Each batch of articles is written to SQLite in one transaction.
A run that was killed is repaired by the next one (see :func:`_reconcile`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .archive import iter_articles
from .chunking import chunk_article
from .documents import Article, Chunk, Problem
from .embedding import Embedder
from .errors import IndexMismatchError
from .store import Store, is_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexReport:
    """What one indexing run did."""

    index_dir: str
    articles_read: int = 0
    articles_indexed: int = 0
    articles_unchanged: int = 0
    articles_skipped: int = 0
    chunks_embedded: int = 0
    articles_total: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    errors: tuple[Problem, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``qabot index --json``."""
        return {
            "index": self.index_dir,
            "articles_read": self.articles_read,
            "articles_indexed": self.articles_indexed,
            "articles_unchanged": self.articles_unchanged,
            "articles_skipped": self.articles_skipped,
            "chunks_embedded": self.chunks_embedded,
            "articles_total": self.articles_total,
            "chunks_total": self.chunks_total,
            "seconds": round(self.seconds, 3),
            "errors": [p.to_dict() for p in self.errors],
        }


def build_index(
    archive: Path,
    index_dir: Path,
    *,
    embedder: Embedder,
    chunk_tokens: int = 200,
    chunk_overlap: int = 1,
    batch_size: int = 32,
    progress: bool = False,
    on_problem: Callable[[Problem], None] | None = None,
) -> IndexReport:
    """Index every article under ``archive`` into ``index_dir`` (created when missing).

    Problems with single files or lines are collected (and passed to ``on_problem``);
    they never stop the run. Raises IndexMismatchError when the existing index was
    built with another model or other chunker settings.
    """
    started = time.perf_counter()
    problems: list[Problem] = []

    def note(problem: Problem) -> None:
        problems.append(problem)
        if on_problem is not None:
            on_problem(problem)

    store = _open_or_create(index_dir, embedder=embedder, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
    try:
        _reconcile(store)
        known = store.article_hashes()
        counts = {"read": 0, "indexed": 0, "unchanged": 0, "chunks": 0}
        seen: dict[str, str] = {}

        def todo() -> Iterator[tuple[Article, list[Chunk]]]:
            for article in iter_articles(Path(archive), on_problem=note):
                counts["read"] += 1
                where = article.path if article.line is None else f"{article.path}:{article.line}"
                if article.id in seen:
                    note(Problem(article.path, article.line, f"duplicate article id {article.id!r} (first read from {seen[article.id]})"))
                    continue
                seen[article.id] = where
                if known.get(article.id) == article.content_hash:
                    counts["unchanged"] += 1
                    continue
                chunks = chunk_article(
                    article, max_tokens=chunk_tokens, overlap=chunk_overlap,
                    model_limit=embedder.max_seq_length, count_model_tokens=embedder.count_tokens,
                )
                if not chunks:
                    note(Problem(article.path, article.line, "no text to index"))
                    continue
                yield article, chunks

        bar = _progress_bar(progress)
        for batch in _batches(todo(), max_chunks=batch_size * 8):
            texts = [c.text for _, chunks in batch for c in chunks]
            vectors = embedder.embed_passages(texts, batch_size=batch_size)
            store.add(batch, np.asarray(vectors, dtype=np.float32))
            counts["indexed"] += len(batch)
            counts["chunks"] += len(texts)
            if bar is not None:
                bar.update(len(batch))
                bar.set_postfix(chunks=counts["chunks"], refresh=False)
        if bar is not None:
            bar.close()
        store.save()
        totals = store.counts()
    finally:
        store.close()
    report = IndexReport(
        index_dir=str(index_dir),
        articles_read=counts["read"],
        articles_indexed=counts["indexed"],
        articles_unchanged=counts["unchanged"],
        articles_skipped=sum(1 for p in problems if p.skipped),
        chunks_embedded=counts["chunks"],
        articles_total=totals["articles"],
        chunks_total=totals["chunks"],
        seconds=time.perf_counter() - started,
        errors=tuple(problems),
    )
    log.info("indexed %s: %s", index_dir, report.to_dict() | {"errors": len(problems)})
    return report


def _open_or_create(index_dir: Path, *, embedder: Embedder, chunk_tokens: int, chunk_overlap: int) -> Store:
    if not is_index(index_dir):
        return Store.create(
            index_dir, model=embedder.name, dimension=embedder.dimension,
            chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
        )
    store = Store.open(index_dir, model=embedder.name, check=False)
    diffs = store.manifest.settings_differ(model=embedder.name, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
    if diffs:
        store.close()
        raise IndexMismatchError(
            f"the index at {index_dir} was built with {', '.join(diffs)}; "
            "rebuild it into a new folder (or delete this one) to change these settings"
        )
    return store


def _reconcile(store: Store) -> None:
    """Repair what a killed run left: SQLite commits per batch, FAISS is saved at the end.

    Articles whose chunks have no vector are dropped (the run re-indexes them, since
    their hash is gone); vectors without a chunk are removed.
    """
    faiss_ids, chunk_ids = set(store.faiss_ids().tolist()), set(store.chunk_ids().tolist())
    orphans = faiss_ids - chunk_ids
    if orphans:
        log.warning("%s: removing %d vectors without a chunk", store.folder, len(orphans))
        store.vectors.remove_ids(np.array(sorted(orphans), dtype=np.int64))
    missing = chunk_ids - faiss_ids
    if missing:
        marks = ",".join("?" * len(missing))
        rows = store.db.execute(f"select distinct article_id from chunks where id in ({marks})", sorted(missing))
        stale = [r[0] for r in rows]
        log.warning("%s: %d articles lost their vectors in an interrupted run; re-indexing them", store.folder, len(stale))
        store.delete_articles(stale)
    if orphans or missing:
        store.save()


def _batches(items: Iterable[tuple[Article, list[Chunk]]], *, max_chunks: int) -> Iterator[list[tuple[Article, list[Chunk]]]]:
    """Group articles so each batch holds about ``max_chunks`` chunks (never splitting an article)."""
    batch: list[tuple[Article, list[Chunk]]] = []
    size = 0
    for item in items:
        batch.append(item)
        size += len(item[1])
        if size >= max_chunks:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit="article", desc="indexing", dynamic_ncols=True)
