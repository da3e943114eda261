"""Retrieval with the real model over 150 real news articles (the ``news_index`` fixture).

The one-article sample is smaller than the rerank pool, so there any ranking passes. Here
the right article has to come first among ~420 chunks, and each test below is written so
that it fails when one part breaks:

- the dense leg (FAISS):   English questions sharing no word with the German article
- the keyword leg (FTS5):  rare names and figures that the embedding does not pin down
- fusion (RRF):            the real legs fused keep what either leg found
- all together:            questions in English and German about one fact each

Articles are named by the archive reader's id, ``10kgnad-test.csv:<line in the corpus>``.
"""

from __future__ import annotations

import pytest

from qabot.answering import fusion, legs

from .conftest import LANDING_SENTENCE

pytestmark = pytest.mark.model

LEG = 50  # chunks each leg fetches, as the Retriever does without a date filter
POOL = 12  # the rerank pool: what fusion must get right
SAMPLE = "2025-08-15-alaska-summit"


def gnad(line: int) -> str:
    return f"10kgnad-test.csv:{line}"


def articles(retriever, ranking) -> list[str]:
    """The article of each chunk in ``ranking``, in order."""
    return [p.article_id for p in legs.passages_for(retriever.store, ranking)]


# (question, article, words the answer sentence must hold, or None where only the article is checked)
QUESTIONS = [
    ("When does Putin land in Alaska?", SAMPLE, "11.00 Uhr"),
    ("Wann landet Putin in Alaska?", SAMPLE, "11.00 Uhr"),
    ("How long did it take Usain Bolt to win the 100 metres final in Beijing?", gnad(271), "9,79 Sekunden"),
    ("How big was the fine against Zielpunkt for price fixing?", gnad(43), "562.500 Euro"),
    ("Who won the tennis tournament in Kitzbühel?", gnad(349), "Kohlschreiber"),
    ("How much has Dobrindt already spent on the car toll?", gnad(73), "600.000 Euro"),
    ("Who will become the new editor-in-chief of Focus magazine?", gnad(163), None),
    ("Which car did George Hotz convert into a self-driving car?", gnad(79), None),
    ("Wann erscheint die letzte Ausgabe von The Independent on Sunday?", gnad(247), "20. März"),
    ("Wie ging die Abstimmung im US-Senat über das Atomabkommen mit dem Iran aus?", gnad(97), None),
    ("Wer spielt Mozart im Pausenfilm zum Neujahrskonzert?", gnad(343), None),
    ("Warum raste der Niederländer durch Saalfelden?", gnad(319), None),
    ("Wie viel Datenvolumen bietet der Tarif B-free Premium?", gnad(19), None),
]


@pytest.mark.parametrize(("question", "article", "words"), QUESTIONS, ids=[q for q, _, _ in QUESTIONS])
def test_the_right_article_comes_first_among_150(news_retriever, question, article, words):
    answer = news_retriever.ask(question)
    assert answer.passages, question
    assert answer.passages[0].article_id == article
    if words is not None:
        assert answer.sentence is not None and words in answer.sentence
        assert answer.source is not None and answer.source.article_id == article


def test_the_landing_sentence_is_found_among_150_other_articles(news_retriever):
    answer = news_retriever.ask("When does Putin land in Alaska?")
    assert answer.sentence == LANDING_SENTENCE
    assert answer.source.date == "2025-08-15"
    text = news_retriever.store.article_text(SAMPLE)
    assert text[answer.sentence_start:answer.sentence_end] == LANDING_SENTENCE


# English questions with no word in common with their German article: only the dense leg finds them.
DENSE_ONLY = [
    ("How many people were killed when a crane collapsed onto the great mosque?", gnad(223)),
    ("Why did the drunk young man from the Netherlands speed through a village at night?", gnad(319)),
    ("Who plays the composer in the intermission short of the New Year's concert?", gnad(343)),
]


@pytest.mark.parametrize(("question", "article"), DENSE_ONLY, ids=[q for q, _ in DENSE_ONLY])
def test_the_dense_leg_ranks_the_nearest_chunk_first(news_retriever, question, article):
    query = news_retriever.embedder.embed_queries([question])[0]
    dense = legs.dense_ranking(news_retriever.store, query, LEG)
    assert len(dense) == LEG
    scores = [s for _, s in dense]
    assert scores == sorted(scores, reverse=True)
    assert articles(news_retriever, dense[:1]) == [article]


@pytest.mark.parametrize(("question", "article"), DENSE_ONLY, ids=[q for q, _ in DENSE_ONLY])
def test_the_dense_leg_finds_an_article_that_shares_no_words_with_the_question(news_retriever, question, article):
    keyword = legs.keyword_ranking(news_retriever.store, question, LEG)
    assert article not in articles(news_retriever, keyword), "the question shares words with the article"
    assert news_retriever.search(question, k=3)[0].article_id == article


# Rare names and figures: the keyword leg alone puts their article first.
KEYWORD_ONLY = [
    ("Kohlschreiber", gnad(349)),
    ("562.500", gnad(43)),
    ("Rumblr", gnad(13)),
    ("B311", gnad(319)),
    ("Acura ILX", gnad(79)),
    ("Vangardist", gnad(289)),
]


@pytest.mark.parametrize(("words", "article"), KEYWORD_ONLY, ids=[w for w, _ in KEYWORD_ONLY])
def test_the_keyword_leg_ranks_the_article_with_a_rare_name_first(news_retriever, words, article):
    keyword = legs.keyword_ranking(news_retriever.store, words, LEG)
    assert articles(news_retriever, keyword)[:1] == [article]


def test_a_bare_figure_reaches_the_results_through_the_keyword_leg(news_retriever):
    # The embedding of "562.500" is close to many chunks with numbers (the Zielpunkt article
    # is 30th or so in the dense leg): only the keyword leg brings it into the rerank pool.
    store = news_retriever.store
    dense = legs.dense_ranking(store, news_retriever.embedder.embed_queries(["562.500"])[0], LEG)
    assert gnad(43) not in articles(news_retriever, dense[:POOL])
    assert gnad(43) in [p.article_id for p in news_retriever.search("562.500", k=5)]


FUSED = [
    ("562.500", gnad(43)),  # keyword leg first, dense leg far down
    ("How many people were killed when a crane collapsed onto the great mosque?", gnad(223)),  # dense leg only
    ("How long did it take Usain Bolt to win the 100 metres final in Beijing?", gnad(271)),  # both legs
]


@pytest.mark.parametrize(("question", "article"), FUSED, ids=[q for q, _ in FUSED])
def test_fusing_the_real_legs_keeps_what_either_leg_found(news_retriever, question, article):
    store = news_retriever.store
    dense = legs.dense_ranking(store, news_retriever.embedder.embed_queries([question])[0], LEG)
    keyword = legs.keyword_ranking(store, question, LEG)
    fused = fusion.fuse_rrf([dense, keyword])
    assert {c for c, _ in fused} == {c for c, _ in dense} | {c for c, _ in keyword}
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    assert articles(news_retriever, fused[:1]) == [article]
