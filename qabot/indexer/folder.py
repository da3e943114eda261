"""Build or update a folder index: archive -> chunking -> embedding (batches) -> a new generation.

Idempotent: an article whose content hash is unchanged is skipped; a changed one is
re-chunked and replaced; with ``prune`` articles gone from the archive are removed.
Every change goes into a staging generation that is swapped in atomically at the end
(:mod:`qabot.store.generations`), so readers never see a half-updated index, a killed run is
resumed by the next one, and a run that changes nothing writes nothing.

Reading and chunking the archive runs in a background thread, one batch ahead of the
embedder, so the model (which releases the GIL) is rarely kept waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qabot.documents import Article, Chunk, Problem
from qabot.errors import StoreError
from qabot.indexer.steps import (
    MAX_ARTICLE_BYTES,
    DeleteReport,
    IndexReport,
    Reading,
    Shard,
    advance,
    batches,
    changed_articles,
    prefetch,
    progress_bar,
    sentences_for,
)
from qabot.ingest.archive import require_readable
from qabot.models.embedding import Embedder
from qabot.store import Manifest, Store, generations, integrity
from qabot.store.manifest import FORMAT_VERSION

log = logging.getLogger(__name__)


def build_folder_index(
    archive: Path,
    index_dir: Path,
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
) -> IndexReport:
    """Index every article under ``archive`` into ``index_dir`` (created when missing).

    Problems with single files or lines are collected (and passed to ``on_problem``);
    they never stop the run. ``rebuild`` builds a fresh index beside the live one (new
    model or chunker settings allowed) and swaps it in; without it, an index built with
    other settings is refused (IndexMismatchError). A damaged live index is refused
    (StoreError naming the damage), never updated; ``repair`` rebuilds it instead (and updates
    a sound one as usual). Ctrl-C saves progress first.
    """
    started = time.perf_counter()
    require_readable(Path(archive))  # before anything is locked, created or staged
    wanted = generations.Wanted(embedder.name, embedder.dimension, chunk_tokens, chunk_overlap)
    run = _Run(Path(index_dir), wanted, Reading(on_problem))
    with generations.writer_lock(run.folder):
        _start(run, rebuild=rebuild, repair=repair)
        todo = changed_articles(Path(archive), run.reading, run.known, embedder, chunk_tokens=chunk_tokens,
                                chunk_overlap=chunk_overlap, shard=shard, max_article_bytes=max_article_bytes,
                                stored=run.staging.partial_articles() if run.staging is not None else None)
        bar = progress_bar(progress, archive)
        try:
            _index_batches(run, todo, embedder, batch_size=batch_size, checkpoint_seconds=checkpoint_seconds,
                           on_batch=None if bar is None else lambda: advance(bar, run.counts, started))
            if prune:
                _prune(run, archive, shard)
            _add_missing_sentences(run, embedder, batch_size=batch_size)
            _drop_partial(run)
        except BaseException:
            if run.staging is not None:
                _save_progress(run.staging)
            raise
        finally:
            if bar is not None:
                advance(bar, run.counts, started)
                bar.close()
        manifest = generations.publish(run.staging) if run.staging is not None else generations.live_manifest(run.folder)
    assert manifest is not None
    report = _report(run, manifest, index_dir=index_dir, seconds=time.perf_counter() - started)
    log.info("indexed %s: %s", index_dir, report.to_dict() | {"errors": len(run.reading.problems)})
    return report


@dataclass
class _Run:
    """The state one indexing run's steps share (internal to this module, hence mutable)."""

    folder: Path
    wanted: generations.Wanted
    reading: Reading
    staging: Store | None = None  # the generation being written; begun at the first change
    resumed: bool = False
    known: dict[str, str] = field(default_factory=dict)  # article id -> content hash at the start

    @property
    def counts(self) -> dict[str, int]:
        return self.reading.counts

    def writable(self) -> Store:
        """The staging generation, begun now if this is the run's first change."""
        if self.staging is None:
            self.staging = generations.begin(self.folder, self.wanted, rebuild=False)
        return self.staging


