"""The folder backend (the default): an index folder of generations, each SQLite + FAISS.

:class:`FolderBackend` is :class:`qabot.store.interface.Backend` for a folder path: readers open
the live generation (:class:`qabot.store.store.Store`); every write (an indexing run, a delete, a
copy into it) holds the writer lock and builds a staging generation that is published atomically
(:mod:`qabot.store.generations`, :mod:`qabot.store.folder_run`). Its reload signal is the
manifest file itself: a publish replaces it (new inode and mtime).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from qabot.errors import StoreError
from qabot.store import checks, generations, integrity
from qabot.store.copying import Batch, article_from_row, assemble
from qabot.store.folder_run import FolderRun
from qabot.store.interface import Batches, CheckReport, DeleteReport, IndexWriter, Wanted
from qabot.store.manifest import MANIFEST_NAME, Manifest, is_index, read_manifest
from qabot.store.sentences import from_blobs
from qabot.store.store import Store

log = logging.getLogger(__name__)


class FolderBackend:
    """An index in the folder ``path`` (which need not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = str(path)

    @classmethod
    def at(cls, path: Path, **_server_options: object) -> FolderBackend:
        """For the factory (a folder has no server: pool size and timeout do not apply)."""
        return cls(path)

    def __repr__(self) -> str:
        return f"FolderBackend({self.name!r})"

    def exists(self) -> bool:
        return is_index(self.path)

    def manifest(self) -> Manifest:
        return read_manifest(self.path)

    def open_reader(self, *, model: str | None = None) -> Store:
        return Store.open(self.path, model=model)

    @contextmanager
    def indexing(self, wanted: Wanted, *, rebuild: bool, repair: bool, checkpoint_seconds: float) -> Iterator[FolderRun]:
        """Under the writer lock, a :class:`FolderRun`; left without publishing (an error, Ctrl-C), its
        progress is saved for the next run."""
        with generations.writer_lock(self.path):
            run = FolderRun(self.path, wanted, rebuild=rebuild, repair=repair, checkpoint_seconds=checkpoint_seconds)
            try:
                yield run
            finally:
                run.abort()  # nothing to do once published

    def delete(self, article_ids: Sequence[str]) -> DeleteReport:
        """Remove articles as one atomic swap; refused (StoreError) while an interrupted indexing run's
        generation waits to be resumed (a delete never discards one) or the live index is damaged."""
        with generations.writer_lock(self.path):
            live = generations.live_manifest(self.path)
            if live is not None and (damage := generations.live_damage(self.path, live)):
                raise StoreError(integrity.damage_message(damage))
            with Store.open(self.path, check=False) as reader:
                present = set(reader.article_hashes())
            wanted_ids = list(dict.fromkeys(article_ids))
            found = [a for a in wanted_ids if a in present]
            chunks_removed = 0
            manifest = generations.live_manifest(self.path)
            if found:
                assert manifest is not None
                wanted = Wanted(manifest.model, manifest.dimension, manifest.chunk_tokens, manifest.chunk_overlap)
                staging = generations.begin(self.path, wanted, rebuild=False)
                chunks_removed = staging.delete_articles(found)
                manifest = generations.publish(staging)
        assert manifest is not None
        unknown = tuple(a for a in wanted_ids if a not in present)
        return DeleteReport(tuple(found), unknown, chunks_removed, manifest.articles, manifest.chunks)

    def check(self) -> CheckReport:
        return checks.check_folder(self.path)

    def stats(self) -> dict[str, Any]:
        return checks.folder_stats(self.path)

    def version(self) -> tuple[int, ...] | None:
        """Identifies the manifest as written: a publish replaces it atomically (new inode, mtime).
        Its ``updated_at`` is not enough on its own: it has whole seconds only."""
        try:
            info = (self.path / MANIFEST_NAME).stat()
        except OSError:  # missing for a moment: no version, so nothing is reloaded yet
            return None
        return (info.st_mtime_ns, info.st_ino, info.st_size)

    @contextmanager
    def copy_source(self) -> Iterator[tuple[Manifest, Batches]]:
        with Store.open(self.path) as store:
            yield store.manifest, lambda n: _batches(store, n)

    @contextmanager
    def copy_destination(self, manifest: Manifest) -> Iterator[IndexWriter]:
        """A new generation with ``manifest``'s settings in a new or empty folder, published when the copy
        ends without an error (else removed)."""
        if is_index(self.path) or (self.path.exists() and any(self.path.iterdir())):
            raise StoreError(f"{self.path}: exists and is not empty; copy into a new folder")
        m = manifest
        with generations.writer_lock(self.path):
            staging = generations.begin(self.path, Wanted(m.model, m.dimension, m.chunk_tokens, m.chunk_overlap), rebuild=False)
            try:
                yield staging
            except BaseException:
                staging.close()
                generations.abandon(self.path)
                raise
            generations.publish(staging)


_ARTICLE_COLUMNS = "id, title, date, url, source, path, line, text"


def _batches(store: Store, n: int) -> Iterator[Batch]:
    """Every article with its chunks, sentences and stored vectors, ``n`` articles at a time, by id."""
    last = ""
    while True:
        rows = store.db.execute(f"select {_ARTICLE_COLUMNS} from articles where id > ? order by id limit ?", [last, n]).fetchall()
        if not rows:
            return
        articles = [article_from_row(r) for r in rows]
        last = articles[-1].id
        ids = [a.id for a in articles]
        marks = ",".join("?" * len(ids))
        order = {a: i for i, a in enumerate(ids)}
        chunk_rows = store.db.execute(f'select id, article_id, idx, text, start, "end", n_tokens from chunks where article_id in ({marks})', ids).fetchall()
        chunk_rows.sort(key=lambda r: (order[r[1]], r[2]))
        vectors = store.vectors_for([r[0] for r in chunk_rows]) if chunk_rows else np.zeros((0, store.manifest.dimension), np.float32)
        sentence_rows = store.db.execute(f'select article_id, start, "end", vector from sentences where article_id in ({marks})', ids).fetchall()
        sentence_rows.sort(key=lambda r: (order[r[0]], r[1], r[2]))
        yield assemble(articles, [r[1:] for r in chunk_rows], vectors, [r[:3] for r in sentence_rows],
                       from_blobs([r[3] for r in sentence_rows], store.manifest.dimension))


__all__ = ["FolderBackend"]
