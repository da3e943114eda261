"""Follow-up questions (pure) and the Conversation that every front end shares."""

from __future__ import annotations

import pytest

from qabot.answering.conversation import (
    Conversation,
    Turn,
    _topics,
    content_words,
    expand_followup,
    is_followup,
    topic_words,
)
from qabot.documents import Answer
from qabot.errors import QuestionError

PUTIN = "When does Putin land in Alaska?"
PUTIN_DE = "Wann landet Putin in Alaska?"


@pytest.mark.parametrize(("question", "previous", "expected"), [
    # the three: any verb, not only the sample's "land"/"arrive"/"ankommen"; a follow-up
    # that names its own actor borrows only the setting (with "Putin" e5 answered with his landing)
    ("and when does Trump leave?", PUTIN, "when does Trump leave? Alaska"),
    ("and when does Trump speak?", PUTIN, "when does Trump speak? Alaska"),
    ("und wann spricht Trump?", PUTIN, "wann spricht Trump? Alaska"),
    # ...and the sample's own verbs still work
    ("and when does Trump arrive?", PUTIN, "when does Trump arrive? Alaska"),
    ("Und wann kommt Trump an?", PUTIN_DE, "wann kommt Trump an? Alaska"),
    ("und wann landet Trump?", PUTIN_DE, "wann landet Trump? Alaska"),
    ("and when does Trump depart?", PUTIN, "when does Trump depart? Alaska"),
    ("und wann reist Trump ab?", PUTIN_DE, "wann reist Trump ab? Alaska"),
    ("and who greets Trump?", PUTIN, "who greets Trump? Alaska"),
    ("and when does Putin leave?", PUTIN, "when does Putin leave? Alaska"),
    ("and who is Lukashenko?", PUTIN, "who is Lukashenko? Alaska"),
    # its own setting replaces the previous one
    ("and in Anchorage?", "What happened in Alaska?", "in Anchorage? What happened"),
    ("und in Anchorage?", "Wer sprach in Alaska?", "in Anchorage? Wer sprach"),
    # a pronoun leans on the previous question's topic, however much else it says
    ("Und wo legte er Blumen nieder?", PUTIN_DE, "wo legte er Blumen nieder? Putin Alaska"),
    ("Where does he land?", PUTIN, "Where does he land? Putin Alaska"),
    ("and where did he lay flowers?", PUTIN, "where did he lay flowers? Putin Alaska"),
    ("Was sagte er dort?", PUTIN_DE, "Was sagte er dort? Putin Alaska"),
    ("and what happened there?", PUTIN, "what happened there? Putin Alaska"),
    # no verb of its own: the same question about something else (question word and verb too)
    ("und Trump?", "Wann beginnt der Gipfel?", "Trump? Wann beginnt"),
    ("what about Trump?", PUTIN, "Trump? When land Alaska"),
    ("und Trump in Alaska?", PUTIN_DE, "Trump in Alaska? Wann landet"),
    ("and Putin in Alaska?", PUTIN, "Putin in Alaska? When land"),
    # nothing of its own but a question word
    ("und wann?", "Wo landet Putin?", "wann? landet Putin"),
    ("Why?", PUTIN, "Why? Putin land Alaska"),
    ("Und warum?", "Wann trifft Trump Lukaschenko?", "warum? trifft Trump Lukaschenko"),
    ("and the summit?", PUTIN, "the summit? When land Alaska"),
    # a follow-up that names its own complete topic only loses its "and"
    ("and when does the summit in Anchorage begin?", PUTIN, "when does the summit in Anchorage begin?"),
    ("Und wann beginnt das Treffen in Anchorage?", PUTIN, "wann beginnt das Treffen in Anchorage?"),
    ("and when does Trump leave Alaska?", PUTIN, "when does Trump leave Alaska?"),
    ("und was sagte Peskow über den Gipfel?", PUTIN_DE, "was sagte Peskow über den Gipfel?"),
    ("and who attended the peace talks?", PUTIN, "who attended the peace talks?"),
    ("also, how many people died in the flood?", PUTIN, "how many people died in the flood?"),
    # not follow-ups: unchanged
    ("When does the summit begin?", PUTIN, "When does the summit begin?"),
    ("Who is Lukashenko?", PUTIN, "Who is Lukashenko?"),
    ("Wie heißt der neue Elefant im Zoo Hamburg?", PUTIN_DE, "Wie heißt der neue Elefant im Zoo Hamburg?"),
    ("Andrew asked when the summit begins?", PUTIN, "Andrew asked when the summit begins?"),
    # nothing to build on
    ("and when does Trump arrive?", None, "and when does Trump arrive?"),
    ("and when does Trump arrive?", "", "and when does Trump arrive?"),
])
def test_expand_followup(question, previous, expected):
    assert expand_followup(question, previous) == expected


