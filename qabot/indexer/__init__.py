"""Build or update an index: archive -> chunking -> embedding (batches) -> store.

Idempotent: an article whose content hash is unchanged is skipped; a changed one is
re-chunked and replaced; with ``prune`` articles gone from the archive are removed.

``steps``   what every run does: changed articles, chunks and sentences to embed, batches, the
            reading thread, progress, ``--shard I/N``, the report
``run``     the one loop over any backend (:mod:`qabot.store.backends`): a folder commits a new
            generation at the end, PostgreSQL one transaction per batch
"""

from __future__ import annotations

from qabot.indexer.run import build_index, delete_articles
from qabot.indexer.steps import IndexReport, Shard, batches, chunks_for, sentences_for
from qabot.store.interface import DeleteReport

__all__ = ["DeleteReport", "IndexReport", "Shard", "batches", "build_index", "chunks_for", "delete_articles", "sentences_for"]
