"""Which language a question is in: German or English, from its own words.

Pure and tiny on purpose: the bot picks its reply language with it, and the Retriever its
calibrated "not in the archive" threshold (German questions score higher against German
text than English ones do, so one threshold cannot serve both).
"""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W\d_][\w-]*")
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

def detect_language(language_code: str | None, text: str = "") -> str:
    """"de" or "en": the question's own words decide; Telegram's ``language_code`` breaks ties."""
    words = [w.lower() for w in WORD.findall(text)]
    german = sum(w in GERMAN for w in words) + 2 * bool(re.search(r"[äöüß]", text.lower()))
    english = sum(w in ENGLISH for w in words)
    if german != english:
        return "de" if german > english else "en"
    return "de" if (language_code or "").lower().startswith("de") else "en"