def test_borrowing_is_capped():
    previous = "When do Merkel, Macron, Scholz, Biden, Trump, Putin and Xi meet in Geneva?"
    assert expand_followup("und wann?", previous, max_words=3) == "wann? Merkel Macron Scholz"


@pytest.mark.parametrize(("question", "expected"), [
    ("and when does Trump arrive?", True),
    ("Und wann kommt Trump an?", True),
    ("what about Trump?", True),
    ("Was ist mit Trump?", True),
    ("Where does he land?", True),
    ("Wo war sie gestern?", True),
    ("Why?", True),
    ("Und wo?", True),
    ("When does Putin land in Alaska?", False),
    ("Andrew asked when the summit begins?", False),  # "and" must be a word of its own
    ("Is it true that the European Commission proposed a new budget rule for the member states?", False),  # long
    ("ok", False),
    ("", False),
])
def test_is_followup(question, expected):
    assert is_followup(question) is expected


@pytest.mark.parametrize(("text", "topic"), [
    (PUTIN, ["Putin", "Alaska"]),
    (PUTIN_DE, ["Putin", "Alaska"]),
    ("When does the summit in Anchorage begin?", ["summit", "Anchorage"]),
    ("When does the summit begin?", ["summit"]),
    ("Who attended the peace talks?", ["peace", "talks"]),
    ("When does the euro crisis end?", ["euro", "crisis"]),
    ("How many people died in the flood?", ["people", "flood"]),
    ("Where did he lay flowers?", ["flowers"]),
    ("Wo legte er Blumen nieder?", ["Blumen"]),
    ("Wann beginnt das Treffen der EU in Brüssel?", ["Treffen", "EU", "Brüssel"]),
])
def test_topic_words_are_names_and_nouns_not_verbs(text, topic):
    assert topic_words(text) == topic


def test_settings_are_the_topic_words_a_preposition_opens():
    assert _topics(PUTIN) == [("Putin", False), ("Alaska", True)]
    assert _topics("Was sagte Peskow über den Gipfel in Anchorage?") == [("Peskow", False), ("Gipfel", True), ("Anchorage", True)]
    assert _topics("Who attended the talks in the capital of Alaska?") == [
        ("talks", False), ("capital", True), ("Alaska", True)]


def test_content_words_keep_verbs_and_names_drop_function_words():
    assert content_words(PUTIN) == ["Putin", "land", "Alaska"]
    assert content_words("Wann kommt Trump an, und wann landet er?") == ["kommt", "Trump", "landet"]
    assert content_words("Was sagt die EU?") == ["sagt", "EU"]


class FakeRetriever:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def ask(self, question: str, *, k: int | None = None) -> Answer:
        if not question.strip():
            raise QuestionError("the question is empty")
        self.asked.append(question)
        return Answer(question=question, sentence=f"about {question}", passages=())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_conversation_expands_followups_per_chat_and_returns_frozen_turns():
    retriever = FakeRetriever()
    conversation = Conversation(retriever)
    first = conversation.ask(PUTIN, chat=1)
    assert first == Turn(question=PUTIN, asked=PUTIN, answer=first.answer) and first.answer is not None
    turn = conversation.ask("and when does Trump leave?", chat=1)
    assert turn.question == "and when does Trump leave?" and turn.asked == "when does Trump leave? Alaska"
    assert conversation.ask("and when does Trump leave?", chat=2).asked == "and when does Trump leave?"  # another chat
    assert retriever.asked[1] == "when does Trump leave? Alaska"
    with pytest.raises(AttributeError):
        turn.asked = "x"  # type: ignore[misc]


def test_a_bad_question_explains_itself_and_is_not_remembered():
    conversation = Conversation(FakeRetriever())
    conversation.ask(PUTIN)
    bad = conversation.ask("   ")
    assert bad.answer is None and bad.message is not None and "empty" in bad.message
    assert conversation.previous() == PUTIN


def test_an_old_previous_question_is_forgotten_and_so_are_the_oldest_chats():
    clock = Clock()
    conversation = Conversation(FakeRetriever(), memory_seconds=60, max_chats=2, clock=clock)
    conversation.ask(PUTIN, chat="a")
    clock.now += 61
    assert conversation.previous("a") is None
    assert conversation.ask("und wann spricht Trump?", chat="a").asked == "und wann spricht Trump?"
    conversation.ask(PUTIN, chat="b")
    conversation.ask(PUTIN, chat="c")
    assert conversation.previous("a") is None and conversation.previous("c") == PUTIN


def test_the_retriever_can_be_given_per_question():
    """The bot hands in the current retriever (it changes when the index is rebuilt)."""
    first, second = FakeRetriever(), FakeRetriever()
    conversation = Conversation()
    conversation.ask(PUTIN, retriever=first)
    conversation.ask("and when does Trump leave?", retriever=second)
    assert second.asked == ["when does Trump leave? Alaska"]
    with pytest.raises(ValueError):
        conversation.ask(PUTIN)