def _start(run: _Run, *, rebuild: bool, repair: bool) -> None:
    """Refuse changed settings or damage (or, with ``repair``, rebuild), resume or begin the staging
    generation, read the known hashes."""
    if rebuild or repair:
        generations.set_aside_damaged_manifest(run.folder)
    live = generations.live_manifest(run.folder)
    if live is not None and not rebuild:
        generations.refuse_changed_settings(run.folder, live, run.wanted)
        if damage := generations.live_damage(run.folder, live):
            if not repair:
                raise StoreError(integrity.damage_message(damage))
            log.warning("%s: the live index is damaged (%s); rebuilding it from the archive", run.folder, "; ".join(damage))
            rebuild = True
    run.staging = generations.resume(run.folder, run.wanted, rebuild=rebuild)
    run.resumed = run.staging is not None
    # Eagerly for a new index, a rebuild, or an index from before generations (its data
    # sit beside the manifest and may need the repair below); otherwise only at the first change.
    if run.staging is None and (rebuild or live is None or live.generation == ""):
        run.staging = generations.begin(run.folder, run.wanted, rebuild=rebuild)
    if run.staging is not None:
        _reconcile(run.staging)
        run.known = run.staging.article_hashes()
    else:
        with Store.open(run.folder, check=False) as reader:  # reads SQLite only, not the vectors
            run.known = reader.article_hashes()


def _index_batches(
    run: _Run, items: Iterable[tuple[Article, list[Chunk]]], embedder: Embedder, *,
    batch_size: int, checkpoint_seconds: float, on_batch: Callable[[], None] | None = None,
) -> None:
    """Embed and store ``items`` batch by batch (one transaction each), checkpointing FAISS as it goes."""
    last_checkpoint = time.monotonic()
    # Big batches: encode() sorts by length within a call, so fewer calls mean less padding.
    # split: a long article goes in parts, so checkpoints (and a resumed run) fall inside it too.
    for batch in prefetch(batches(items, max_chunks=batch_size * 32, split=True)):
        staging = run.writable()
        texts = [c.text for _, chunks in batch for c in chunks]
        spans = [sentences_for(chunks) for _, chunks in batch]
        sentence_texts = [s.text for found in spans for s in found]
        # One call for both: encode() sorts all texts by length, so chunks and sentences pad little.
        vectors = np.asarray(embedder.embed_passages(texts + sentence_texts, batch_size=batch_size), dtype=np.float32)
        staging.add(batch, vectors[: len(texts)], spans, vectors[len(texts) :])
        run.counts["indexed"] += sum(1 for article, _ in batch if not article.partial)
        run.counts["chunks"] += len(texts)
        run.counts["sentences"] += len(sentence_texts)
        if time.monotonic() - last_checkpoint >= checkpoint_seconds:
            generations.checkpoint(staging)
            last_checkpoint = time.monotonic()
        if on_batch is not None:
            on_batch()


def _add_missing_sentences(run: _Run, embedder: Embedder, *, batch_size: int) -> None:
    """Embed the sentences of articles stored without them (an index of format 1): the upgrade to
    sentence vectors, which re-embeds no chunk; committed per batch, so a killed upgrade resumes."""
    live = generations.live_manifest(run.folder)
    if run.staging is None and (live is None or live.format_version >= FORMAT_VERSION):
        return
    staging = run.writable()
    missing = staging.articles_without_sentences()
    for lo in range(0, len(missing), batch_size * 8):
        spans = {a: sentences_for(chunks) for a, chunks in staging.article_chunks(missing[lo : lo + batch_size * 8]).items()}
        texts = [s.text for found in spans.values() for s in found]
        vectors = (np.asarray(embedder.embed_passages(texts, batch_size=batch_size), dtype=np.float32) if texts
                   else np.zeros((0, embedder.dimension), dtype=np.float32))
        ends = np.cumsum([len(found) for found in spans.values()])
        staging.add_sentences({a: (found, vectors[end - len(found) : end]) for (a, found), end in zip(spans.items(), ends)})
        run.counts["sentences"] += len(texts)
        log.info("%s: added sentence vectors to %d of %d articles", run.folder, min(lo + batch_size * 8, len(missing)), len(missing))
    staging.manifest = replace(staging.manifest, format_version=FORMAT_VERSION)


def _prune(run: _Run, archive: Path, shard: Shard | None) -> None:
    """Remove the articles (of ``shard``) the index had at the start that this run did not read."""
    gone = sorted(a for a in set(run.known) - set(run.reading.seen) if shard is None or shard.holds(a))
    if gone:
        run.writable().delete_articles(gone)
        run.counts["removed"] = len(gone)
        log.info("%s: pruned %d articles no longer in %s", run.folder, len(gone), archive)


