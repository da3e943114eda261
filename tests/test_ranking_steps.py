"""The ranking steps (candidates -> rerank -> collapse -> merge -> renumber), with hand-made inputs."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pytest

from qabot.answering import ranking_steps
from qabot.answering.picking import Candidate
from qabot.answering.ranking_steps import Candidates, Collapsed, Merged, Ranked, Reranked
from qabot.documents import Passage

ARTICLE = "Erster Satz steht hier. Zweiter Satz folgt dann. Dritter Satz schließt ab."


def _passage(chunk_id: int, article: str, start: int, end: int, score: float, text: str | None = None) -> Passage:
    body = text if text is not None else ARTICLE[start:end]
    return Passage(chunk_id, article, "t", "2025-08-15", None, None, body, start, end, score)


def _reranked(passages: list[Passage], sentences: list[Candidate], similarity: list[float], keyword=()) -> Reranked:
    return ranking_steps.rerank(passages, sentences, np.array(similarity, dtype=np.float32), list(keyword), sentence_weight=0.5)


# -- candidates -----------------------------------------------------------------------------


def test_leg_size_widens_under_a_date_filter():
    assert ranking_steps.leg_size(None, None) == ranking_steps.CANDIDATES
    assert ranking_steps.leg_size(date(2025, 8, 1), None) == ranking_steps.leg_size(None, date(2025, 8, 1)) == 10 * ranking_steps.CANDIDATES


def test_candidates_fuse_both_legs_and_cut_the_pool():
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    keyword = [(3, 12.0), (4, 9.0)]
    found = ranking_steps.candidates(dense, keyword, size=3)
    assert found == Candidates(pool=(3, 1, 2), keyword=((3, 12.0), (4, 9.0)), notes=())


def test_candidates_without_keyword_hits_keep_the_dense_order():
    found = ranking_steps.candidates([(5, 0.2), (2, 0.9)], [], size=10)
    assert found.pool == (5, 2) and found.keyword == () and found.notes == ()


def test_candidates_keep_only_allowed_chunks_under_a_date_filter():
    found = ranking_steps.candidates([(1, 0.9), (2, 0.8), (3, 0.7)], [], size=5, since=date(2025, 8, 1), allowed={2, 3})
    assert found.pool == (2, 3)
    assert found.notes == ("Only articles dated 2025-08-01 – ….",)


def test_candidates_search_all_dates_when_the_filter_leaves_nothing():
    found = ranking_steps.candidates([(1, 0.9), (2, 0.8)], [], size=5, until=date(2020, 1, 1), allowed=set())
    assert found.pool == (1, 2)
    assert found.notes == ("No article dated … – 2020-01-01; searched all dates.",)


# -- rerank ---------------------------------------------------------------------------------


def test_rerank_blends_the_best_sentence_and_orders_by_score():
    passages = [_passage(1, "a", 0, 23, 0.6), _passage(2, "b", 0, 23, 0.7)]
    sentences = [Candidate(0, 0, 10, "x"), Candidate(0, 11, 23, "y"), Candidate(1, 0, 23, "z")]
    reranked = _reranked(passages, sentences, [0.5, 1.0, 0.6])
    # passage 0: 0.5 * 0.6 + 0.5 * max(0.5, 1.0) = 0.8; passage 1: 0.5 * 0.7 + 0.5 * 0.6 = 0.65
    assert reranked.relevance == pytest.approx([0.8, 0.65])
    assert reranked.scores == pytest.approx([0.8, 0.65])
    assert reranked.order == (0, 1)


def test_rerank_keeps_the_passage_similarity_without_sentences_and_adds_the_keyword_bonus():
    passages = [_passage(1, "a", 0, 23, 0.7), _passage(2, "b", 0, 23, 0.7)]
    reranked = _reranked(passages, [], [], keyword=[(2, 5.0)])
    assert reranked.relevance == pytest.approx([0.7, 0.7])
    assert reranked.scores[1] == pytest.approx(0.7 + ranking_steps.KEYWORD_BONUS / (1 + 1 / 5))
    assert reranked.order == (1, 0)


def test_rerank_is_stable_on_ties():
    passages = [_passage(i, "a", 0, 5, 0.5) for i in range(4)]
    assert _reranked(passages, [], []).order == (0, 1, 2, 3)


def test_rerank_of_nothing():
    reranked = _reranked([], [], [])
    assert reranked.order == () and reranked.scores.size == 0


# -- collapse -------------------------------------------------------------------------------

STORY = "Der Stadtrat von Musterstadt hat am Dienstag den Bau einer neuen Straßenbahnlinie beschlossen und will bauen."


def test_collapse_folds_a_wire_copy_into_the_better_ranked_passage():
    passages = [
        _passage(1, "copy", 0, len(STORY), 0.6, text=STORY + " (dpa)"),
        _passage(2, "orig", 0, len(STORY), 0.9, text=STORY),
        _passage(3, "other", 0, 20, 0.5, text="Der Zoo bekommt zwei Elefanten aus Thailand im August."),
    ]
    collapsed = ranking_steps.collapse(_reranked(passages, [], []))
    assert collapsed.order == (1, 2) and collapsed.duplicates == (1, 0)


def test_collapse_keeps_chunks_of_one_article_apart():
    passages = [_passage(1, "a", 0, len(STORY), 0.9, text=STORY), _passage(2, "a", 50, 60, 0.8, text=STORY)]
    collapsed = ranking_steps.collapse(_reranked(passages, [], []))
    assert collapsed.order == (0, 1) and collapsed.duplicates == (0, 0)


# -- merge ----------------------------------------------------------------------------------


def _collapsed(passages: list[Passage], order: tuple[int, ...], duplicates: tuple[int, ...] | None = None) -> Collapsed:
    return Collapsed(_reranked(passages, [], []), order, duplicates or (0,) * len(order))


def test_merge_groups_touching_chunks_of_one_article_best_first():
    passages = [_passage(1, "a", 24, 48, 0.9), _passage(2, "b", 0, 10, 0.8), _passage(3, "a", 0, 23, 0.7), _passage(4, "a", 49, 74, 0.6)]
    merged = ranking_steps.merge(_collapsed(passages, (0, 1, 2, 3)), limit=5)
    assert merged.groups == ((0, 2, 3), (1,))
    assert ranking_steps.articles_to_join(merged) == ["a"]


def test_merge_follows_the_collapsed_order_and_stops_at_the_limit():
    passages = [_passage(1, "a", 0, 10, 0.9), _passage(2, "b", 0, 10, 0.8), _passage(3, "c", 0, 10, 0.7)]
    merged = ranking_steps.merge(_collapsed(passages, (2, 0, 1)), limit=2)
    assert merged.groups == ((2,), (0,))
    assert ranking_steps.articles_to_join(merged) == []


# -- renumber -------------------------------------------------------------------------------


def _merged_fixture() -> Merged:
    passages = [_passage(1, "a", 24, 48, 0.9), _passage(2, "b", 0, 20, 0.5, text="Anderer Artikel hier."),
                _passage(3, "a", 0, 30, 0.8), _passage(4, "c", 0, 10, 0.1, text="Weggefallen.")]
    sentences = [
        Candidate(0, 24, 48, "Zweiter Satz folgt dann."),
        Candidate(1, 0, 20, "Anderer Artikel hier."),
        Candidate(2, 0, 23, "Erster Satz steht hier."),
        Candidate(2, 24, 48, "Zweiter Satz folgt dann."),  # the overlap repeats this sentence
        Candidate(3, 0, 10, "Weggefallen."),
    ]
    reranked = _reranked(passages, sentences, [0.9, 0.4, 0.7, 0.9, 0.95])
    collapsed = Collapsed(reranked, (0, 2, 1, 3), (1, 0, 2, 0))
    return Merged(collapsed, ((0, 2), (1,)))  # as merge(limit=2) would group them: passage 3 dropped


def test_renumber_joins_groups_and_repoints_their_sentences():
    merged = _merged_fixture()
    ranked = ranking_steps.renumber(merged, texts={"a": ARTICLE}, notes=("a note",))
    first, second = ranked.passages
    assert (first.chunk_id, first.start, first.end, first.text) == (1, 0, 48, ARTICLE[0:48])
    assert first.duplicates == 1 and first.score == pytest.approx(float(merged.collapsed.reranked.scores[0]))
    assert (second.chunk_id, second.text, second.duplicates) == (2, "Anderer Artikel hier.", 2)
    # sentences follow the new passage order; the repeated one and the dropped passage's are gone
    assert [(s.passage_index, s.text) for s in ranked.sentences] == [
        (0, "Zweiter Satz folgt dann."), (0, "Erster Satz steht hier."), (1, "Anderer Artikel hier.")
    ]
    assert ranked.similarity == pytest.approx([0.9, 0.7, 0.4])
    # relevance: the best kept passage's blend, not the dropped passage 3's
    assert ranked.relevance == pytest.approx(float(merged.collapsed.reranked.relevance[0]))
    assert ranked.notes == ("a note",)


def test_renumber_cites_the_best_part_alone_when_the_article_went_away():
    ranked = ranking_steps.renumber(_merged_fixture(), texts={"a": None})
    assert (ranked.passages[0].start, ranked.passages[0].end) == (24, 48)


def test_renumber_of_nothing_is_empty_and_irrelevant():
    merged = ranking_steps.merge(_collapsed([], ()), limit=5)
    ranked = ranking_steps.renumber(merged, texts={})
    assert ranked.passages == () and ranked.sentences == () and ranked.relevance == 0.0


def test_the_steps_exchange_frozen_dataclasses():
    ranked = ranking_steps.renumber(_merged_fixture(), texts={"a": ARTICLE})
    for value in (ranked, _merged_fixture(), ranking_steps.candidates([], [], size=1)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.notes = ()  # type: ignore[misc]
    assert isinstance(ranked, Ranked)
