"""The store interface, one set of tests for both stores: the folder (SQLite + FAISS) and
PostgreSQL + pgvector (a real server on 127.0.0.1, tests/pg_server.py).

Whatever the ranking and answer code asks of a store gives the same answer from either:
adds and replaces whole articles, hash skips, deletes, every read, the three searches.
"""

from __future__ import annotations

import numpy as np
import pytest

from qabot.documents import Article, Chunk
from qabot.ingest.chunking import chunk_sentences
from qabot.locations import PgUrl
from qabot.store.store import Store

DIM = 8


def _article(article_id: str, *sentences: str, date: str = "2025-08-15") -> tuple[Article, list[Chunk]]:
    text = " ".join(sentences)
    chunks, pos = [], 0
    for i, sentence in enumerate(sentences):
        start = text.index(sentence, pos)
        chunks.append(Chunk(article_id, i, sentence, start, start + len(sentence), len(sentence.split())))
        pos = start + len(sentence)
    return Article(id=article_id, text=text, title=sentences[0], date=date, source="dpa"), chunks


def _unit(seed: int, n: int = 1) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _add(store, items: list[tuple[Article, list[Chunk]]], seed: int = 0):
    spans = [chunk_sentences(chunks) for _, chunks in items]
    n_chunks, n_sentences = sum(len(c) for _, c in items), sum(len(s) for s in spans)
    vectors, sentence_vectors = _unit(seed, n_chunks), _unit(seed + 1000, n_sentences)
    store.add(items, vectors, spans, sentence_vectors)
    return vectors, sentence_vectors, spans


@pytest.fixture(params=["folder", "postgres"])
def store(request, tmp_path):
    if request.param == "folder":
        s = Store.create(tmp_path / "ix", model="m", dimension=DIM, chunk_tokens=200, chunk_overlap=1)
    else:
        from qabot.store.postgres.store import PgStore

        url = request.getfixturevalue("pg_url")
        s = PgStore.create_or_open(PgUrl(url), model="m", dimension=DIM, chunk_tokens=200, chunk_overlap=1)
    yield s
    s.close()


ITEMS = [
    _article("a1", "Putin landet um 11 Uhr in Alaska.", "Trump empfängt ihn am Flugzeug."),
    _article("a2", "Die Häuser in Anchorage wurden geschmückt.", "Der Gipfel beginnt am Freitag.", date="2025-08-16"),
    _article("a3", "Selenskyj ist nicht eingeladen.", date="2025-07-01"),
]


def test_every_read_gives_what_was_added(store):
    vectors, sentence_vectors, spans = _add(store, ITEMS)
    assert store.counts() == {"articles": 3, "chunks": 5, "vectors": 5, "sentences": 5}
    assert set(store.article_hashes()) == {"a1", "a2", "a3"}
    assert store.article_hashes()["a2"] == ITEMS[1][0].content_hash
    assert store.date_range() == ("2025-07-01", "2025-08-16")
    assert store.newest_title() == "Die Häuser in Anchorage wurden geschmückt."
    assert store.sources() == ["dpa"]
    assert store.article_text("a3") == "Selenskyj ist nicht eingeladen." and store.article_text("zz") is None
    # the dense leg: each chunk's own vector finds it first (float16 in PostgreSQL: scores to 1e-3)
    ids = {}
    for i, vector in enumerate(vectors):
        hits = store.search_vectors(vector, 5)
        assert len(hits) == 5 and hits[0][1] == pytest.approx(1.0, abs=2e-3)
        ids[i] = hits[0][0]
    assert len(set(ids.values())) == 5
    rows = store.chunk_rows(list(ids.values()))
    assert [rows[ids[i]]["text"] for i in range(5)] == [c.text for _, chunks in ITEMS for c in chunks]
    assert rows[ids[2]] | {"id": 0} == {"id": 0, "article_id": "a2", "idx": 0, "text": ITEMS[1][1][0].text, "start": 0,
                                         "end": len(ITEMS[1][1][0].text), "title": ITEMS[1][0].title, "date": "2025-08-16",
                                         "url": None, "source": "dpa"}
    assert np.allclose(store.vectors_for([ids[3], ids[0]]), vectors[[3, 0]], atol=2e-3)
    # the sentence leg: a sentence's vector finds its chunk first
    assert store.search_sentences(sentence_vectors[4], 3)[0][0] == ids[4]
    found, found_vectors = store.sentences_in([ids[1], ids[0]])
    assert [(s.chunk_id, s.start) for s in found] == [(ids[1], spans[0][1].start), (ids[0], 0)]
    assert np.allclose(found_vectors, sentence_vectors[[1, 0]], atol=2e-3)
    # dates
    from datetime import date

    assert store.chunks_between(list(ids.values()), date(2025, 8, 1), None) == {ids[0], ids[1], ids[2], ids[3]}
    assert store.chunks_between(list(ids.values()), None, date(2025, 7, 31)) == {ids[4]}
    assert store.search_vectors(vectors[0], 0) == [] and store.chunk_rows([]) == {}


