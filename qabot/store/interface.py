"""What everything above the store needs from an index, wherever it is: one narrow interface.

``Backend``       one index's location (a folder, a ``postgresql://`` URL): open it for questions,
                  index into it (``IndexingRun``), delete, check, stats, its reload signal, copy
                  from and into it. :func:`qabot.store.backends.backend_for` maps a location to one.
``IndexReader``   an open index, as a question sees it (the searches and reads).
``IndexWriter``   an open index, as an indexer or a copy writes it.

Two backends implement them: the folder (:mod:`qabot.store.folder`: SQLite + FAISS in
generations, the default) and PostgreSQL + pgvector (:mod:`qabot.store.postgres.backend`).
Everything above the store is typed against these protocols, never against either class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, Self

import numpy as np

from qabot.documents import Article, Chunk, Sentence
from qabot.store.manifest import Manifest
from qabot.store.sentences import StoredSentence

Ranking = list[tuple[int, float]]


class IndexReader(Protocol):
    """An open index, as a question sees it. Chunk ids are the store's; scores: higher is better."""

    manifest: Manifest

    def counts(self) -> dict[str, int]: ...
    def article_hashes(self) -> dict[str, str]: ...
    def date_range(self) -> tuple[str | None, str | None]: ...
    def newest_title(self) -> str | None: ...
    def sources(self) -> list[str]: ...
    def search_vectors(self, query: np.ndarray, k: int) -> Ranking: ...
    def search_sentences(self, query: np.ndarray, k: int) -> Ranking: ...
    def keyword_search_words(self, words: Sequence[str], k: int) -> Ranking: ...
    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]: ...
    def chunks_between(self, chunk_ids: Sequence[int], since: date | None, until: date | None) -> set[int]: ...
    def vectors_for(self, chunk_ids: Sequence[int]) -> np.ndarray: ...
    def sentences_in(self, chunk_ids: Sequence[int]) -> tuple[list[StoredSentence], np.ndarray]: ...
    def article_text(self, article_id: str) -> str | None: ...
    def load_vectors(self, *, sentences: bool = False) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


class IndexWriter(Protocol):
    """An open index, as an indexer or a copy writes it: add (or replace) and delete whole articles.

    ``add`` stores articles with their chunks, sentences and both vectors in one transaction and
    returns the ids of the articles it stored: an article already stored with the same content
    hash (by another writer meanwhile) is left as it is and not among them.
    """

    manifest: Manifest

    def article_hashes(self) -> dict[str, str]: ...
    def add(
        self, items: Sequence[tuple[Article, Sequence[Chunk]]], vectors: np.ndarray,
        sentence_spans: Sequence[Sequence[Sentence]], sentence_vectors: np.ndarray,
    ) -> list[str]: ...
    def delete_articles(self, article_ids: Iterable[str]) -> int: ...
    def counts(self) -> dict[str, int]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Wanted:
    """The settings a write needs the index to have."""

    model: str
    dimension: int
    chunk_tokens: int
    chunk_overlap: int


@dataclass(frozen=True)
class DeleteReport:
    """What ``qabot delete`` did."""

    removed: tuple[str, ...]
    unknown: tuple[str, ...]
    chunks_removed: int
    articles_total: int
    chunks_total: int


@dataclass
class CheckReport:
    """``qabot check``: ``problems`` make the index unusable or wrong; ``notes`` are worth knowing."""

    index: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    generation: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "ok": self.ok, "generation": self.generation, **self.counts,
            "problems": self.problems, "notes": self.notes,
        }


class IndexingRun(IndexWriter, Protocol):
    """One indexing run's hold on an index (``with backend.indexing(...) as run``): the indexer's one
    loop reads ``known``, adds batches, deletes what is gone and publishes; leaving the block on an
    error keeps what was committed, so the next run goes on from there.

    ``split_articles``: whether a long article may be stored in parts across batches (the folder,
    whose checkpoints then fall inside it; ``stored_parts`` says how far each got).
    """

    known: dict[str, str]  # article id -> content hash when the run began
    resumed: bool  # the run goes on from an interrupted one's work
    split_articles: bool

    def stored_parts(self) -> dict[str, int]: ...
    def after_batch(self) -> None: ...
    def articles_without_sentences(self) -> list[str]: ...
    def article_chunks(self, article_ids: Sequence[str]) -> dict[str, list[Chunk]]: ...
    def add_sentences(self, found: dict[str, tuple[Sequence[Sentence], np.ndarray]]) -> None: ...
    def publish(self) -> Manifest: ...


Batches = Callable[[int], Iterator[Any]]  # batch size in articles -> qabot.store.copying.Batch items


class Backend(Protocol):
    """One index, wherever it is. Made by :func:`qabot.store.backends.backend_for`; holds nothing open."""

    name: str  # where it is, safe to show (a URL without its password)

    def exists(self) -> bool: ...
    def manifest(self) -> Manifest: ...
    def open_reader(self, *, model: str | None = None) -> IndexReader: ...
    def indexing(self, wanted: Wanted, *, rebuild: bool, repair: bool, checkpoint_seconds: float) -> AbstractContextManager[IndexingRun]: ...
    def delete(self, article_ids: Sequence[str]) -> DeleteReport: ...
    def check(self) -> CheckReport: ...
    def stats(self) -> dict[str, Any]: ...
    def version(self) -> tuple[int, ...] | None: ...
    def copy_source(self) -> AbstractContextManager[tuple[Manifest, Batches]]: ...
    def copy_destination(self, manifest: Manifest) -> AbstractContextManager[IndexWriter]: ...


__all__ = ["Backend", "CheckReport", "DeleteReport", "IndexReader", "IndexWriter", "IndexingRun", "Ranking", "Wanted"]
