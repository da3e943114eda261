"""Picking the answering sentence: pure functions."""

from __future__ import annotations

import numpy as np

from qabot.answering.picking import Candidate, context_span, overlap, rank, stored_candidates
from qabot.documents import Chunk, Passage, Sentence
from qabot.ingest.chunking import chunk_sentences


def _passage(text: str, *, start: int = 0, article: str = "a", score: float = 0.8, chunk_id: int = 1) -> Passage:
    return Passage(chunk_id, article, "t", "2025-08-15", None, None, text, start, start + len(text), score)


def _found(passage: Passage) -> list[Candidate]:
    """The candidates of one passage, its sentences stored as the indexer stores them."""
    chunk = Chunk(passage.article_id, 0, passage.text, passage.start, passage.end, 10)
    return stored_candidates([passage], [(passage.chunk_id, s.start, s.end) for s in chunk_sentences([chunk])])[0]


def test_stored_sentences_become_candidates_of_the_passages_that_hold_them():
    article = "Der Gipfel beginnt um 11.30 Uhr. Putin landet um 11.00 Uhr. Danach gibt es Essen im Zelt."
    landing, meal = article.index("Putin"), article.index("Danach")
    first = _passage(article[:meal - 1], chunk_id=1)
    second = _passage(article[landing:], start=landing, chunk_id=2)
    stored = [(1, 0, landing - 1), (1, landing, meal - 1), (9, 0, 5), (2, landing, meal - 1), (2, meal, len(article))]
    found, rows = stored_candidates([first, second], stored)
    assert [c.text for c in found] == [
        "Der Gipfel beginnt um 11.30 Uhr.", "Putin landet um 11.00 Uhr.", "Putin landet um 11.00 Uhr.", "Danach gibt es Essen im Zelt."
    ]
    assert rows == [0, 1, 3, 4]  # chunk 9 is not among the passages
    assert [c.passage_index for c in found] == [0, 0, 1, 1] and (found[2].start, found[2].end) == (landing, meal - 1)


def test_overlap_matches_inflected_german_words():
    assert overlap(["putin", "landet", "alaska"], "Putin soll in Alaska landen.") == 1.0
    assert overlap(["putin", "alaska"], "Der Gipfel beginnt.") == 0.0
    assert overlap([], "anything") == 0.0


def test_rank_prefers_the_sentence_with_the_question_words_when_similarity_is_close():
    found = _found(_passage("Der Gipfel beginnt um 11.30 Uhr. Putin landet um 11.00 Uhr in Alaska."))
    scores = rank("When does Putin land in Alaska?", found, np.array([0.861, 0.859]), [0.8])
    assert found[int(np.argmax(scores))].text.startswith("Putin landet")


def test_rank_follows_similarity_when_it_is_clear():
    found = _found(_passage("Der Gipfel beginnt um 11.30 Uhr. Putin landet um 11.00 Uhr in Alaska."))
    scores = rank("When does the summit begin?", found, np.array([0.92, 0.70]), [0.8])
    assert int(np.argmax(scores)) == 0


def test_rank_of_nothing_is_empty():
    assert rank("q", [], np.zeros(0), []).size == 0


def test_context_span_takes_one_sentence_either_side():
    sentences = [Sentence(0, 5, "Eins."), Sentence(6, 11, "Zwei."), Sentence(12, 17, "Drei."), Sentence(18, 23, "Vier.")]
    assert context_span(sentences, 6, 11) == (0, 17)
    assert context_span(sentences, 0, 5) == (0, 11)
    assert context_span(sentences, 18, 23) == (12, 23)
