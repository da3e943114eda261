"""Picking the answering sentence: pure functions."""

from __future__ import annotations

import numpy as np

from qabot.answering.picking import candidates, context_span, overlap, rank
from qabot.documents import Passage, Sentence


def _split(text: str) -> list[Sentence]:
    out, pos = [], 0
    for part in text.split(". "):
        part = part if part.endswith(".") else part + "."
        start = text.index(part.rstrip("."), pos)
        end = min(len(text), start + len(part))
        out.append(Sentence(start, end, text[start:end]))
        pos = end
    return out


def _passage(text: str, *, start: int = 0, article: str = "a", score: float = 0.8) -> Passage:
    return Passage(1, article, "t", "2025-08-15", None, None, text, start, start + len(text), score)


def test_candidates_dedupe_overlapping_chunks_and_keep_article_offsets():
    first = _passage("Der Gipfel beginnt um 11.30 Uhr. Putin landet um 11.00 Uhr.")
    second = _passage("Putin landet um 11.00 Uhr. Danach gibt es Essen im Zelt.", start=33)
    found = candidates([first, second], _split)
    assert [c.text for c in found] == [
        "Der Gipfel beginnt um 11.30 Uhr.", "Putin landet um 11.00 Uhr.", "Danach gibt es Essen im Zelt."
    ]
    assert (found[1].start, found[1].end) == (33, 59)
    assert found[2].passage_index == 1


def test_overlap_matches_inflected_german_words():
    assert overlap(["putin", "landet", "alaska"], "Putin soll in Alaska landen.") == 1.0
    assert overlap(["putin", "alaska"], "Der Gipfel beginnt.") == 0.0
    assert overlap([], "anything") == 0.0


def test_rank_prefers_the_sentence_with_the_question_words_when_similarity_is_close():
    found = candidates([_passage("Der Gipfel beginnt um 11.30 Uhr. Putin landet um 11.00 Uhr in Alaska.")], _split)
    scores = rank("When does Putin land in Alaska?", found, np.array([0.861, 0.859]), [0.8])
    assert found[int(np.argmax(scores))].text.startswith("Putin landet")


def test_rank_follows_similarity_when_it_is_clear():
    found = candidates([_passage("Der Gipfel beginnt um 11.30 Uhr. Putin landet um 11.00 Uhr in Alaska.")], _split)
    scores = rank("When does the summit begin?", found, np.array([0.92, 0.70]), [0.8])
    assert int(np.argmax(scores)) == 0


def test_rank_of_nothing_is_empty():
    assert rank("q", [], np.zeros(0), []).size == 0


def test_context_span_takes_one_sentence_either_side():
    sentences = [Sentence(0, 5, "Eins."), Sentence(6, 11, "Zwei."), Sentence(12, 17, "Drei."), Sentence(18, 23, "Vier.")]
    assert context_span(sentences, 6, 11) == (0, 17)
    assert context_span(sentences, 0, 5) == (0, 11)
    assert context_span(sentences, 18, 23) == (12, 23)