def test_the_keyword_leg_finds_names_and_treats_query_syntax_as_words(store):
    _add(store, ITEMS)
    hits = store.keyword_search_words(["alaska"], 5)
    assert [store.chunk_rows([h[0] for h in hits])[h[0]]["article_id"] for h in hits] == ["a1"]
    two = store.keyword_search_words(["putin", "gipfel"], 5)
    assert len(two) == 2 and all(score > 0 for _, score in two)
    for words in (['"alaska'], ["alaska*", "-putin"], ["NEAR(putin"], ["'; drop table chunks; --"], ["a\\b", "o'neil"], []):
        assert isinstance(store.keyword_search_words(words, 5), list)
    assert store.counts()["chunks"] == 5
    assert store.keyword_search_words(["nirgends"], 5) == [] and store.keyword_search_words(["alaska"], 0) == []


def test_adding_an_article_again_replaces_its_chunks_and_sentences(store):
    _add(store, ITEMS)
    changed = _article("a1", "Putin landet erst um 11.30 Uhr.", "Trump wartet.", "Die Presse auch.")
    _add(store, [changed], seed=7)
    assert store.counts() == {"articles": 3, "chunks": 6, "vectors": 6, "sentences": 6}
    assert store.article_hashes()["a1"] == changed[0].content_hash
    assert store.article_text("a1") == changed[0].text
    hits = store.keyword_search_words(["alaska"], 5)
    assert hits == [], "the old chunk text is gone with its full text"


def test_deleting_removes_articles_with_chunks_sentences_and_vectors(store):
    vectors, _, _ = _add(store, ITEMS)
    assert store.delete_articles(["a1", "unknown"]) == 2
    assert store.counts() == {"articles": 2, "chunks": 3, "vectors": 3, "sentences": 3}
    assert all(store.chunk_rows([h[0]])[h[0]]["article_id"] != "a1" for h in store.search_vectors(vectors[0], 5))
    assert store.delete_articles(["a2", "a3"]) == 3 and store.counts()["sentences"] == 0


def test_an_empty_store_answers_every_read(store):
    assert store.counts() == {"articles": 0, "chunks": 0, "vectors": 0, "sentences": 0}
    assert store.search_vectors(_unit(1)[0], 5) == [] and store.search_sentences(_unit(1)[0], 5) == []
    assert store.keyword_search_words(["putin"], 5) == [] and store.date_range() == (None, None)
    assert store.newest_title() is None and store.article_hashes() == {}


def test_add_refuses_vectors_that_do_not_fit(store):
    article, chunks = ITEMS[0]
    spans = [chunk_sentences(chunks)]
    with pytest.raises(ValueError):
        store.add([(article, chunks)], _unit(0, 1), spans, _unit(1, 2))
    assert store.counts()["articles"] == 0
