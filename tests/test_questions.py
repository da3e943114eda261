"""The question path: whatever text arrives, the answer is an Answer or a QuestionError, never a crash.

Questions come from command lines (undecodable bytes become lone surrogates), JSON ("\\ud800"),
chat clients (bidi controls, zero-width characters, emoji). The fuzz cases are random but
seeded, so a failure repeats; hypothesis is not installed.
"""

from __future__ import annotations

import json
import random
import unicodedata

import pytest

from qabot.answering.questions import clean_question
from qabot.answering.retriever import MAX_QUESTION_CHARS, Retriever
from qabot.errors import QuestionError
from qabot.indexer import build_index
from qabot.store import Store
from tests.fakes import HashEmbedder

from .conftest import LANDING_SENTENCE

# The pools a fuzz question is drawn from: each names a way text goes wrong in the wild.
POOLS = {
    "ascii": [chr(c) for c in range(0x20, 0x7F)],
    "german": [*"äöüÄÖÜßẞ", "Putin ", "Alaska ", "Wann ", "landet ", "Gipfel ", "im August 2025 ", "11.00 Uhr "],
    "controls": [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]],
    "surrogates": ["\ud800", "\udbff", "\udc00", "\udcff", "\udfff"],
    "invisible": ["\u00ad", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))],
    "spaces": ["\xa0", "\u2028", "\u2029", "\u3000", "\u2009", "\t", "\n", "\r", "\x0b", "\x0c", "\x85"],
    "rtl": list("مرحبا بالعالم متى يهبط بوتين") + list("שלום מתי נוחת פוטין"),
    "emoji": ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇩🇪", "❤️", "🫠"],
    "combining": ["o\u0308", "a\u0301", "\u0301", "\u20dd", "e\u0328\u0301"],
    "syntax": [*"\"'*():-^+.,;!?{}[]<>@#&|\\/", "AND ", "OR ", "NOT ", "NEAR(", "title:"],
    "odd": ["\uffff", "\ufffe", "\ufffd", "\U0010ffff", "\U000e0001", "\ue000", "\x00"],
}


def _random_text(rng: random.Random) -> str:
    length = rng.choice([1, 2, 5, 20, 80, 300])
    pools = rng.sample(sorted(POOLS), rng.randint(1, 4))
    parts = []
    for _ in range(length):
        if rng.random() < 0.1:  # anything at all, surrogates included
            parts.append(chr(rng.randint(0, 0x10FFFF)))
        else:
            parts.append(rng.choice(POOLS[rng.choice(pools)]))
    return "".join(parts)


