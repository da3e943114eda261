"""Issue-3 behaviour through the Retriever: abstention, date filters, duplicate collapse, newer answers."""

from __future__ import annotations

import itertools
import json
from datetime import date

import numpy as np
import pytest

from qabot.answering.picking import Candidate, answer_type_match, prefer_newer
from qabot.answering.retriever import Retriever, default_min_score
from qabot.indexer import build_index
from qabot.store import Store

from .conftest import LANDING_SENTENCE

STORY = (
    "Der Stadtrat von Musterstadt hat am Dienstag den Bau einer neuen Straßenbahnlinie beschlossen. "
    "Die Linie soll 2027 eröffnet werden und zwölf Haltestellen haben. Die Kosten liegen bei 80 Millionen Euro."
)


def _archive(tmp_path, rows):
    path = tmp_path / "archive.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def news(tmp_path, hash_embedder):
    rows = [
        {"id": "tram-1", "date": "2025-06-02", "title": "Straßenbahn beschlossen", "text": STORY},
        {"id": "tram-copy", "date": "2025-06-03", "title": "Straßenbahn (Agentur)", "text": STORY + " (dpa)"},
        {"id": "zoo", "date": "2025-08-14", "title": "Zoo", "text": "Der Zoo von Musterstadt bekommt im August zwei neue Elefanten aus Thailand."},
        {"id": "tram-2", "date": "2025-08-15", "title": "Straßenbahn teurer",
         "text": "Die neue Straßenbahnlinie in Musterstadt kostet nun 95 Millionen Euro, teilte der Stadtrat mit."},
    ]
    build_index(_archive(tmp_path, rows), tmp_path / "ix", embedder=hash_embedder)
    retriever = Retriever(Store.open(tmp_path / "ix", model=hash_embedder.name), hash_embedder)
    yield retriever
    retriever.close()


def test_near_duplicate_wire_copies_are_collapsed_and_counted(news):
    passages = news.search("Straßenbahnlinie Musterstadt Haltestellen beschlossen", k=5)
    ids = [p.article_id for p in passages]
    assert ("tram-1" in ids) != ("tram-copy" in ids), ids
    kept = next(p for p in passages if p.article_id in {"tram-1", "tram-copy"})
    assert kept.duplicates == 1


def test_explicit_since_until_filter_by_article_date(news):
    passages = news.search("Musterstadt", k=5, since=date(2025, 8, 1), until=date(2025, 8, 31))
    assert {p.article_id for p in passages} <= {"zoo", "tram-2"} and passages
    answer = news.ask("Musterstadt", since=date(2025, 8, 1))
    assert any("Only articles dated 2025-08-01" in n for n in answer.notes)


def test_dates_in_the_question_filter_relative_to_the_newest_article(news):
    passages = news.search("Was beschloss der Stadtrat im Juni 2025 zur Straßenbahn?", k=5)
    assert {p.date[:7] for p in passages} == {"2025-06"}
    yesterday = news.search("Was gab es gestern im Zoo von Musterstadt?", k=5)  # newest article: 2025-08-15
    assert [p.article_id for p in yesterday] == ["zoo"]


def test_a_date_filter_that_empties_the_result_falls_back_to_all_dates(news):
    answer = news.ask("Straßenbahn Musterstadt im Januar 2020")
    assert answer.passages and any("searched all dates" in n for n in answer.notes)


def test_prefer_newer_when_two_articles_answer_about_equally():
    found = [Candidate(0, 0, 10, "kostet 80 Millionen"), Candidate(1, 0, 10, "kostet 95 Millionen")]
    scores = np.array([0.900, 0.895], dtype=np.float32)
    assert prefer_newer(found, scores, ["2025-06-02", "2025-08-15"], ["a", "b"]) == 1
    assert prefer_newer(found, np.array([0.90, 0.80], dtype=np.float32), ["2025-06-02", "2025-08-15"], ["a", "b"]) == 0
    assert prefer_newer(found, scores, ["2025-08-15", "2025-06-02"], ["a", "b"]) == 0


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        ("When does Putin land?", "Er landet um 11.00 Uhr.", 1.0),
        ("Wann landet Putin?", "Er landet pünktlich.", 0.0),
        ("In welchem Jahr wurde er gewählt?", "Er wurde 1994 gewählt.", 1.0),
        ("How many prisoners are there?", "Es sitzen 1.186 Gefangene.", 1.0),
        ("Wie viele Gefangene gibt es?", "Es sitzen viele Gefangene.", 0.0),
        ("Who is Lukaschenko?", "Lukaschenko ist seit 1994 an der Macht.", 0.0),
    ],
)
def test_answer_type_match(question, sentence, expected):
    assert answer_type_match(question, sentence) == expected


