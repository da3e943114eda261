"""Rankings: FTS5 escaping of user text, reciprocal-rank fusion."""

from __future__ import annotations

import numpy as np
import pytest

from qabot.answering.fusion import fuse_rrf
from qabot.answering.legs import fts_query, keyword_ranking, passages_for, terms
from qabot.documents import Article, Chunk
from qabot.ingest.chunking import chunk_sentences
from qabot.store import Store


def test_terms_drop_stopwords_and_keep_numbers():
    assert terms("When does Putin land in Alaska at 11.00?") == ["putin", "land", "alaska", "11.00"]
    assert terms("Wann landet Putin in Alaska?") == ["landet", "putin", "alaska"]


@pytest.mark.parametrize(
    "question",
    [
        'Putin AND "Alaska',
        "NEAR(Putin Alaska)",
        "Putin* -Alaska",
        "title:Putin OR (Trump)",
        'he said "hi"',
        "NOT",
        "^Putin",
        "'; drop table chunks; --",
    ],
)
def test_fts_syntax_in_questions_is_searched_as_words(tmp_path, question):
    store = Store.create(tmp_path / "ix", model="m", dimension=2, chunk_tokens=200, chunk_overlap=1)
    text = "Putin und Trump treffen sich in Alaska; he said hi, did not drop table chunks."
    items = [(Article(id="a", text=text, title="t"), [Chunk("a", 0, text, 0, len(text), 10)])]
    spans = [chunk_sentences(chunks) for _, chunks in items]
    store.add(items, np.array([[1.0, 0.0]], dtype=np.float32), spans, np.tile([[0.0, 1.0]], (len(spans[0]), 1)).astype(np.float32))
    ranking = keyword_ranking(store, question, 5)
    assert [chunk_id for chunk_id, _ in ranking] == [1]
    assert store.counts()["chunks"] == 1
    store.close()


def test_fts_query_quotes_every_term():
    assert fts_query('Putin AND "Trump" NEAR') == '"putin" OR "trump" OR "near"'
    assert fts_query("   ") is None
    assert fts_query("und der die") is None


def test_fuse_rrf_rewards_agreement_and_is_deterministic():
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    keyword = [(3, 12.0), (1, 10.0), (4, 1.0)]
    fused = fuse_rrf([dense, keyword], k=60)
    assert [i for i, _ in fused][:2] == [1, 3]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert {i for i, _ in fused} == {1, 2, 3, 4}
    assert fuse_rrf([dense, keyword]) == fused


def test_fuse_rrf_weights():
    fused = fuse_rrf([[(1, 1.0)], [(2, 1.0)]], weights=[1.0, 2.0])
    assert [i for i, _ in fused] == [2, 1]
    with pytest.raises(ValueError):
        fuse_rrf([[(1, 1.0)]], weights=[1.0, 2.0])


def test_fuse_rrf_of_nothing_is_empty():
    assert fuse_rrf([[], []]) == []


def test_passages_keep_ranking_order_and_metadata(tmp_path):
    store = Store.create(tmp_path / "ix", model="m", dimension=2, chunk_tokens=200, chunk_overlap=1)
    article = Article(id="a", text="Eins. Zwei.", title="Titel", date="2025-08-15", url="https://example.org/a", source="dpa")
    chunks = [Chunk("a", 0, "Eins.", 0, 5, 2), Chunk("a", 1, "Zwei.", 6, 11, 2)]
    spans = [chunk_sentences(chunks)]  # none: both are shorter than a sentence worth picking
    store.add([(article, chunks)], np.eye(2, dtype=np.float32), spans, np.zeros((len(spans[0]), 2), dtype=np.float32))
    passages = passages_for(store, [(2, 0.9), (1, 0.5), (99, 0.1)])
    assert [(p.text, p.score) for p in passages] == [("Zwei.", 0.9), ("Eins.", 0.5)]
    assert (passages[0].title, passages[0].date, passages[0].url, passages[0].source) == ("Titel", "2025-08-15", "https://example.org/a", "dpa")
    assert (passages[0].start, passages[0].end) == (6, 11)
    store.close()


def test_neighbouring_chunks_of_one_article_merge_into_one_group():
    from qabot.answering.fusion import merge_neighbours

    spans = [("a", 100, 200), ("b", 0, 50), ("a", 180, 300), ("a", 301, 400), ("a", 600, 700), ("c", 0, 10)]
    assert merge_neighbours(spans, limit=5) == [[0, 2, 3], [1], [4], [5]]
    assert merge_neighbours(spans, limit=2) == [[0, 2, 3], [1]]
    assert merge_neighbours([], limit=3) == []
    # a passage joins the first group it touches; groups are not merged with each other afterwards
    assert merge_neighbours([("a", 0, 10), ("a", 20, 30), ("a", 11, 19)], limit=3) == [[0, 2], [1]]


class _KeywordOnlyStore:
    """A store with nothing but keyword_search_words: the ranking must not build any store's query itself."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []

    def keyword_search_words(self, words: list[str], k: int) -> list[tuple[int, float]]:
        self.calls.append((list(words), k))
        return [(3, 2.0), (1, 1.5)]


def test_keyword_ranking_hands_the_question_words_to_the_store():
    store = _KeywordOnlyStore()
    assert keyword_ranking(store, "Wann landet Putin?", 7) == [(3, 2.0), (1, 1.5)]  # type: ignore[arg-type]
    assert store.calls == [(["landet", "putin"], 7)]
    assert keyword_ranking(store, "und der die?", 7) == []  # type: ignore[arg-type]
    assert len(store.calls) == 1, "nothing searchable: the store is not asked"
