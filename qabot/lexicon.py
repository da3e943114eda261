"""The shared vocabulary: stopwords, pronouns, question words, month names, language detection.

One place for the word lists that ingest (sentence splitting), answering (keyword search,
answer picking, date filters) and the front ends (follow-up questions, reply language) need,
so they cannot drift apart. Pure and tiny on purpose; it imports nothing from qabot.

- :data:`STOPWORDS`: words the keyword search drops (English and German function words).
- :data:`PRONOUNS`, :data:`QUESTION_WORDS`: what marks a follow-up ("and when did he ...?").
- :data:`MONTHS`: every month name and abbreviation (English, German, Austrian) -> 1..12;
  :data:`MONTH_NAMES` holds only the written-out names (no abbreviations).
- :func:`detect_language`: German or English, from a question's own words. The bot picks its
  reply language with it, and the Retriever its calibrated "not in the archive" threshold
  (German questions score higher against German text than English ones do).
"""

from __future__ import annotations

import re

__all__ = [
    "ENGLISH", "GERMAN", "MONTHS", "MONTH_ABBREVIATIONS", "MONTH_NAMES", "PRONOUNS", "QUESTION_WORDS",
    "STOPWORDS", "WORD", "detect_language",
]

WORD = re.compile(r"[^\W\d_][\w-]*")

# Language detection: frequent words that are clearly one language or the other.
GERMAN = frozenset({
    "der", "die", "das", "den", "dem", "des", "und", "ist", "sind", "wann", "wer", "wie", "wo", "warum",
    "wieso", "welche", "welcher", "welches", "nicht", "mit", "ein", "eine", "einen", "einem", "auf",
    "für", "von", "sich", "hat", "haben", "wird", "werden", "kommt", "ankommt", "landet", "über",
    "nach", "bei", "zum", "zur", "auch", "noch", "schon", "gibt", "sagte", "wurde", "wurden", "uhr",
    "heute", "gestern"
})
ENGLISH = frozenset({
    "the", "and", "is", "are", "when", "who", "how", "where", "why", "which", "does", "did", "do", "of",
    "to", "for", "with", "were", "will", "has", "have", "arrive", "arrives", "land", "lands", "about",
    "what", "whom", "whose", "there", "this", "that", "after", "before", "at", "by", "on", "from"
})

# The keyword search drops these: they match nearly every chunk, so they only add noise to bm25.
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "had", "has",
    "have", "how", "in", "is", "it", "of", "on", "or", "the", "to", "was", "were", "what", "when", "where",
    "which", "who", "whom", "whose", "why", "will", "with", "would",
    "der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "eines", "einem", "einen", "und",
    "oder", "ist", "sind", "war", "waren", "wird", "werden", "hat", "haben", "hatte", "wie", "wer", "wen",
    "wem", "wessen", "wann", "wo", "warum", "welche", "welcher", "welches", "im", "am", "auf",
    "aus", "bei", "mit", "nach", "von", "vor", "zu", "zum", "zur", "um", "für", "über", "es", "sie", "er",
    "ich", "wir", "ihr", "man", "sich", "nicht",
})

# A short question with one of these refers back to the previous one ("and when did he land?").
PRONOUNS = frozenset({
    "he", "she", "it", "they", "him", "her", "them", "his", "its", "their", "there", "then", "that",
    "those", "er", "sie", "es", "ihn", "ihm", "ihr", "ihnen", "dort", "da", "dann", "dessen", "deren"
})
QUESTION_WORDS = frozenset({
    "when", "who", "how", "where", "why", "which", "what", "whom", "wann", "wer", "wie", "wo", "warum",
    "wieso", "welche", "welcher", "welches", "was", "woher", "wohin", "wieviel", "viele"
})

# Month number -> its written-out names (English, German, Austrian "Jänner"/"Feber", "Maerz"
# as typed without umlauts), then its abbreviations. Lower case; callers match case-insensitively.
_MONTH_TABLE: dict[int, tuple[str, str]] = {
    1: ("january januar jänner", "jan jän"),
    2: ("february februar feber", "feb febr"),
    3: ("march märz maerz", "mar mär mrz"),
    4: ("april", "apr"),
    5: ("may mai", ""),
    6: ("june juni", "jun"),
    7: ("july juli", "jul"),
    8: ("august", "aug"),
    9: ("september", "sep sept"),
    10: ("october oktober", "oct okt"),
    11: ("november", "nov"),
    12: ("december dezember", "dec dez"),
}
MONTH_NAMES: dict[str, int] = {name: n for n, (names, _) in _MONTH_TABLE.items() for name in names.split()}
MONTH_ABBREVIATIONS: dict[str, int] = {name: n for n, (_, short) in _MONTH_TABLE.items() for name in short.split()}
MONTHS: dict[str, int] = {**MONTH_NAMES, **MONTH_ABBREVIATIONS}


def detect_language(language_code: str | None, text: str = "") -> str:
    """"de" or "en": the question's own words decide; Telegram's ``language_code`` breaks ties."""
    words = [w.lower() for w in WORD.findall(text)]
    german = sum(w in GERMAN for w in words) + 2 * bool(re.search(r"[äöüß]", text.lower()))
    english = sum(w in ENGLISH for w in words)
    if german != english:
        return "de" if german > english else "en"
    return "de" if (language_code or "").lower().startswith("de") else "en"
