"""The index folder: the FAISS-id == chunk-rowid contract, manifest checks, atomic saves."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from qabot.documents import Article, Chunk
from qabot.errors import IndexMismatchError, StoreError
from qabot.store.store import FAISS_NAME, MANIFEST_NAME, Store, read_manifest


def _article(article_id: str, *sentences: str) -> tuple[Article, list[Chunk]]:
    text = " ".join(sentences)
    chunks, pos = [], 0
    for i, sentence in enumerate(sentences):
        start = text.index(sentence, pos)
        chunks.append(Chunk(article_id, i, sentence, start, start + len(sentence), len(sentence.split())))
        pos = start + len(sentence)
    return Article(id=article_id, text=text, title=sentences[0], date="2025-08-15"), chunks


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path):
    s = Store.create(tmp_path / "ix", model="m", dimension=8, chunk_tokens=200, chunk_overlap=1)
    yield s
    s.close()


def test_faiss_ids_are_chunk_rowids(store):
    ids = store.add([_article("a", "Eins.", "Zwei."), _article("b", "Drei.")], _vectors(3))
    rows = [r[0] for r in store.db.execute("select id from chunks order by id")]
    assert sorted(ids) == rows
    assert sorted(store.faiss_ids().tolist()) == rows
    assert store.vectors.kind == "flat"


def test_search_returns_the_rowid_of_the_matching_chunk(store):
    vectors = _vectors(3)
    ids = store.add([_article("a", "Eins.", "Zwei."), _article("b", "Drei.")], vectors)
    hits = store.search_vectors(vectors[2], 1)
    assert hits[0][0] == ids[2]
    assert store.chunk_rows([ids[2]])[ids[2]]["text"] == "Drei."


def test_replacing_an_article_never_reuses_ids_and_keeps_step(store):
    first = store.add([_article("a", "Eins.", "Zwei.")], _vectors(2))
    second = store.add([_article("a", "Eins neu.")], _vectors(1, seed=1))
    assert not set(first) & set(second)
    assert store.counts() == {"articles": 1, "chunks": 1, "vectors": 1}
    assert store.id_problems() == []


def test_delete_removes_chunks_vectors_and_fts_rows(store):
    store.add([_article("a", "Putin landet in Alaska."), _article("b", "Kochrezept.")], _vectors(2))
    store.delete_articles(["a"])
    assert store.counts() == {"articles": 1, "chunks": 1, "vectors": 1}
    assert store.db.execute("select count(*) from chunks_fts where chunks_fts match 'alaska'").fetchone()[0] == 0


def test_reopen_round_trip_and_manifest_counts(store, tmp_path):
    store.add([_article("a", "Eins.", "Zwei.")], _vectors(2))
    store.save()
    store.close()
    reopened = Store.open(tmp_path / "ix", model="m")
    assert reopened.counts() == {"articles": 1, "chunks": 2, "vectors": 2}
    manifest = read_manifest(tmp_path / "ix")
    assert (manifest.articles, manifest.chunks, manifest.vectors, manifest.dimension) == (1, 2, 2, 8)
    reopened.close()


def test_open_refuses_another_model(store, tmp_path):
    store.save()
    with pytest.raises(IndexMismatchError, match="built with model 'm'"):
        Store.open(tmp_path / "ix", model="other-model")


def test_open_accepts_the_owner_prefixed_model_name(tmp_path):
    Store.create(tmp_path / "ix", model="multilingual-e5-small", dimension=8, chunk_tokens=200, chunk_overlap=1).close()
    Store.open(tmp_path / "ix", model="intfloat/multilingual-e5-small").close()


def test_open_detects_faiss_and_sqlite_disagreeing(store, tmp_path):
    store.add([_article("a", "Eins.", "Zwei.")], _vectors(2))
    store.save()
    store.close()
    with sqlite3.connect(tmp_path / "ix" / "qabot.db") as conn:
        conn.execute("delete from chunks where idx = 1")
    with pytest.raises(StoreError, match="1 vectors without a chunk"):
        Store.open(tmp_path / "ix", model="m")


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no index at"):
        Store.open(tmp_path / "nothing")


def test_corrupt_faiss_file_is_a_clear_error(store, tmp_path):
    store.save()
    store.close()
    (tmp_path / "ix" / FAISS_NAME).write_bytes(b"garbage")
    with pytest.raises(StoreError, match="unreadable FAISS index"):
        Store.open(tmp_path / "ix")


def test_manifest_from_the_future_is_refused(store, tmp_path):
    store.save()
    path = tmp_path / "ix" / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="newer than this qabot"):
        read_manifest(tmp_path / "ix")


def test_save_leaves_no_temporary_files(store, tmp_path):
    store.add([_article("a", "Eins.")], _vectors(1))
    store.save()
    assert sorted(p.name for p in (tmp_path / "ix").iterdir() if p.name.endswith(".tmp")) == []


def test_schema_is_made_by_migrations(store):
    applied = [r[0] for r in store.db.execute("select name from _sqlite_migrations")]
    assert applied == ["m001_articles_and_chunks"]
    assert {"articles", "chunks", "chunks_fts"} <= set(store.db.table_names())


def test_saved_files_are_readable_by_other_users_as_the_umask_allows(tmp_path):
    import os
    import stat

    store = Store.create(tmp_path / "ix", model="m", dimension=8, chunk_tokens=200, chunk_overlap=1)
    store.close()
    mask = os.umask(0)
    os.umask(mask)
    for name in (MANIFEST_NAME, FAISS_NAME):
        assert stat.S_IMODE((tmp_path / "ix" / name).stat().st_mode) == 0o666 & ~mask
