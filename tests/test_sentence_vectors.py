"""Sentence vectors stored at index time: in step with the chunks, checked, and added to an old index."""

from __future__ import annotations

import json
import sqlite3

import pytest

from qabot.answering.retriever import Retriever
from qabot.errors import StoreError
from qabot.indexer import build_index, delete_articles
from qabot.store import Store, read_manifest
from qabot.store.backends import check_index
from tests.fakes import HashEmbedder

from .archives import snapshot, write_archive


class Counting(HashEmbedder):
    """Counts passages embedded; raises KeyboardInterrupt (Ctrl-C) on call ``stop_at``."""

    def __init__(self, stop_at: int = 0) -> None:
        super().__init__()
        self.embedded, self.calls, self.stop_at = 0, 0, stop_at

    def embed_passages(self, texts, **kwargs):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        self.embedded += len(texts)
        return super().embed_passages(texts, **kwargs)


def _build(archive, folder, **kwargs):
    kwargs.setdefault("embedder", HashEmbedder())
    return build_index(archive, folder, chunk_tokens=60, **kwargs)


def _live_db(folder):
    return sqlite3.connect(folder / read_manifest(folder).generation / "qabot.db")


def _make_format_1(folder):
    """Turn a built index into what qabot wrote before sentence vectors: no table, no column, format 1."""
    with _live_db(folder) as db:
        db.execute("drop table sentences")
        db.execute("alter table articles drop column n_sentences")
        db.execute("delete from _sqlite_migrations where name = 'm002_sentences'")
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data["format_version"] = 1
    del data["sentences"], data["checksums"]  # recorded only since format 2
    path.write_text(json.dumps(data))


def test_every_sentence_of_every_chunk_is_stored_once(tmp_path):
    report = _build(write_archive(tmp_path / "a.jsonl", range(6)), tmp_path / "ix")
    with Store.open(tmp_path / "ix") as store:
        ids = store.chunk_ids().tolist()
        stored, vectors = store.sentences_in(ids)
        spans = {(s.start, s.end) for s in stored if s.chunk_id == ids[0]}
        first = store.chunk_rows([ids[0]])[ids[0]]
    # 12 sentences an article, shared by overlapping chunks (one sentence of overlap) once
    assert report.sentences_total == report.sentences_embedded == 6 * 12 == read_manifest(tmp_path / "ix").sentences
    assert len(stored) > report.sentences_total  # a shared sentence belongs to both its chunks
    assert vectors.shape == (len(stored), 256)
    assert all(first["start"] <= start < end <= first["end"] for start, end in spans) and spans


def test_an_index_of_format_1_is_refused_then_upgraded_embedding_only_its_sentences(tmp_path):
    archive = write_archive(tmp_path / "a.jsonl", range(20))  # three upgrade batches of 8 articles at batch_size 1
    folder = tmp_path / "ix"
    _build(archive, folder)
    expected = snapshot(folder)
    _make_format_1(folder)
    with Store.open(folder) as store:
        chunk_ids = store.chunk_ids().tolist()
    with pytest.raises(StoreError) as refused:
        Retriever.open(folder, embedder=HashEmbedder())
    assert "format 1" in str(refused.value) and f"qabot index ARCHIVE --index {folder}" in str(refused.value)
    assert any("no sentence vectors" in p and "qabot index" in p for p in check_index(folder).problems)

    counting = Counting(stop_at=2)  # Ctrl-C during the upgrade: what was committed stays
    with pytest.raises(KeyboardInterrupt):
        _build(archive, folder, embedder=counting, batch_size=1)
    counting = Counting()
    report = _build(archive, folder, embedder=counting, batch_size=1)
    assert report.chunks_embedded == 0 and report.articles_unchanged == 20
    assert 0 < counting.embedded == report.sentences_embedded == 12 * 12  # the first batch was kept, no chunk re-embedded
    assert read_manifest(folder).format_version == 2
    assert snapshot(folder) == expected
    with Store.open(folder) as store:
        assert store.chunk_ids().tolist() == chunk_ids
    assert check_index(folder).ok
    with Retriever.open(folder, embedder=HashEmbedder()) as retriever:
        assert retriever.ask("Bundestag Kanzler Wahl").sentence is not None


def test_sentences_follow_their_articles_through_replace_prune_and_delete(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(10)), folder)
    later = write_archive(tmp_path / "b.jsonl", range(3, 12), changed=frozenset({4}))
    _build(later, folder, prune=True)
    delete_articles(folder, ["art-7"])
    reference = write_archive(tmp_path / "c.jsonl", [n for n in range(3, 12) if n != 7], changed=frozenset({4}))
    assert snapshot(folder) == snapshot(_build(reference, tmp_path / "ref") and tmp_path / "ref")
    assert check_index(folder).ok


def test_check_reports_missing_orphan_and_malformed_sentence_vectors(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(4)), folder)
    with _live_db(folder) as db:
        db.execute("delete from sentences where id = (select min(id) from sentences)")
        db.execute("insert into sentences (article_id, start, \"end\", vector) values ('art-2', 100000, 100050, x'00')")
    problems = check_index(folder).problems
    assert any("missing or extra sentence vectors" in p for p in problems)
    assert any("belong to no chunk" in p for p in problems)
    assert any("not 256-dimensional" in p for p in problems)


def test_the_sentence_leg_ranks_chunks_by_their_nearest_sentence(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(12)), folder)
    embedder = HashEmbedder()
    with Store.open(folder) as store:
        ids = store.chunk_ids().tolist()
        stored, _ = store.sentences_in(ids)
        rows = store.chunk_rows(ids)
        target = stored[len(stored) // 2]  # one sentence among several in its chunk
        row = rows[target.chunk_id]
        sentence = row["text"][target.start - row["start"] : target.end - row["start"]]
        hits = store.search_sentences(embedder.embed_queries([sentence])[0], 10)
        assert hits[0][0] in {s.chunk_id for s in stored if (s.start, s.end) == (target.start, target.end)}
        assert hits[0][1] > 0.99 and len({c for c, _ in hits}) == len(hits)  # one entry per chunk, best first
        assert [score for _, score in hits] == sorted((score for _, score in hits), reverse=True)
    with Retriever(Store.open(folder, model=embedder.name), embedder, sentence_leg=True) as retriever:
        assert retriever.search(sentence, k=1)[0].chunk_id == hits[0][0]
