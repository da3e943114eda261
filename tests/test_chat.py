"""Plain-text rendering of answers, and the terminal chat's follow-ups (the bot's, shared)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from qabot.answering.conversation import Conversation
from qabot.documents import Answer, Passage
from qabot.frontends.chat import NOT_FOUND, citation, render_answer, snippet
from qabot.frontends.cli import cli

LANDING = "Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit (21.00 Uhr MESZ) mit dem Flugzeug in Alaska ankommen."
TRUMP = "Putin und Trump treffen sich später am Freitag im US-Staat Alaska."


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
    def ask(self, text: str, *, k: int | None = None) -> Answer:
        from qabot.errors import QuestionError

        if not text.strip():
            raise QuestionError("the question is empty")
        return Answer(question=text, sentence="s", passages=(_passage(),), passage_index=0)


def test_conversation_turns_remember_the_previous_question_and_explain_errors():
    conversation = Conversation(_Retriever())  # type: ignore[arg-type]
    turn = conversation.ask("Wann landet Putin in Alaska?")
    assert turn.answer is not None and conversation.previous() == "Wann landet Putin in Alaska?"
    bad = conversation.ask("  ")
    assert bad.answer is None and bad.message is not None and "empty" in bad.message
    assert conversation.ask("und wann spricht Trump?").asked == "wann spricht Trump? Alaska"


@pytest.mark.model
def test_the_terminal_chat_expands_followups_like_the_bot(sample_index, model_cache_dir, tmp_path, monkeypatch):
    """The chat asked follow-ups as typed: "Where does he land?" got a sentence about Trump's flight."""
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    for key in list(os.environ):
        if key.startswith("QABOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QABOT_INDEX", str(sample_index))
    monkeypatch.setenv("QABOT_CACHE_DIR", str(model_cache_dir))
    lines = "When does Putin land in Alaska?\nWhere does he land?\nand when does Trump arrive?\n"
    result = CliRunner().invoke(cli, ["chat"], input=lines, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    turns = result.output.strip().split("\n\n? ")
    firsts = [turn.split("\n")[1] for turn in turns]  # the answer's first line (wrapped at 100)
    assert len(turns) == 3, result.output
    assert firsts[0].startswith(LANDING[:80]) and firsts[1].startswith(LANDING[:80]), result.output  # "he" is Putin
    assert firsts[2].startswith(TRUMP), result.output


@pytest.mark.model
def test_the_terminal_chat_prints_the_extractive_answer_then_the_checked_llm_answer(sample_index, model_cache_dir,
                                                                                     tmp_path, monkeypatch):
    from tests.fake_openai import KEY, FakeOpenAI

    def reply(messages: list[dict]) -> str:
        blocks = messages[-1]["content"].split("\n\n[")
        number = next(i for i, block in enumerate(blocks) if "11.00 Uhr" in block)
        return f"Putin soll um 11.00 Uhr Ortszeit in Alaska ankommen. [{number}]"

    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("QABOT_"):
            monkeypatch.delenv(key)
    with FakeOpenAI(responder=reply) as llm:
        for key, value in {"QABOT_INDEX": str(sample_index), "QABOT_CACHE_DIR": str(model_cache_dir),
                           "QABOT_LLM_URL": llm.base_url, "QABOT_LLM_MODEL": "fake-model", "QABOT_LLM_API_KEY": KEY}.items():
            monkeypatch.setenv(key, value)
        result = CliRunner().invoke(cli, ["chat"], input="Wann landet Putin in Alaska?\n", catch_exceptions=False)
        asked = CliRunner().invoke(cli, ["ask", "--json", "Wann landet Putin in Alaska?"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index(LANDING[:60]) < out.index("LLM (fake-model, checked):") < out.index("Putin soll um 11.00 Uhr Ortszeit")
    assert KEY not in out
    import json

    data = json.loads(asked.output)
    assert data["reply_source"] == "llm" and data["reply"].startswith("Putin soll um 11.00 Uhr Ortszeit")
    assert data["models"]["llm"] == "fake-model" and data["sentence"] == LANDING
