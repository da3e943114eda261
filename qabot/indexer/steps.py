"""The steps of every indexing run (:mod:`qabot.indexer.run`): which articles to embed, what to
embed of them, batching, the reading thread, progress, shards, and the report.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qabot.config.table import BY_NAME
from qabot.documents import Article, Chunk, Problem, Sentence
from qabot.errors import ConfigError
from qabot.ingest.archive import iter_articles
from qabot.ingest.chunking import chunk_article, chunk_sentences
from qabot.models.embedding import Embedder
from qabot.store import partial


@dataclass(frozen=True)
class IndexReport:
    """What one indexing run did."""

    index_dir: str
    articles_read: int = 0
    articles_indexed: int = 0
    articles_unchanged: int = 0
    articles_skipped: int = 0
    articles_removed: int = 0
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    articles_total: int = 0
    chunks_total: int = 0
    sentences_total: int = 0
    seconds: float = 0.0
    generation: str = ""
    resumed: bool = False
    errors: tuple[Problem, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``qabot index --json``."""
        return {
            "index": self.index_dir,
            "articles_read": self.articles_read,
            "articles_indexed": self.articles_indexed,
            "articles_unchanged": self.articles_unchanged,
            "articles_skipped": self.articles_skipped,
            "articles_removed": self.articles_removed,
            "chunks_embedded": self.chunks_embedded,
            "sentences_embedded": self.sentences_embedded,
            "articles_total": self.articles_total,
            "chunks_total": self.chunks_total,
            "sentences_total": self.sentences_total,
            "seconds": round(self.seconds, 3),
            "generation": self.generation,
            "resumed": self.resumed,
            "errors": [p.to_dict() for p in self.errors],
        }


@dataclass(frozen=True)
class Shard:
    """``--shard I/N``: the articles whose stable id hash falls in part I of N (1-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` -> Shard(2, 4); ConfigError naming the expected form otherwise."""
        try:
            index, count = (int(part) for part in text.strip().split("/"))
        except ValueError:
            raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 2/4") from None
        if not 1 <= index <= count:
            raise ConfigError(f"--shard {text!r}: I must be between 1 and N")
        return cls(index, count)

    def holds(self, article_id: str) -> bool:
        """Whether ``article_id`` belongs to this shard (blake2b of the id: the same on every machine)."""
        digest = hashlib.blake2b(article_id.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class Reading:
    """What reading the archive found: every id read (and where), the problems, the counts."""

    on_problem: Callable[[Problem], None] | None = None
    seen: dict[str, str] = field(default_factory=dict)  # article id -> where this run read it
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    def note(self, problem: Problem) -> None:
        self.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)


COUNTS = ("read", "indexed", "unchanged", "chunks", "sentences", "removed")


MAX_ARTICLE_BYTES: int = BY_NAME["max_article_bytes"].default  # QABOT_MAX_ARTICLE_BYTES' default


def changed_articles(
    archive: Path, reading: Reading, known: dict[str, str], embedder: Embedder, *, chunk_tokens: int, chunk_overlap: int,
    shard: Shard | None = None, max_article_bytes: int = MAX_ARTICLE_BYTES, stored: dict[str, int] | None = None,
) -> Iterator[tuple[Article, list[Chunk]]]:
    """The archive's articles (of ``shard``) that are new or changed against ``known`` (id -> content hash),
    with their chunks; counts and notes the rest (an article over ``max_article_bytes`` is a problem).

    An article stored in part by an interrupted run (``stored``: id -> chunks stored, its known
    hash marked partial) comes with the chunks it still lacks, when its text is unchanged."""
    for article in iter_articles(archive, on_problem=reading.note):
        if shard is not None and not shard.holds(article.id):
            continue
        reading.counts["read"] += 1
        where = article.path if article.line is None else f"{article.path}:{article.line}"
        if article.id in reading.seen:
            reading.note(Problem(article.path, article.line, f"duplicate article id {article.id!r} (first read from {reading.seen[article.id]})"))
            continue
        reading.seen[article.id] = where
        if (size := too_big(article.text, max_article_bytes)) is not None:
            reading.note(Problem(article.path, article.line, f"article {article.id!r} is {size / 1e6:.1f} MB, over the "
                                 f"limit of {max_article_bytes / 1e6:g} MB (QABOT_MAX_ARTICLE_BYTES); not indexed"))
            continue
        if known.get(article.id) == article.content_hash:
            reading.counts["unchanged"] += 1
            continue
        chunks = chunks_for(article, embedder, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
        if not chunks:
            reading.note(Problem(article.path, article.line, "no text to index"))
            continue
        if known.get(article.id) == partial.PARTIAL + article.content_hash and 0 < (done := (stored or {}).get(article.id, 0)) < len(chunks):
            chunks = chunks[done:]  # the rest of a long article an interrupted run stored in part
        yield article, chunks


def too_big(text: str, limit: int) -> int | None:
    """The UTF-8 size of ``text`` when it is over ``limit`` bytes, else None (cheap for short texts)."""
    if len(text) * 4 <= limit:  # no character takes more than 4 bytes
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def sentences_for(chunks: Sequence[Chunk]) -> list[Sentence]:
    """Exactly the sentences the indexer embeds for an article's ``chunks`` (benchmarks use this too)."""
    return chunk_sentences(chunks)


def chunks_for(article: Article, embedder: Embedder, *, chunk_tokens: int, chunk_overlap: int) -> list[Chunk]:
    """Exactly the chunks the indexer embeds for ``article`` (benchmarks use this too)."""
    return chunk_article(
        article, max_tokens=chunk_tokens, overlap=chunk_overlap,
        model_limit=embedder.max_seq_length, count_model_tokens=embedder.count_tokens,
    )


def batches(
    items: Iterable[tuple[Article, list[Chunk]]], *, max_chunks: int, split: bool = False,
) -> Iterator[list[tuple[Article, list[Chunk]]]]:
    """Group articles so each batch holds about ``max_chunks`` chunks.

    Without ``split`` an article is never split. With it, an article of more than ``max_chunks``
    chunks is cut into parts of ``max_chunks``, a batch each, every part but the last marked
    partial (:func:`qabot.store.partial.mark`), so that the indexer's checkpoints fall inside it.
    """
    batch: list[tuple[Article, list[Chunk]]] = []
    size = 0
    for article, chunks in items:
        if split and len(chunks) > max_chunks:
            if batch:
                yield batch
                batch, size = [], 0
            for lo in range(0, len(chunks), max_chunks):
                last = lo + max_chunks >= len(chunks)
                yield [(article if last else partial.mark(article), chunks[lo : lo + max_chunks])]
            continue
        batch.append((article, chunks))
        size += len(chunks)
        if size >= max_chunks:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


_DONE = object()


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run ``items`` in a background thread, ``depth`` items ahead; re-raise its errors here."""
    out: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            out.put(exc)

    worker = threading.Thread(target=produce, name="qabot-chunker", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def advance(bar: Any, counts: dict[str, int], started: float) -> None:
    bar.update(counts["read"] - bar.n)
    rate = counts["chunks"] / max(time.perf_counter() - started, 1e-9)
    bar.set_postfix(chunks=counts["chunks"], chunks_per_s=f"{rate:.1f}", refresh=False)


def progress_bar(enabled: bool, archive: Path) -> Any:
    """A tqdm bar over articles (total counted by a quick first read) with chunks and rate."""
    if not enabled:
        return None
    from tqdm import tqdm

    total = sum(1 for _ in iter_articles(Path(archive), on_problem=lambda p: None))
    return tqdm(total=total, unit="article", desc="indexing", dynamic_ncols=True, smoothing=0.1)
