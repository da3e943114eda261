"""`qabot check` and `qabot stats`: what an index holds and whether it is sound.

The check reads only; it never repairs (a re-run of ``qabot index`` does that). Each
finding is one line a person can act on.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qabot.store import generations
from qabot.errors import StoreError
from qabot.store.store import DB_NAME, Store, read_manifest


@dataclass
class CheckReport:
    """``problems`` make the index unusable or wrong; ``notes`` are worth knowing."""

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


def check_index(folder: Path) -> CheckReport:
    """Verify the live generation: manifest, SQLite integrity, FAISS ids == chunk rowids,
    counts against the manifest, per-article chunk counts, and the FTS index."""
    folder = Path(folder)
    report = CheckReport(index=str(folder))
    try:
        manifest = read_manifest(folder)
    except StoreError as exc:
        report.problems.append(str(exc))
        return report
    report.generation = manifest.generation
    try:
        store = Store.open_data(folder, manifest)
    except StoreError as exc:
        report.problems.append(str(exc))
        return report
    with store:
        _check_sqlite(store, report)
        report.problems.extend(store.id_problems())
        report.counts = store.counts()
        manifest_counts = {k: getattr(manifest, k) for k in report.counts}
        if manifest_counts != report.counts:
            report.problems.append(f"manifest counts {manifest_counts} != actual {report.counts}")
        if store.vectors.d != manifest.dimension:
            report.problems.append(f"vector dimension {store.vectors.d} != manifest dimension {manifest.dimension}")
    staging = generations.staging_info(folder)
    if staging is not None:
        report.notes.append(
            f"an interrupted run left {staging.generation} (staging.json); the next `qabot index` with the same "
            "settings resumes it; the live index is not affected"
        )
    return report


def _check_sqlite(store: Store, report: CheckReport) -> None:
    db = store.db
    try:
        result = [r[0] for r in db.execute("pragma quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"{store.data_dir / DB_NAME}: {exc}")
        return
    if result != ["ok"]:
        report.problems.append(f"{store.data_dir / DB_NAME}: sqlite quick_check: {'; '.join(result[:5])}")
    dangling = db.execute("select count(*) from chunks where article_id not in (select id from articles)").fetchone()[0]
    if dangling:
        report.problems.append(f"{dangling} chunks belong to no article")
    if wrong := store.incomplete_articles():
        report.problems.append(f"{len(wrong)} articles whose n_chunks does not match their chunks (e.g. {wrong[0]!r})")
    _check_fts(store, report)


def _check_fts(store: Store, report: CheckReport) -> None:
    """The FTS index has exactly one entry per chunk, and FTS5's own structure check passes."""
    db = store.db
    try:
        db.execute("insert into chunks_fts(chunks_fts) values('integrity-check')")
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"full-text index: {exc}")
        return
    in_fts = {r[0] for r in db.execute("select id from chunks_fts_docsize")}
    in_chunks = {r[0] for r in db.execute("select id from chunks")}
    if in_fts != in_chunks:
        report.problems.append(
            f"full-text index out of step: {len(in_chunks - in_fts)} chunks not indexed, {len(in_fts - in_chunks)} stale entries"
        )


def index_stats(folder: Path) -> dict[str, Any]:
    """Articles, chunks, vectors, dates, sources, size on disk, model, generation."""
    folder = Path(folder)
    with Store.open(folder, check=False) as store:
        first, last = store.date_range()
        manifest = store.manifest
        live_bytes = sum(p.stat().st_size for p in store.data_dir.iterdir() if p.is_file())
        result: dict[str, Any] = {
            "index": str(folder), **store.counts(), "first_date": first, "last_date": last,
            "sources": store.sources(), "model": manifest.model, "dimension": manifest.dimension,
            "chunk_tokens": manifest.chunk_tokens, "chunk_overlap": manifest.chunk_overlap,
            "vector_index": store.vectors.kind, "generation": manifest.generation,
            "updated_at": manifest.updated_at, "bytes_on_disk": live_bytes,
            "bytes_on_disk_all_generations": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
        }
    staging = generations.staging_info(folder)
    result["interrupted_run"] = staging.generation if staging else None
    return result
