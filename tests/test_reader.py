"""The reader seam: real question-answering folders made here, loaded through Settings and Retriever.open.

The test models' spans are meaningless (random weights); what is tested is the loading, the
batching over windows, the span offsets mapping into the article text, abstention (with models
built to always or never say "no answer"), the fallbacks, the rendering and the added latency.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qabot.answering.answer_span import NO_ANSWER_NOTE, locate
from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.documents import Answer, Passage, Span
from qabot.frontends import chat, telegram_format
from qabot.ingest.sentences import split_sentences
from qabot.models.optional import Deadline
from qabot.models.reader import ReaderAnswer, load_reader
from qabot.store import Store
from tests.conftest import LANDING_SENTENCE
from tests.tiny_models import build_tiny_reader

ARTICLE = "Vorspann. Putin soll um 11.00 Uhr in Alaska ankommen. Trump kommt später."


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("readers")
    return {name: build_tiny_reader(root / f"reader-{name}", abstain=abstain)
            for name, abstain in (("random", None), ("answers", False), ("abstains", True))}


def _passage(start: int, end: int) -> Passage:
    return Passage(chunk_id=1, article_id="a", title="t", date=None, url=None, source=None,
                   text=ARTICLE[start:end], start=start, end=end, score=0.9)


# -- the pure step ----------------------------------------------------------------------------


def test_a_span_maps_to_its_sentence_and_into_the_article_text():
    passage = _passage(10, len(ARTICLE))
    at = passage.text.index("11.00 Uhr")
    found = locate([passage], ReaderAnswer(0, at, at + 9, "11.00 Uhr", 0.7, 0.1), split_sentences)
    assert found is not None
    assert ARTICLE[found.span.start:found.span.end] == found.span.text == "11.00 Uhr"
    sentence = found.sentence
    assert ARTICLE[sentence.start:sentence.end] == sentence.text == "Putin soll um 11.00 Uhr in Alaska ankommen."
    assert sentence.start <= found.span.start < found.span.end <= sentence.end and found.span.score == 0.7


def test_a_span_past_its_sentence_is_cut_and_blank_spans_are_none():
    passage = _passage(10, len(ARTICLE))
    at = passage.text.index("Alaska")
    found = locate([passage], ReaderAnswer(0, at, at + 20, "", 0.5, 0.1), split_sentences)
    assert found is not None and found.span.text == "Alaska ankommen." and found.span.end == found.sentence.end
    assert locate([passage], ReaderAnswer(0, 5, 5, "", 0.5, 0.1), split_sentences) is None
    assert locate([passage], ReaderAnswer(3, 0, 4, "", 0.5, 0.1), split_sentences) is None
    assert ReaderAnswer(0, 0, 1, "x", 0.2, 0.3).abstains and not ReaderAnswer(0, 0, 1, "x", 0.3, 0.2).abstains


# -- the seam -------------------------------------------------------------------------------


def test_a_question_answering_folder_reads_in_windows_and_batches(readers: dict[str, Path]):
    reader = load_reader(str(readers["random"]))
    long_text = " ".join(f"Satz {i} über den Gipfel in Alaska." for i in range(150))
    texts = [ARTICLE, long_text]
    batched = reader.read("Wann landet Putin?", texts)
    reader.batch_size = 1
    one_by_one = reader.read("Wann landet Putin?", texts)
    assert batched is not None and batched == one_by_one
    assert texts[batched.text][batched.start:batched.end] == batched.answer
    assert 0.0 <= batched.no_answer <= 1.0 and 0.0 < batched.score <= 1.0
    assert reader.read("q", []) is None
    with pytest.raises(Exception, match="longer than"):
        reader.read("q", texts, deadline=Deadline(0.0))


def test_settings_name_the_reader_and_the_answer_carries_its_span(readers: dict[str, Path], sample_index: Path, e5,
                                                                   model_cache_dir: Path):
    settings = Settings.from_env({"QABOT_READER": str(readers["answers"])}, cache_dir=model_cache_dir)
    with Retriever.open(sample_index, settings=settings, embedder=e5) as retriever:
        answer = retriever.ask("When does Putin land in Alaska?")
        text = retriever.store.article_text(answer.source.article_id)
    span = answer.span
    assert span is not None and answer.models is not None and answer.models.reader == "reader-answers"
    assert text[span.start:span.end] == span.text
    assert text[answer.sentence_start:answer.sentence_end] == answer.sentence
    assert answer.sentence_start <= span.start < span.end <= answer.sentence_end
    assert answer.to_dict()["span"] == {"text": span.text, "start": span.start, "end": span.end, "score": round(span.score, 4)}


def test_a_no_answer_score_above_the_best_span_abstains(readers: dict[str, Path], sample_index: Path, e5,
                                                         model_cache_dir: Path):
    settings = Settings(reader=str(readers["abstains"]), cache_dir=model_cache_dir)
    with Retriever.open(sample_index, settings=settings, embedder=e5) as retriever:
        answer = retriever.ask("When does Putin land in Alaska?")
    assert answer.sentence is None and answer.span is None and NO_ANSWER_NOTE in answer.notes
    assert answer.passages and answer.models is not None and answer.models.reader == "reader-abstains"


def test_a_broken_reader_folder_or_a_failing_reader_falls_back(tmp_path: Path, readers: dict[str, Path], sample_index: Path,
                                                              e5, model_cache_dir: Path, caplog: pytest.LogCaptureFixture):
    broken = tmp_path / "broken-reader"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    caplog.set_level(logging.WARNING)
    settings = Settings(reader=str(broken), cache_dir=model_cache_dir)
    with Retriever.open(sample_index, settings=settings, embedder=e5) as first, \
            Retriever.open(sample_index, settings=settings, embedder=e5) as second:
        assert first.reader is None and second.reader is None
        assert second.ask("When does Putin land in Alaska?").sentence == LANDING_SENTENCE
    loading = [r.getMessage() for r in caplog.records if "reader unavailable" in r.getMessage()]
    assert len(loading) == 1 and "broken-reader" in loading[0]

    class Raising:
        name = "raising"

        def read(self, question: str, texts: list[str], *, deadline: Deadline | None = None) -> ReaderAnswer | None:
            raise ValueError("sequence too long")

    store = Store.open(sample_index, model=e5.name)
    for reader in (Raising(), load_reader(str(readers["answers"]))):
        retriever = Retriever(store, e5, reader=reader, seam_seconds=None if isinstance(reader, Raising) else 0.0)
        for question in ("When does Putin land in Alaska?", "Wann landet Putin in Alaska?"):
            answer = retriever.ask(question)
            assert answer.sentence == LANDING_SENTENCE and answer.span is None and answer.models.reader is None
    failures = [r.getMessage() for r in caplog.records if "reader failed" in r.getMessage()]
    assert len(failures) == 2 and "sequence too long" in failures[0] and "longer than" in failures[1]
    store.close()


# -- rendering --------------------------------------------------------------------------------


def _answer_with_span() -> Answer:
    sentence = "Putin <landet> um 11.00 Uhr & nicht später."
    passage = Passage(chunk_id=1, article_id="a", title="T", date="2025-08-15", url=None, source=None,
                      text=sentence, start=100, end=100 + len(sentence), score=0.9)
    at = sentence.index("<landet> um 11.00")
    return Answer(question="Wann?", sentence=sentence, passages=(passage,), passage_index=0, sentence_start=100,
                  sentence_end=100 + len(sentence), span=Span("<landet> um 11.00", 100 + at, 100 + at + 17, 0.8))


def test_the_span_is_marked_in_the_terminal_and_bold_in_telegram():
    answer = _answer_with_span()
    assert chat.marked_sentence(answer, bold=False) == "Putin «<landet> um 11.00» Uhr & nicht später."
    assert chat.marked_sentence(answer, bold=True) == "Putin \x1b[1m<landet> um 11.00\x1b[0m Uhr & nicht später."
    assert "«<landet> um 11.00»" in chat.render_answer(answer)  # pytest's stdout is not a terminal
    html = telegram_format.render_answer(answer, "de")
    assert html.startswith("Putin <b>&lt;landet&gt; um 11.00</b> Uhr &amp; nicht später. [1]")
    assert telegram_format.plain_text(html).startswith(answer.sentence)
    plain = Answer(question="q", sentence="Ein Satz.", passages=answer.passages, passage_index=0, sentence_start=100,
                   sentence_end=109)
    assert telegram_format.render_answer(plain).startswith("<b>Ein Satz.</b> [1]")
    assert chat.marked_sentence(plain, bold=True) == "Ein Satz."
