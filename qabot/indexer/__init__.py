"""Build or update an index: archive -> chunking -> embedding (batches) -> store.

Idempotent: an article whose content hash is unchanged is skipped; a changed one is
re-chunked and replaced; with ``prune`` articles gone from the archive are removed. Where the
index is decides how a run commits:

``steps``      what both share: changed articles, chunks and sentences to embed, batches, the
               reading thread, progress, ``--shard I/N``, the reports
``folder``     a folder index: every change in a staging generation swapped in at the end
               (readers never see half a run; a killed run is resumed)
``postgres``   a ``postgresql://`` index: one transaction per batch (readers see whole batches;
               several indexers may write at once)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from qabot.documents import Problem
from qabot.indexer.folder import build_folder_index, delete_folder_articles
from qabot.indexer.steps import MAX_ARTICLE_BYTES, DeleteReport, IndexReport, Shard, batches, chunks_for, sentences_for
from qabot.locations import Location, PgUrl, parse_location
from qabot.models.embedding import Embedder


def build_index(
    archive: Path,
    index_dir: str | Path | Location,
    *,
    embedder: Embedder,
    chunk_tokens: int = 200,
    chunk_overlap: int = 1,
    batch_size: int = 32,
    progress: bool = False,
    on_problem: Callable[[Problem], None] | None = None,
    prune: bool = False,
    rebuild: bool = False,
    repair: bool = False,
    checkpoint_seconds: float = 60.0,
    shard: Shard | None = None,
    max_article_bytes: int = MAX_ARTICLE_BYTES,
    pg_pool: int = 2,
    pg_timeout: float = 30.0,
) -> IndexReport:
    """Index every article under ``archive`` into ``index_dir``: a folder (created when missing) or a
    ``postgresql://`` URL (the index is created in that database when it has none).

    Problems with single files or lines are collected (and passed to ``on_problem``); they never
    stop the run. ``rebuild`` (folders only) builds a fresh index beside the live one (new model
    or chunker settings allowed) and swaps it in; without it, an index built with other settings
    is refused (IndexMismatchError). A damaged folder index is refused (StoreError) unless ``repair``
    asks to rebuild it from the archive. ``shard`` indexes only the articles whose id hashes to it.
    """
    location = parse_location(index_dir)
    if isinstance(location, PgUrl):
        from qabot.indexer.postgres import build_pg_index

        return build_pg_index(archive, location, embedder=embedder, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                              batch_size=batch_size, progress=progress, on_problem=on_problem, prune=prune, rebuild=rebuild,
                              shard=shard, pool_size=pg_pool, timeout=pg_timeout, max_article_bytes=max_article_bytes)
    return build_folder_index(archive, location, embedder=embedder, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                              batch_size=batch_size, progress=progress, on_problem=on_problem, prune=prune, rebuild=rebuild, repair=repair,
                              checkpoint_seconds=checkpoint_seconds, shard=shard, max_article_bytes=max_article_bytes)


def delete_articles(index_dir: str | Path | Location, article_ids: Sequence[str], *, pg_timeout: float = 30.0) -> DeleteReport:
    """Remove articles (with their chunks and vectors) from the index; a folder's as one atomic swap.

    Refused (StoreError) on a folder while an interrupted indexing run's generation waits to be
    resumed: a delete never discards one.
    """
    location = parse_location(index_dir)
    if isinstance(location, PgUrl):
        from qabot.indexer.postgres import delete_pg_articles

        return delete_pg_articles(location, article_ids, timeout=pg_timeout)
    return delete_folder_articles(location, article_ids)


__all__ = ["DeleteReport", "IndexReport", "Shard", "batches", "build_index", "chunks_for", "delete_articles", "sentences_for"]
