"""The index folder: the FAISS-id == chunk-rowid contract, manifest checks, atomic saves,
vectors loaded only when needed, keyword search that reports its errors."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time

import numpy as np
import pytest

from qabot.documents import Article, Chunk
from qabot.errors import IndexMismatchError, StoreError
from qabot.ingest.chunking import chunk_sentences
from qabot.store import MANIFEST_NAME, Store, read_manifest
from qabot.store.manifest import FAISS_NAME
from qabot.store.store import keyword_search_sql
from qabot.store.vectors import VectorIndex


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


def _add(store: Store, items: list[tuple[Article, list[Chunk]]], vectors: np.ndarray) -> list[int]:
    """``store.add`` with each article's sentences (random unit vectors); the new chunks' rowids, in order."""
    spans = [chunk_sentences(chunks) for _, chunks in items]
    store.add(items, vectors, spans, _vectors(sum(len(s) for s in spans), dim=vectors.shape[1], seed=99))
    ids = [a.id for a, _ in items]
    sql = f"select id from chunks where article_id in ({','.join('?' * len(ids))}) order by id"
    return [r[0] for r in store.db.execute(sql, ids)]


@pytest.fixture
def store(tmp_path):
    s = Store.create(tmp_path / "ix", model="m", dimension=8, chunk_tokens=200, chunk_overlap=1)
    yield s
    s.close()


def test_faiss_ids_are_chunk_rowids(store):
    ids = _add(store, [_article("a", "Eins.", "Zwei."), _article("b", "Drei.")], _vectors(3))
    rows = [r[0] for r in store.db.execute("select id from chunks order by id")]
    assert sorted(ids) == rows
    assert sorted(store.faiss_ids().tolist()) == rows
    assert store.vectors.kind == "flat"


def test_search_returns_the_rowid_of_the_matching_chunk(store):
    vectors = _vectors(3)
    ids = _add(store, [_article("a", "Eins.", "Zwei."), _article("b", "Drei.")], vectors)
    hits = store.search_vectors(vectors[2], 1)
    assert hits[0][0] == ids[2]
    assert store.chunk_rows([ids[2]])[ids[2]]["text"] == "Drei."


def test_replacing_an_article_never_reuses_ids_and_keeps_step(store):
    first = _add(store, [_article("a", "Eins.", "Zwei.")], _vectors(2))
    second = _add(store, [_article("a", "Eins neu.")], _vectors(1, seed=1))
    assert not set(first) & set(second)
    assert store.counts() == {"articles": 1, "chunks": 1, "vectors": 1, "sentences": 0}
    assert store.id_problems() == []


def test_delete_removes_chunks_vectors_and_fts_rows(store):
    _add(store, [_article("a", "Putin landet in Alaska."), _article("b", "Kochrezept.")], _vectors(2))
    store.delete_articles(["a"])
    assert store.counts() == {"articles": 1, "chunks": 1, "vectors": 1, "sentences": 0}
    assert store.db.execute("select count(*) from chunks_fts where chunks_fts match 'alaska'").fetchone()[0] == 0


def test_reopen_round_trip_and_manifest_counts(store, tmp_path):
    _add(store, [_article("a", "Eins.", "Zwei.")], _vectors(2))
    store.save()
    store.close()
    reopened = Store.open(tmp_path / "ix", model="m")
    assert reopened.counts() == {"articles": 1, "chunks": 2, "vectors": 2, "sentences": 0}
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
    _add(store, [_article("a", "Eins.", "Zwei.")], _vectors(2))
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
    _add(store, [_article("a", "Eins.")], _vectors(1))
    store.save()
    assert sorted(p.name for p in (tmp_path / "ix").iterdir() if p.name.endswith(".tmp")) == []


def test_schema_is_made_by_migrations(store):
    applied = [r[0] for r in store.db.execute("select name from _sqlite_migrations")]
    assert applied == ["m001_articles_and_chunks", "m002_sentences"]
    assert {"articles", "chunks", "chunks_fts", "sentences"} <= set(store.db.table_names())


def test_saved_files_are_readable_by_other_users_as_the_umask_allows(tmp_path):
    import os
    import stat

    store = Store.create(tmp_path / "ix", model="m", dimension=8, chunk_tokens=200, chunk_overlap=1)
    store.close()
    mask = os.umask(0)
    os.umask(mask)
    for name in (MANIFEST_NAME, FAISS_NAME):
        assert stat.S_IMODE((tmp_path / "ix" / name).stat().st_mode) == 0o666 & ~mask


# -- vectors are read only when needed -----------------------------------------------------


@pytest.fixture
def saved(store, tmp_path):
    """An index on disk with two articles (three chunks); the creating store closed."""
    _add(store, [_article("a", "Putin landet in Alaska.", "Zwei."), _article("b", "Kochrezept mit Kartoffeln.")], _vectors(3))
    store.save()
    store.close()
    return tmp_path / "ix"


@pytest.fixture
def loads(monkeypatch):
    """Counts full reads of a vector file (VectorIndex.load), slowed a little to widen races."""
    calls = []
    original = VectorIndex.load.__func__

    def counting(cls, fh, **kwargs):
        calls.append(kwargs.get("source"))
        time.sleep(0.05)
        return original(cls, fh, **kwargs)

    monkeypatch.setattr(VectorIndex, "load", classmethod(counting))
    return calls


def test_reading_hashes_and_counts_never_reads_the_vector_file(saved):
    (saved / FAISS_NAME).write_bytes(b"garbage, not a FAISS index")
    with Store.open(saved, check=False) as store:
        assert store.article_hashes().keys() == {"a", "b"}
        assert store.chunk_rows([1])[1]["article_id"] == "a"
        assert not store.vectors_loaded
        with pytest.raises(StoreError, match="unreadable FAISS index"):
            store.vectors  # noqa: B018 - the first use is what reads the file


def test_open_checks_ids_and_counts_without_loading_the_vectors(saved, loads):
    with Store.open(saved, model="m") as store:  # check=True: the id contract is verified
        assert store.counts() == {"articles": 2, "chunks": 3, "vectors": 3, "sentences": 2}
        assert sorted(store.faiss_ids().tolist()) == store.chunk_ids().tolist()
        assert loads == [] and not store.vectors_loaded
        assert store.search_vectors(_vectors(3)[2], 1)[0][0] == 3
        assert len(loads) == 1 and store.vectors_loaded


def test_vectors_load_once_when_threads_ask_at_the_same_time(saved, loads):
    with Store.open(saved) as store:
        seen, barrier = [], threading.Barrier(8)

        def use() -> None:
            barrier.wait()
            seen.append(store.vectors)

        threads = [threading.Thread(target=use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(loads) == 1 and len({id(v) for v in seen}) == 1


def test_a_generation_removed_after_opening_still_loads(saved):
    store = Store.open(saved)
    (saved / FAISS_NAME).unlink()  # a writer's cleanup removed the generation this reader has open
    assert store.search_vectors(_vectors(3)[0], 1)[0][0] == 1
    store.close()


# -- keyword search ----------------------------------------------------------------------


def test_keyword_search_sql_is_parameterised():
    sql = keyword_search_sql()
    assert sql.count("?") == 2 and "bm25(chunks_fts)" in sql and "order by score desc" in sql


def test_keyword_search_returns_rowids_best_first(store):
    ids = _add(store, [_article("a", "Putin landet in Alaska.", "Alaska, Alaska, Alaska!"), _article("b", "Kochrezept.")], _vectors(3))
    hits = store.keyword_search('"alaska"', 5)
    assert [i for i, _ in hits] == [ids[1], ids[0]] and hits[0][1] > hits[1][1]
    assert store.keyword_search('"alaska"', 1) == hits[:1]
    assert store.keyword_search('"nirgends"', 5) == [] and store.keyword_search("", 5) == []


def test_a_malformed_match_is_logged_once_not_swallowed(store, caplog):
    _add(store, [_article("a", "Putin landet in Alaska.")], _vectors(1))
    with caplog.at_level(logging.WARNING, logger="qabot.store.store"):
        assert store.keyword_search('"unterminated', 5) == []
        assert store.keyword_search('"unterminated', 5) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "full-text search failed" in warnings[0].getMessage()


def test_a_broken_full_text_index_is_logged_and_gives_no_hits(saved, caplog):
    with sqlite3.connect(saved / "qabot.db") as conn:
        conn.execute("delete from chunks_fts_data where id > 1")  # FTS5's segments: corrupt
    with Store.open(saved) as store, caplog.at_level(logging.WARNING, logger="qabot.store.store"):
        assert store.keyword_search('"alaska"', 5) == []
    assert any("full-text search failed" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
