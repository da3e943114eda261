"""End to end with the real model: index the bundled sample, ask in English and German."""

from __future__ import annotations

import pytest

from qabot import Retriever
from qabot.errors import QuestionError
from qabot.frontends.cli import sample_archive
from qabot.indexer import build_index

from .conftest import LANDING_SENTENCE

pytestmark = pytest.mark.model


@pytest.mark.parametrize("question", ["When does Putin land in Alaska?", "Wann landet Putin in Alaska?"])
def test_the_landing_question_gets_the_1100_sentence_with_its_date(sample_retriever, question):
    answer = sample_retriever.ask(question)
    assert answer.sentence == LANDING_SENTENCE
    assert "11.30" not in answer.sentence
    source = answer.source
    assert source is not None and source.date == "2025-08-15"
    assert source.article_id == "2025-08-15-alaska-summit"
    # the citation points at the exact text of the article
    article = sample_retriever.store.article_text(source.article_id)
    assert article[answer.sentence_start:answer.sentence_end] == LANDING_SENTENCE
    assert LANDING_SENTENCE in answer.context and len(answer.context) > len(LANDING_SENTENCE)


def test_the_answer_is_not_just_the_first_sentence_of_the_top_passage(sample_retriever):
    answer = sample_retriever.ask("When does the summit in Anchorage begin?")
    assert "11.30" in answer.sentence


def test_search_returns_ranked_passages_with_metadata(sample_retriever):
    passages = sample_retriever.search("Lukaschenko political prisoners", k=3)
    assert 1 <= len(passages) <= 3
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    top = passages[0]
    assert "Gefangene" in top.text and top.date == "2025-08-15" and top.title
    assert top.text == sample_retriever.store.article_text(top.article_id)[top.start:top.end]


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_a_clear_error(sample_retriever, question):
    with pytest.raises(QuestionError, match="empty"):
        sample_retriever.ask(question)
    with pytest.raises(QuestionError):
        sample_retriever.search(question)


def test_retriever_open_loads_the_model_named_in_the_manifest(sample_index, model_cache_dir):
    from qabot.config import Settings

    settings = Settings.from_env({"QABOT_CACHE_DIR": str(model_cache_dir)})
    with Retriever.open(sample_index, settings=settings) as retriever:
        assert retriever.ask("Wann landet Putin in Alaska?").sentence == LANDING_SENTENCE
        assert retriever.stats()["articles"] == 1


def test_reindexing_the_unchanged_sample_embeds_nothing(tmp_path, e5):
    first = build_index(sample_archive(), tmp_path / "ix", embedder=e5)
    again = build_index(sample_archive(), tmp_path / "ix", embedder=e5)
    assert first.chunks_embedded > 0 and first.articles_indexed == 1
    assert (again.chunks_embedded, again.articles_indexed, again.articles_unchanged) == (0, 0, 1)
    assert again.chunks_total == first.chunks_total