def _drop_partial(run: _Run) -> None:
    """Remove articles still stored in part (an interrupted run's, no longer in the archive or over
    the size limit now): a published generation holds whole articles only."""
    if run.staging is None or not (left := run.staging.partial_articles()):
        return
    log.warning("%s: removing %d articles an interrupted run stored in part and this run did not finish (e.g. %r)",
                run.folder, len(left), next(iter(left)))
    run.staging.delete_articles(sorted(left))


def _report(run: _Run, manifest: Manifest, *, index_dir: Path, seconds: float) -> IndexReport:
    counts = run.counts
    return IndexReport(
        index_dir=str(index_dir),
        articles_read=counts["read"],
        articles_indexed=counts["indexed"],
        articles_unchanged=counts["unchanged"],
        articles_skipped=sum(1 for p in run.reading.problems if p.skipped),
        articles_removed=counts["removed"],
        chunks_embedded=counts["chunks"],
        sentences_embedded=counts["sentences"],
        articles_total=manifest.articles,
        chunks_total=manifest.chunks,
        sentences_total=manifest.sentences,
        seconds=seconds,
        generation=manifest.generation,
        resumed=run.resumed,
        errors=tuple(run.reading.problems),
    )


def delete_folder_articles(index_dir: Path, article_ids: Sequence[str]) -> DeleteReport:
    """Remove articles (with their chunks and vectors) from the index, as one atomic swap.

    Refused (StoreError) while an interrupted indexing run's generation waits to be resumed:
    a delete never discards one.
    """
    folder = Path(index_dir)
    with generations.writer_lock(folder):
        live = generations.live_manifest(folder)
        if live is not None and (damage := generations.live_damage(folder, live)):
            raise StoreError(integrity.damage_message(damage))
        with Store.open(folder, check=False) as reader:
            present = set(reader.article_hashes())
        wanted_ids = list(dict.fromkeys(article_ids))
        found = [a for a in wanted_ids if a in present]
        unknown = tuple(a for a in wanted_ids if a not in present)
        chunks_removed = 0
        manifest = generations.live_manifest(folder)
        if found:
            assert manifest is not None
            wanted = generations.Wanted(manifest.model, manifest.dimension, manifest.chunk_tokens, manifest.chunk_overlap)
            staging = generations.begin(folder, wanted, rebuild=False)
            chunks_removed = staging.delete_articles(found)
            manifest = generations.publish(staging)
    assert manifest is not None
    return DeleteReport(tuple(found), unknown, chunks_removed, manifest.articles, manifest.chunks)


def _save_progress(store: Store) -> None:
    """Interrupted (Ctrl-C, an error): keep what was embedded so the next run resumes it."""
    try:
        generations.checkpoint(store)
        log.warning("%s: progress saved in %s; run the same command again to resume", store.folder, store.manifest.generation)
    except Exception as exc:  # noqa: BLE001 - the run is failing anyway; report, do not mask the cause
        log.warning("%s: could not save progress: %s", store.folder, exc)
    finally:
        store.close()


def _reconcile(store: Store) -> None:
    """Repair a staging generation a killed run left: SQLite commits per batch, FAISS per checkpoint.

    Articles whose chunks have no vector, or that lack some of their chunks, are dropped
    (the run re-indexes them, since their hash is gone), except a long article stored in parts,
    which keeps its chunks up to the first without a vector (the run goes on from there); vectors
    without a chunk are removed.
    """
    faiss_ids, chunk_ids = set(store.faiss_ids().tolist()), set(store.chunk_ids().tolist())
    orphans = faiss_ids - chunk_ids
    if orphans:
        log.warning("%s: removing %d vectors without a chunk", store.data_dir, len(orphans))
        store.vectors.remove(np.array(sorted(orphans), dtype=np.int64))
    missing = chunk_ids - faiss_ids
    stale = set(store.articles_of_chunks(sorted(missing))) if missing else set()
    parts = store.partial_articles()
    for article_id in sorted(stale & set(parts)):
        keep = store.first_chunk_without(article_id, missing)
        log.warning("%s: %s, stored in part, keeps its first %d chunks; the run goes on from there", store.data_dir, article_id, keep)
        store.truncate_article(article_id, keep)
    stale -= set(parts)
    stale |= set(store.incomplete_articles())
    if stale:
        log.warning("%s: %d articles lost vectors or chunks in an interrupted run; re-indexing them", store.data_dir, len(stale))
        store.delete_articles(sorted(stale))
    if orphans or stale or missing:
        generations.checkpoint(store)
