"""Plain-text rendering of answers and the conversation turn."""

from __future__ import annotations

from qabot.frontends.chat import NOT_FOUND, Conversation, citation, render_answer, snippet
from qabot.documents import Answer, Passage


def _passage(text: str = "Eins zwei drei. Putin landet um 11.00 Uhr.", **kw) -> Passage:
    base = {"chunk_id": 1, "article_id": "a", "title": "Gipfel in Alaska", "date": "2025-08-15", "url": "https://example.org/a",
                "source": "dpa", "text": text, "start": 100, "end": 100 + len(text), "score": 0.9}
    base.update(kw)
    return Passage(**base)


def test_citation_has_title_date_source_and_link():
    assert citation(1, _passage()) == "[1] Gipfel in Alaska (2025-08-15) · dpa · https://example.org/a"
    assert citation(2, _passage(date=None, url=None, source=None)) == "[2] Gipfel in Alaska"


def test_snippet_cuts_at_a_word_and_can_start_at_the_answer():
    long = _passage(text="wort " * 100)
    assert snippet(long, limit=22).endswith(" …") and len(snippet(long, limit=22)) <= 24
    assert snippet(_passage(), focus=116) == "… Putin landet um 11.00 Uhr."
    assert snippet(_passage(), focus=5) == "Eins zwei drei. Putin landet um 11.00 Uhr."


def test_render_answer_names_the_source_of_the_sentence():
    answer = Answer(question="q", sentence="Putin landet um 11.00 Uhr.", passages=(_passage(score=0.5), _passage()),
                    passage_index=1, sentence_start=116, sentence_end=142)
    text = render_answer(answer)
    assert text.splitlines()[0] == "Putin landet um 11.00 Uhr. [2]"
    assert "Sources:" in text and "[2] Gipfel in Alaska (2025-08-15)" in text
    assert "… Putin landet um 11.00 Uhr." in text


def test_render_not_found_says_so_plainly():
    text = render_answer(Answer(question="q", sentence=None, passages=(_passage(),)))
    assert text.splitlines()[0] == NOT_FOUND and "Closest passages:" in text


class _Retriever:
    def ask(self, text: str) -> Answer:
        from qabot.errors import QuestionError

        if not text.strip():
            raise QuestionError("the question is empty")
        return Answer(question=text, sentence="s", passages=(_passage(),), passage_index=0)


def test_conversation_turns_remember_the_last_and_explain_errors():
    conversation = Conversation(_Retriever())  # type: ignore[arg-type]
    turn = conversation.ask("Wann?")
    assert turn.answer is not None and conversation.last is turn
    bad = conversation.ask("  ")
    assert bad.answer is None and "empty" in bad.message and conversation.last is turn
