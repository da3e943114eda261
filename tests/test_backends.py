"""The backend seam, one set of tests for both backends: a folder and PostgreSQL + pgvector (a real
server on 127.0.0.1, tests/pg_server.py).

Every method of :class:`qabot.store.interface.Backend` (exists, manifest, open_reader, indexing with
its run's add / delete / publish, delete, check, stats, version, copy_source / copy_destination)
behaves the same wherever the index is; only what the seam documents differs (a folder publishes a
new generation and has a reload signal; a database commits each batch and has none).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qabot.errors import IndexMismatchError, StoreError
from qabot.ingest.chunking import chunk_sentences
from qabot.locations import PgUrl
from qabot.store.backends import BACKENDS, backend_for, scheme_of
from qabot.store.folder import FolderBackend
from qabot.store.interface import Wanted

from .test_store_contract import DIM, ITEMS, _article, _unit

WANTED = Wanted("m", DIM, 200, 1)


@pytest.fixture(params=["folder", "postgres"])
def where(request, tmp_path) -> Path | PgUrl:
    if request.param == "folder":
        return tmp_path / "ix"
    return PgUrl(request.getfixturevalue("pg_url"))


def _batch(items, seed: int = 0):
    spans = [chunk_sentences(chunks) for _, chunks in items]
    n_chunks, n_sentences = sum(len(c) for _, c in items), sum(len(s) for s in spans)
    return items, _unit(seed, n_chunks), spans, _unit(seed + 1000, n_sentences)


def _index(backend, items, seed: int = 0, *, delete: tuple[str, ...] = ()):
    with backend.indexing(WANTED, rebuild=False, repair=False, checkpoint_seconds=0) as run:
        stored = run.add(*_batch(items, seed))
        run.after_batch()
        if delete:
            run.delete_articles(delete)
        known = dict(run.known)
        manifest = run.publish()
    return stored, known, manifest


def test_the_factory_maps_each_location_to_its_backend(tmp_path):
    assert isinstance(backend_for(tmp_path / "ix"), FolderBackend) and backend_for(str(tmp_path / "ix")).name == str(tmp_path / "ix")
    pg = backend_for("postgresql://qabot:secret@127.0.0.1:5/news", pool_size=2, timeout=3)
    assert type(pg).__name__ == "PgBackend" and pg.name == "postgresql://qabot:***@127.0.0.1:5/news" and "secret" not in repr(pg)
    assert scheme_of(tmp_path) == "folder" and scheme_of(PgUrl("postgresql://h/db")) == "postgresql"
    assert set(BACKENDS) == {"folder", "postgresql"}


def test_an_index_is_made_added_to_read_and_published(where):
    backend = backend_for(where, pool_size=1, timeout=10)
    assert backend.exists() is False
    stored, known, manifest = _index(backend, ITEMS)
    assert stored == ["a1", "a2", "a3"] and known == {}
    assert backend.exists() is True
    assert (manifest.articles, manifest.chunks, manifest.sentences) == (3, 5, 5)
    assert (backend.manifest().model, backend.manifest().dimension) == ("m", DIM)
    with backend.open_reader(model="m") as reader:
        assert reader.counts() == {"articles": 3, "chunks": 5, "vectors": 5, "sentences": 5}
        vectors = _unit(0, 5)
        assert reader.chunk_rows([reader.search_vectors(vectors[2], 1)[0][0]]).popitem()[1]["article_id"] == "a2"
    with pytest.raises(IndexMismatchError):
        backend.open_reader(model="another-model")


def test_a_run_skips_what_is_stored_replaces_what_changed_and_prunes(where):
    backend = backend_for(where, pool_size=1, timeout=10)
    _index(backend, ITEMS)
    changed = _article("a1", "Putin landet erst um 11.30 Uhr.", "Trump wartet.")
    stored, known, manifest = _index(backend, [ITEMS[1], changed], seed=5, delete=("a3",))
    assert stored == ["a1"], "a2 is stored with the same content hash: left as it is, not counted"
    assert set(known) == {"a1", "a2", "a3"} and known["a2"] == ITEMS[1][0].content_hash
    assert (manifest.articles, manifest.chunks) == (2, 4)
    with backend.open_reader() as reader:
        assert reader.article_text("a1") == changed[0].text and reader.article_text("a3") is None


def test_other_settings_are_refused_and_a_rebuild_is_for_folders_only(where):
    backend = backend_for(where, pool_size=1, timeout=10)
    _index(backend, ITEMS)
    with pytest.raises(IndexMismatchError), backend.indexing(Wanted("other", DIM, 200, 1), rebuild=False, repair=False, checkpoint_seconds=0):
        pass
    if isinstance(where, PgUrl):
        with pytest.raises(StoreError, match="--rebuild is for index folders"), backend.indexing(WANTED, rebuild=True, repair=False, checkpoint_seconds=0):
            pass
    else:
        with backend.indexing(Wanted("other", DIM, 100, 0), rebuild=True, repair=False, checkpoint_seconds=0) as run:
            assert run.known == {}
            run.add(*_batch(ITEMS[:1]))
            assert run.publish().model == "other"


def test_an_error_in_a_run_keeps_what_was_committed_for_the_next(where):
    backend = backend_for(where, pool_size=1, timeout=10)
    _index(backend, ITEMS[:1])
    with pytest.raises(RuntimeError), backend.indexing(WANTED, rebuild=False, repair=False, checkpoint_seconds=3600) as run:
        run.add(*_batch(ITEMS[1:2], seed=3))
        raise RuntimeError("the embedder failed")
    with backend.indexing(WANTED, rebuild=False, repair=False, checkpoint_seconds=0) as run:
        # a folder resumes its staging generation; a database committed the batch
        assert set(run.known) == {"a1", "a2"} and run.resumed == (not isinstance(where, PgUrl))
        assert run.add(*_batch(ITEMS[1:2], seed=3)) == []
        assert run.publish().articles == 2


def test_delete_check_and_stats_say_the_same_on_both(where):
    backend = backend_for(where, pool_size=1, timeout=10)
    _index(backend, ITEMS)
    report = backend.check()
    assert report.ok and report.counts == {"articles": 3, "chunks": 5, "vectors": 5, "sentences": 5}, report.problems
    deleted = backend.delete(["a2", "nope", "a2"])
    assert (deleted.removed, deleted.unknown, deleted.chunks_removed, deleted.articles_total, deleted.chunks_total) == (("a2",), ("nope",), 2, 2, 3)
    stats = backend.stats()
    assert {k: stats[k] for k in ("articles", "chunks", "vectors", "model", "dimension", "chunk_tokens")} == {
        "articles": 2, "chunks": 3, "vectors": 3, "model": "m", "dimension": DIM, "chunk_tokens": 200}
    assert stats["first_date"] == "2025-07-01" and stats["index"] == backend.name
    assert backend.check().ok


def test_the_reload_signal_changes_on_a_folder_publish_and_a_database_has_none(where):
    backend = backend_for(where, pool_size=1, timeout=10)
    assert backend.version() is None  # no index yet
    _index(backend, ITEMS[:1])
    first = backend.version()
    _index(backend, ITEMS[1:])
    if isinstance(where, PgUrl):
        assert first is None and backend.version() is None  # readers see each batch as it commits
    else:
        assert first is not None and backend.version() not in (None, first)


@pytest.mark.parametrize("direction", ["folder-to-postgres", "postgres-to-folder"])
def test_copy_moves_everything_with_its_vectors_either_way(tmp_path, pg_url, direction):
    folder, url = tmp_path / "ix", PgUrl(pg_url)
    source, destination = (folder, url) if direction == "folder-to-postgres" else (url, folder)
    _index(backend_for(source, pool_size=1), ITEMS)
    src, dst = backend_for(source, pool_size=1), backend_for(destination, pool_size=1)
    with src.copy_source() as (manifest, read), dst.copy_destination(manifest) as write:
        for batch in read(2):
            assert write.add(batch.items, batch.chunk_vectors, batch.spans, batch.sentence_vectors) == [a.id for a, _ in batch.items]
    with src.open_reader() as a, dst.open_reader() as b:
        assert a.counts() == b.counts() and a.article_hashes() == b.article_hashes()
        probe = _unit(0, 5)[3]
        assert [a.chunk_rows([i])[i]["text"] for i, _ in a.search_vectors(probe, 2)] == [b.chunk_rows([i])[i]["text"] for i, _ in b.search_vectors(probe, 2)]
        assert np.allclose([s for _, s in a.search_vectors(probe, 2)], [s for _, s in b.search_vectors(probe, 2)], atol=2e-3)
    with pytest.raises(StoreError), dst.copy_destination(manifest):
        pass  # not empty any more
