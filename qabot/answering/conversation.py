"""Follow-up questions, shared by every front end: the terminal chat, the Telegram bot, the API.

``is_followup``     "and when ...?", "und Trump?", "Why?", or a short question leaning on a pronoun
``expand_followup`` the follow-up with what it leaves out borrowed from the previous question
``content_words``   the words of a question that carry meaning, in order
``topic_words``     of those, the ones that name what it is about (names, nouns), not what happens
``Conversation``    remembers each chat's previous question, expands follow-ups, asks the retriever

What a follow-up borrows is decided by what it names itself, never by a list of verbs. Topic
words are capitalised words (names; German nouns) and, in English, lower-case words in a noun
phrase ("the summit"); a topic word after a preposition ("in Alaska") is a setting, any other an
actor. "and when does Trump leave?" after "When does Putin land in Alaska?" names its own actor,
so it borrows only the setting: "when does Trump leave? Alaska". Borrowing "Putin" as well made
the real model answer with Putin's landing; borrowing the verb "land" would do the same. A
pronoun borrows the actor it stands for ("Where does he land? Putin Alaska"); a follow-up that
names two topic words ("and when does the summit in Anchorage begin?") stands alone; one without
a verb of its own ("und Trump?") asks the previous question again, so it borrows the question
word and the verb too ("Trump? Wann landet Alaska").
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from qabot.documents import Answer
from qabot.errors import QuestionError
from qabot.lexicon import PRONOUNS, QUESTION_WORDS, STOPWORDS, WORD, detect_language

log = logging.getLogger(__name__)

MEMORY_SECONDS = 900.0  # a follow-up leans on a previous question at most this old
MAX_BORROWED = 6  # words borrowed from the previous question, at most
SHORT_QUESTION = 8  # words; a pronoun in a longer question does not make it a follow-up

_FOLLOWUP_START = re.compile(
    r"^\s*(?:and what about|and how about|what about|how about|und was ist mit|was ist mit|und wie ist es mit|"
    r"and|und|also|but|aber|sowie)\b[\s,]*",
    re.IGNORECASE,
)
# Function words the lexicon's STOPWORDS leave in: auxiliaries, modals, determiners, fillers.
_FUNCTION_WORDS = frozenset({
    "am", "been", "being", "can", "could", "should", "shall", "may", "might", "must", "this", "these", "not",
    "no", "yes", "so", "than", "but", "about", "into", "over", "after", "before", "during", "any", "some",
    "all", "much", "many", "very", "just", "also", "again", "ever", "still", "now", "actually", "exactly",
    "dieser", "diese", "dieses", "diesem", "diesen", "kann", "können", "konnte", "soll", "sollen", "sollte",
    "muss", "müssen", "darf", "wollen", "wurde", "worden", "sein", "seine", "seiner", "ihre", "ihren",
    "aber", "denn", "doch", "noch", "schon", "auch", "eigentlich", "genau", "mal", "bitte", "viel", "sehr",
    "nun", "jetzt", "wieder", "hier",
})
# In English, a lower-case word right after one of these starts a noun phrase ("the summit").
_NOUN_LEADS = frozenset({
    "the", "a", "an", "this", "that", "these", "those", "his", "her", "its", "their", "our", "my", "your",
    "in", "at", "of", "on", "about", "for", "with", "from", "into", "over", "after", "before", "during",
    "near", "between", "against", "without", "under", "which", "whose", "many", "much", "several", "few",
})


# A topic word after one of these (determiners between allowed) is a setting, not an actor.
_PREPOSITIONS = frozenset({
    "in", "at", "on", "near", "to", "from", "into", "onto", "over", "around", "across", "during", "after",
    "before", "inside", "outside", "through", "toward", "towards", "within", "about",
    "im", "ins", "am", "an", "auf", "bei", "beim", "nach", "aus", "über", "vor", "zum", "zur", "um", "unter",
    "gegen", "durch", "hinter", "neben", "zwischen", "während", "seit",
})
_DETERMINERS = frozenset({
    "the", "a", "an", "this", "that", "these", "those", "his", "her", "its", "their", "our", "my", "your",
    "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines", "sein",
    "seine", "seinem", "seinen", "ihr", "ihre", "ihrem", "ihren",
})


def _words(text: str) -> list[str]:
    return WORD.findall(text)


def _is_content(word: str) -> bool:
    low = word.lower()
    if low in STOPWORDS or low in _FUNCTION_WORDS or low in PRONOUNS or low in QUESTION_WORDS:
        return False
    return len(word) >= 3 or (len(word) >= 2 and word.isupper())  # "EU", "UN" are names


def content_words(text: str) -> list[str]:
    """The words that carry meaning (names, nouns, verbs), in order, without repeats."""
    seen: set[str] = set()
    out: list[str] = []
    for word in _words(text):
        if _is_content(word) and word.lower() not in seen:
            seen.add(word.lower())
            out.append(word)
    return out


def topic_words(text: str) -> list[str]:
    """The content words that name what ``text`` is about: names and nouns, not its verbs.

    Capitalised words count in both languages (German capitalises every noun). In English a
    lower-case word counts inside a noun phrase: after "the", "in", "of", "many", ...; after
    such a word (a compound, "the peace talks"); or right after the verb (its object, "lay
    flowers"). The first other lower-case word is the verb ("does Putin *land*"): it does not.
    """
    return [word for word, _ in _topics(text)]


def _topics(text: str) -> list[tuple[str, bool]]:
    """:func:`topic_words`, each with True when it is a setting ("in Alaska", "über den Gipfel")
    rather than an actor or thing ("Putin", "the summit")."""
    words = _words(text)
    english = detect_language(None, text) == "en"
    topic: list[tuple[str, bool]] = []
    verb_seen = False
    state = ""  # what the word before was: a noun-phrase lead, "noun", "verb", "name" or ""
    setting = False  # inside a phrase that a preposition opened
    for i, word in enumerate(words):
        low = word.lower()
        if not _is_content(word):
            state = low if low in _NOUN_LEADS else ""
            setting = low in _PREPOSITIONS or (setting and (low in _DETERMINERS or low in ("of", "von")))
            continue
        if word[:1].isupper():
            topic.append((word, setting))
            state = "name"
            continue
        following = words[i + 1] if i + 1 < len(words) else ""
        compound = bool(following) and following[:1].islower() and _is_content(following)
        if not english:  # German: lower-case words are verbs, adjectives, adverbs
            state, setting = "", False
        elif state in _NOUN_LEADS or state == "verb" or (state == "noun" and (verb_seen or compound)):
            topic.append((word, setting))
            state = "noun"
        elif not verb_seen:
            verb_seen, state, setting = True, "verb", False
        else:
            state, setting = "", False
    seen: set[str] = set()
    return [(w, s) for w, s in topic if not (w.lower() in seen or seen.add(w.lower()))]  # type: ignore[func-returns-value]


def _has_pronoun(words: list[str]) -> bool:
    return any(w.lower() in PRONOUNS for w in words)


def is_followup(question: str) -> bool:
    """True when ``question`` leans on the one before.

    It starts with "and"/"und"/"what about"/...; or it is short and uses a pronoun ("Where
    does he land?"); or it is a bare question word ("Why?", "Und wann?").
    """
    if _FOLLOWUP_START.match(question):
        return True
    words = _words(question)
    if not words:
        return False
    if len(words) <= SHORT_QUESTION and _has_pronoun(words):
        return True
    return not content_words(question) and any(w.lower() in QUESTION_WORDS for w in words)


def expand_followup(question: str, previous: str | None, *, max_words: int = MAX_BORROWED) -> str:
    """``question`` with what it leaves out borrowed from ``previous`` when it is a follow-up.

    "and when does Trump leave?" after "When does Putin land in Alaska?" becomes "when does
    Trump leave? Alaska": it names its own actor, so it borrows only the setting it lacks
    (borrowing "Putin" too would pull the answer back to Putin's landing). "Where does he
    land?" borrows the actor its pronoun stands for as well ("... Putin Alaska"). "and when
    does the summit in Anchorage begin?" names its own complete topic and only loses its
    "and". "und Trump?" has no verb: it borrows the question word and verb too ("Trump?
    Wann landet Alaska").
    """
    if not previous or not is_followup(question):
        return question
    stripped = _FOLLOWUP_START.sub("", question, count=1).strip() or question
    words = _words(stripped)
    own = {w.lower() for w in words}
    topics = _topics(stripped)
    predicate = [w for w in content_words(stripped) if w not in {t for t, _ in topics}]
    asks = any(w.lower() in QUESTION_WORDS for w in words)
    pronoun = _has_pronoun(words)
    complete = not pronoun and len(topics) >= 2
    # A slot the follow-up fills itself is not borrowed: "Trump" replaces "Putin", "in Anchorage" "in Alaska".
    borrow_actors = not complete and (pronoun or all(is_setting for _, is_setting in topics))
    borrow_settings = not complete and not any(is_setting for _, is_setting in topics)
    borrow_predicate = not predicate and (not asks or not topics)  # "und Trump?", "Why?", "und wann?"
    previous_topics = {w.lower(): is_setting for w, is_setting in _topics(previous)}
    extra: list[str] = []
    for word in _words(previous):
        low = word.lower()
        if low in own or word in extra:
            continue
        if low in previous_topics:
            wanted = borrow_settings if previous_topics[low] else borrow_actors
        elif low in QUESTION_WORDS:
            wanted = borrow_predicate and not asks
        else:
            wanted = borrow_predicate and _is_content(word)
        if wanted:
            extra.append(word)
    extra = extra[:max_words]
    return f"{stripped} {' '.join(extra)}" if extra else stripped


class Asker(Protocol):
    """What a conversation needs from a retriever."""

    def ask(self, question: str, *, k: int | None = None) -> Answer: ...


@dataclass(frozen=True)
class Turn:
    """One question and what it produced: the answer, or a message when it failed kindly.

    ``question`` is what the user wrote; ``asked`` what the retriever was asked (a follow-up
    expanded with the previous question's words).
    """

    question: str
    asked: str
    answer: Answer | None
    message: str | None = None


class Conversation:
    """Questions from many chats: each chat's previous question makes its follow-ups whole.

    ``chat`` is any key (a Telegram chat id; ``None`` for the one terminal user). A previous
    question older than ``memory_seconds`` is forgotten; so is the oldest chat beyond
    ``max_chats``. Safe to use from several threads (the bot asks from worker threads).
    """

    def __init__(self, retriever: Asker | None = None, *, memory_seconds: float = MEMORY_SECONDS,
                 max_chats: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.retriever = retriever
        self.memory_seconds, self.max_chats, self._clock = memory_seconds, max_chats, clock
        self._previous: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def previous(self, chat: Hashable = None) -> str | None:
        """What ``chat`` asked last (as expanded), or None when nothing recent."""
        with self._lock:
            entry = self._previous.get(chat)
        if entry is None or self._clock() - entry[1] > self.memory_seconds:
            return None
        return entry[0]

    def expand(self, question: str, chat: Hashable = None) -> str:
        """``question`` as it will be asked: a follow-up made whole from ``chat``'s previous question."""
        return expand_followup(question, self.previous(chat))

    def remember(self, asked: str, chat: Hashable = None) -> None:
        """Make ``asked`` what ``chat``'s next follow-up builds on."""
        with self._lock:
            self._previous[chat] = (asked, self._clock())
            self._previous.move_to_end(chat)
            while len(self._previous) > self.max_chats:
                self._previous.popitem(last=False)

    def ask(self, question: str, *, chat: Hashable = None, retriever: Asker | None = None,
            k: int | None = None) -> Turn:
        """Expand a follow-up, ask ``retriever`` (default: this conversation's), remember the question.

        A bad question (empty, too long) gives a Turn with ``message`` and no answer; it is
        not remembered.
        """
        asker = retriever if retriever is not None else self.retriever
        if asker is None:
            raise ValueError("no retriever to ask")
        asked = self.expand(" ".join(question.split()), chat)
        try:
            answer = asker.ask(asked, k=k)
        except QuestionError as exc:
            return Turn(question=question, asked=asked, answer=None, message=str(exc))
        self.remember(answer.question, chat)
        return Turn(question=question, asked=answer.question, answer=answer)