def _fuzz_cases(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [_random_text(rng) for _ in range(count)]


# Hand-picked: each once broke, or could break, some part of the path.
SPECIAL = [
    "Wann landet Putin\udcff in Alaska?",  # qabot ask "$(printf 'Wann landet Putin\xff in Alaska?')"
    "\ud800",
    "When does Putin land in Alaska?\ud83d",  # half an emoji pair, as a JSON "\ud83d" escape
    "\x00Wann\x07 landet\x1b[31m Putin?",
    "?!?...,,,;;;",
    "\"\"\"***((()))",
    "متى يهبط بوتين في ألاسكا؟",
    "\u202eWann landet Putin in Alaska?\u202c",
    "😀😀😀 👨\u200d👩\u200d👧",
    "Wa\u0308nn la\u0308ndet Putin",
    "x" * 10_000,
    "Wann " * 399 + "Putin",
    "\u200b\u200b\ufeff",
    "\t\n \u3000",
]


def _check_clean(question: str, max_chars: int) -> None:
    """What a clean question is: encodable, visible, composed, on one line, short enough."""
    assert question and len(question) <= max_chars
    question.encode("utf-8")  # no lone surrogates
    assert question == question.strip() and "  " not in question
    assert unicodedata.is_normalized("NFC", question)
    assert not any(unicodedata.category(c) == "Cc" for c in question)
    assert not any(c in question for c in "\u00ad\u200b\u2060\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@pytest.mark.parametrize("text", SPECIAL + _fuzz_cases(400, seed=9))
def test_clean_question_gives_clean_text_or_a_question_error(text: str):
    try:
        question = clean_question(text, max_chars=MAX_QUESTION_CHARS)
    except QuestionError:
        return
    _check_clean(question, MAX_QUESTION_CHARS)
    assert clean_question(question, max_chars=MAX_QUESTION_CHARS) == question  # cleaning twice changes nothing


def test_clean_question_keeps_what_matters():
    assert clean_question("  Wann\u00a0landet\n\tPutin\u200b in Alaska?  ", max_chars=100) == "Wann landet Putin in Alaska?"
    assert clean_question("Wa\u0308nn", max_chars=100) == "Wänn"
    assert clean_question("Wann landet Putin\udcff in Alaska?", max_chars=100) == "Wann landet Putin\ufffd in Alaska?"
    assert clean_question("👨\u200d👩\u200d👧 متى؟", max_chars=100) == "👨\u200d👩\u200d👧 متى؟"  # ZWJ sequences stay


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "text"), (b"Wann?", "text"), (42, "text"), ("", "empty"), (" \n\t", "empty"), ("\u200b\x00\ufeff", "empty"),
     ("x" * 11, "too long")],
)
def test_clean_question_refuses_what_cannot_be_asked(text: object, message: str):
    with pytest.raises(QuestionError, match=message):
        clean_question(text, max_chars=10)  # type: ignore[arg-type]


def test_the_length_limit_counts_the_cleaned_text():
    assert clean_question("\u200b" * 50 + "Wann?", max_chars=10) == "Wann?"


# -- through a Retriever --------------------------------------------------------------------


@pytest.fixture(scope="module")
def hash_retriever(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("questions")
    rows = [
        {"id": "alaska", "date": "2025-08-15", "title": "Gipfel", "text": LANDING_SENTENCE + " Der Gipfel beginnt um 11.30 Uhr."},
        {"id": "zoo", "date": "2025-08-14", "title": "Zoo", "text": "Der Zoo bekommt zwei Elefanten aus Thailand. Sie kommen im August."},
    ]
    (folder / "a.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    embedder = HashEmbedder()
    build_index(folder / "a.jsonl", folder / "ix", embedder=embedder)
    retriever = Retriever(Store.open(folder / "ix", model=embedder.name), embedder)
    yield retriever
    retriever.close()


@pytest.mark.parametrize("text", SPECIAL + _fuzz_cases(60, seed=99))
def test_any_question_through_a_retriever_answers_or_is_a_question_error(hash_retriever: Retriever, text: str):
    try:
        answer = hash_retriever.ask(text)
        passages = hash_retriever.search(text, 2)
    except QuestionError:
        return
    _check_clean(answer.question, MAX_QUESTION_CHARS)
    assert len(passages) <= 2


def test_a_question_with_an_undecodable_byte_gets_its_answer(hash_retriever: Retriever):
    answer = hash_retriever.ask("Wann landet Putin\udcff in Alaska?")
    assert answer.question == "Wann landet Putin\ufffd in Alaska?"
    assert answer.passages and answer.passages[0].article_id == "alaska"


# -- through the real model -----------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize("text", [SPECIAL[0], SPECIAL[1], SPECIAL[2], SPECIAL[3], SPECIAL[6], SPECIAL[8], SPECIAL[11], *_fuzz_cases(5, seed=7)])
def test_the_real_model_never_sees_a_question_it_cannot_tokenize(sample_retriever: Retriever, text: str):
    try:
        answer = sample_retriever.ask(text)
    except QuestionError:
        return
    _check_clean(answer.question, MAX_QUESTION_CHARS)


@pytest.mark.model
def test_the_real_model_answers_despite_an_undecodable_byte(sample_retriever: Retriever):
    assert sample_retriever.ask("Wann landet Putin\udcff in Alaska?").sentence == LANDING_SENTENCE