def test_default_min_score_is_calibrated_only_for_the_default_model():
    assert default_min_score("multilingual-e5-small") == default_min_score("intfloat/multilingual-e5-small") == 0.78
    assert default_min_score("multilingual-e5-small", "de") == 0.83
    assert default_min_score("hash-test") == default_min_score("hash-test", "de") == 0.0


def test_the_threshold_follows_the_question_language_unless_set(hash_embedder, tmp_path):
    build_index(_archive(tmp_path, [{"id": "a", "date": "2025-08-15", "text": "Ein Satz."}]), tmp_path / "ix", embedder=hash_embedder)
    with Retriever(Store.open(tmp_path / "ix", model=hash_embedder.name), hash_embedder) as retriever:
        retriever.embedder = type("E5Named", (), {"name": "multilingual-e5-small"})()
        assert retriever.threshold("Wann landet der Präsident in Alaska?") == 0.83
        assert retriever.threshold("When does the president land in Alaska?") == 0.78
        retriever.min_score = 0.5
        assert retriever.threshold("Wann landet der Präsident?") == 0.5


@pytest.mark.model
@pytest.mark.parametrize("question", [
    "What is the capital of Australia?", "Wie hoch ist der Eiffelturm?", "Who won the Super Bowl?",
    "Was ist die Hauptstadt von Australien?", "Wer hat den Super Bowl gewonnen?",
])
def test_absent_topics_abstain_on_the_sample(sample_retriever, question):
    answer = sample_retriever.ask(question)
    assert answer.sentence is None and not answer.found
    assert answer.passages, "the closest passages are still shown"


@pytest.mark.model
def test_the_seed_trap_still_holds_with_abstention_on(sample_retriever):
    assert sample_retriever.threshold("When does Putin land in Alaska?") == 0.78
    assert sample_retriever.threshold("Wann landet Putin in Alaska?") == 0.83
    assert sample_retriever.ask("When does Putin land in Alaska?").sentence == LANDING_SENTENCE
    assert sample_retriever.ask("Wann landet Putin in Alaska?").sentence == LANDING_SENTENCE


def test_neighbouring_chunks_are_cited_as_one_passage(tmp_path, hash_embedder):
    sentences = [f"Der Stadtrat von Musterstadt beschloss im Punkt {n} eine neue Straßenbahnlinie." for n in range(40)]
    rows = [{"id": "long", "date": "2025-08-15", "title": "Stadtrat", "text": " ".join(sentences)},
            {"id": "other", "date": "2025-08-14", "title": "Zoo", "text": "Der Zoo bekommt eine neue Straßenbahnhaltestelle."}]
    build_index(_archive(tmp_path, rows), tmp_path / "ix", embedder=hash_embedder, chunk_tokens=40)
    with Retriever(Store.open(tmp_path / "ix", model=hash_embedder.name), hash_embedder, top_k=5) as retriever:
        answer = retriever.ask("Was beschloss der Stadtrat zur Straßenbahnlinie?")
        article = retriever.store.article_text("long")
        longest_chunk = retriever.store.db.execute('select max("end" - start) from chunks where article_id = ?', ["long"]).fetchone()[0]
    spans = sorted((p.start, p.end) for p in answer.passages if p.article_id == "long")
    assert spans, "the long article is cited"
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start > end + 1, "two cited passages of one article touch or overlap"
    for passage in answer.passages:
        if passage.article_id == "long":
            assert passage.text == article[passage.start : passage.end]
    assert any(p.end - p.start > longest_chunk for p in answer.passages if p.article_id == "long"), "neighbours were merged"
    assert answer.sentence and answer.sentence in answer.passages[answer.passage_index].text
