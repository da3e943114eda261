"""`qabot check` and `qabot stats` of a folder index: what it holds and whether it is sound.

The check reads only; it never repairs (a re-run of ``qabot index`` does that). Each
finding is one line a person can act on. Neither loads the vectors: the FAISS ids, size and
dimension are read from the file alone (:func:`qabot.store.vectors.peek`).

The full-text index gets three tests, since FTS5 corruption otherwise shows only as
questions quietly losing their keyword hits: FTS5's own ``integrity-check`` with rank 1 (the
index structure, and the index against the chunk texts), one index entry per chunk, and a
probe that finds sampled chunks by words of their own text (deleted ``chunks_fts_idx`` rows
pass both FTS5 checks but hide most matches).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from qabot.errors import StoreError
from qabot.store import generations, integrity, sentences
from qabot.store.interface import CheckReport
from qabot.store.manifest import DB_NAME, FAISS_NAME, read_manifest
from qabot.store.store import Store


def check_folder(folder: Path) -> CheckReport:
    """Verify a folder index's live generation: manifest, checksums, SQLite integrity, FAISS ids ==
    chunk rowids, counts against the manifest, per-article chunk and sentence counts, the FTS index."""
    folder = Path(folder)
    report = CheckReport(index=str(folder))
    try:
        manifest = read_manifest(folder)
    except StoreError as exc:
        report.problems.append(str(exc))
        _add_repair(report)
        return report
    report.generation = manifest.generation
    data_dir = folder / manifest.generation if manifest.generation else folder
    report.problems.extend(integrity.checksum_problems(data_dir, manifest.checksums))
    if any(p.startswith(f"{data_dir / DB_NAME}:") for p in report.problems):
        _add_repair(report)  # not opened: SQLite could take a damaged file for one to write to
        return report
    try:
        store = Store.open_data(folder, manifest)
    except StoreError as exc:
        report.problems.append(str(exc))
        _add_repair(report)
        return report
    with store:
        try:
            _check_sqlite(store, report)
        except (sqlite3.DatabaseError, MemoryError) as exc:  # damage past what quick_check reported
            report.problems.append(f"{data_dir / DB_NAME}: {exc or 'SQLite ran out of memory reading it'}")
        try:
            report.problems.extend(store.vector_problems() + store.id_problems())
            if not manifest.checksums:  # nothing recorded: damaged vectors show as norms far from 1
                report.problems.extend(integrity.vector_norm_problems(store.vectors, source=str(data_dir / FAISS_NAME)))
                report.problems.extend(_sentence_norm_problems(store))
        except StoreError as exc:  # an unreadable vector file
            report.problems.append(str(exc))
        except sqlite3.DatabaseError as exc:
            report.problems.append(f"{data_dir / DB_NAME}: {exc}")
        try:
            report.counts = store.counts()
        except (StoreError, sqlite3.DatabaseError) as exc:
            report.problems.append(f"cannot count what the index holds: {exc}")
        else:
            manifest_counts = {k: getattr(manifest, k) for k in report.counts}
            if manifest_counts != report.counts:
                report.problems.append(f"manifest counts {manifest_counts} != actual {report.counts}")
    _add_repair(report)
    staging = generations.staging_info(folder)
    if staging is not None:
        report.notes.append(
            f"an interrupted run left {staging.generation} (staging.json); the next `qabot index` with the same "
            "settings resumes it; the live index is not affected"
        )
    return report


def _add_repair(report: CheckReport) -> None:
    if report.problems:
        report.notes.append(f"to repair the index: {integrity.REPAIR}")


def _sentence_norm_problems(store: Store) -> list[str]:
    ids, vectors = sentences.all_vectors(store.db, store.manifest.dimension)
    return integrity.norm_problems(vectors, ids, source=f"{store.data_dir / DB_NAME} (sentence vectors)")


def _check_sqlite(store: Store, report: CheckReport) -> None:
    db = store.db
    if problems := integrity.quick_check_problems(db.conn, store.data_dir / DB_NAME):
        report.problems.extend(problems)
        return
    dangling = db.execute("select count(*) from chunks where article_id not in (select id from articles)").fetchone()[0]
    if dangling:
        report.problems.append(f"{dangling} chunks belong to no article")
    if wrong := store.incomplete_articles():
        report.problems.append(f"{len(wrong)} articles whose n_chunks does not match their chunks (e.g. {wrong[0]!r})")
    report.problems.extend(store.sentence_problems())
    _check_fts(store, report)


def _check_fts(store: Store, report: CheckReport) -> None:
    """FTS5's own check (structure, and index against the chunk texts), one entry per chunk, a probe.

    Garbage in the index's segments can make SQLite fail with SQLITE_NOMEM (a MemoryError in
    Python: a length read from garbage) rather than SQLITE_CORRUPT; both are reported as damage.
    """
    try:
        _fts_checks(store, report)
    except (sqlite3.DatabaseError, MemoryError) as exc:
        reason = str(exc) or "SQLite ran out of memory reading it (garbage in its segments)"
        report.problems.append(f"full-text index: {reason}; rebuild the index with `qabot index ARCHIVE --rebuild`")


def _fts_checks(store: Store, report: CheckReport) -> None:
    db = store.db
    db.execute("insert into chunks_fts(chunks_fts, rank) values('integrity-check', 1)")
    in_fts = {r[0] for r in db.execute("select id from chunks_fts_docsize")}
    in_chunks = {r[0] for r in db.execute("select id from chunks")}
    if in_fts != in_chunks:
        report.problems.append(
            f"full-text index out of step: {len(in_chunks - in_fts)} chunks not indexed, {len(in_fts - in_chunks)} stale entries"
        )
        return
    if lost := _fts_probe(store, sorted(in_chunks)):
        report.problems.append(
            f"full-text index: {len(lost)} sampled chunks are not found by their own words (e.g. chunk {lost[0]}); "
            "rebuild the index with `qabot index ARCHIVE --rebuild`"
        )


_TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits, as FTS5's unicode61 tokeniser splits text
PROBE_CHUNKS = 100


def _fts_probe(store: Store, chunk_ids: list[int]) -> list[int]:
    """The sampled chunks (evenly spread, up to PROBE_CHUNKS) that a search for a word of their own misses."""
    sample = chunk_ids[:: max(1, len(chunk_ids) // PROBE_CHUNKS)][:PROBE_CHUNKS]
    sql = "select 1 from chunks_fts where chunks_fts match ? and rowid = ?"
    lost = []
    for chunk_id, row in sorted(store.chunk_rows(sample).items()):
        words = [w for w in _TOKEN.findall(row["text"]) if len(w) >= 3 and w.isascii() and w.isalpha()]
        probes = sorted({words[0], words[len(words) // 2], words[-1]}) if words else []
        if any(store.db.execute(sql, [f'"{word}"', chunk_id]).fetchone() is None for word in probes):
            lost.append(chunk_id)
    return lost


def folder_stats(folder: Path) -> dict[str, Any]:
    """Articles, chunks, vectors, dates, sources, size on disk, model, generation of a folder index."""
    folder = Path(folder)
    with Store.open(folder, check=False) as store:
        first, last = store.date_range()
        manifest = store.manifest
        live_bytes = sum(p.stat().st_size for p in store.data_dir.iterdir() if p.is_file())
        result: dict[str, Any] = {
            "index": str(folder), **store.counts(), "first_date": first, "last_date": last,
            "sources": store.sources(), "model": manifest.model, "dimension": manifest.dimension,
            "chunk_tokens": manifest.chunk_tokens, "chunk_overlap": manifest.chunk_overlap,
            "vector_index": store.vector_info().kind, "generation": manifest.generation,
            "updated_at": manifest.updated_at, "bytes_on_disk": live_bytes,
            "bytes_on_disk_all_generations": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
        }
    staging = generations.staging_info(folder)
    result["interrupted_run"] = staging.generation if staging else None
    return result
