"""Sentence splitting for German (and English) news text; pure, no I/O.

A scan, not a model: every run of ``. ! ? …`` (plus closing quotes or brackets) that is
followed by whitespace is a candidate boundary, and a few rules veto the candidates
that German news text is full of: abbreviations (``z. B.``, ``Dr.``, ``Mio.``, ``Jan.``),
initials (``Wladimir W. Putin``), ordinals (``am 15. August``, ``im 20. Jahrhundert``),
enumerations (``1. Die …`` at a paragraph start) and ellipses. Numbers such as
``11.00 Uhr``, ``1.186`` or ``15.08.2025``, URLs, e-mail addresses and decimals never
produce a candidate because no whitespace follows their inner dots. A blank line always
ends a sentence.
"""

from __future__ import annotations

import re

from qabot.documents import Sentence
from qabot.lexicon import MONTHS

__all__ = ["MIN_SENTENCE_CHARS", "split_sentences"]

# Shorter "sentences" (a dateline, "Foto: dpa") are never answers: not embedded, not picked.
MIN_SENTENCE_CHARS = 12

_OPENING = "\"'„‚«»“‘([{"
_CLOSING = "\"'”“’‘»«)]}"

# A run of terminators, then closing quotes/brackets, then whitespace or the end: a candidate.
_CANDIDATE = re.compile(r"([.!?؟…]+)[\"'”“’‘»«)\]}]*(?=\s|\Z)")  # ؟ is the Arabic question mark
# Blank lines (possibly holding spaces) separate paragraphs.
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# "z.B", "u.a", "U.S", "e.g", "i.e", "d.h": letters joined by dots (the last dot is the candidate).
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_ORDINAL = re.compile(r"\d{1,3}|\d{1,2}\.\d{1,2}")  # "15." or a year-less date "15.08."
_ROMAN = re.compile(r"[IVXLC]{2,}")  # "Ludwig XIV.", "Benedikt XVI."
_WORD = re.compile(r"\S+")

# Abbreviations that (practically) never end a sentence; compared lower-cased, without the dot.
# Words that are also ordinary words ("Art", "mag", "Max", "best", "mind", "WG") are left out
# or get a narrower rule below. "etc.", "usw." and "v. Chr." are deliberately absent: they
# often do end a sentence, and when they do not, the next word is usually lower-case, which
# vetoes the boundary anyway.
_ABBREVIATIONS = frozenset(
    ["abb", "abg", "abk", "abs", "abschn", "abt", "allg", "anh", "anm", "bd", "bearb", "bes", "betr", "bsp", "bspw", "bzgl", "bzw", "ca", "dgl", "dipl", "dkfm", "dr", "ebd", "eig", "einschl", "engl", "entspr", "erg", "evtl", "exkl", "fa", "ff", "fig", "frz", "geb", "gebr", "gegr", "gem", "gest", "ggf", "ggü", "hbf", "hl", "hr", "hrn", "hrsg", "inkl", "insb", "ing", "jh", "jhd", "jhdt", "jr", "kap", "kath", "kfm", "kl", "lfd", "lt", "min", "mio", "mrd", "mwst", "nachf", "nr", "od", "orig", "pkt", "prof", "prot", "rd", "reg", "rel", "resp", "röm", "sek", "sen", "sog", "st", "std", "str", "tab", "tel", "tsd", "urspr", "verh", "vgl", "vs", "wiss", "zit", "ziff", "zzgl", "zzt", "mr", "mrs", "ms", "sr", "dept", "est", "gov", "col", "sgt", "capt", "rev", "approx", "jan", "feb", "febr", "mär", "apr", "jun", "jul", "aug", "sep", "sept", "okt", "oct", "nov", "dez", "dec"]
)
# An ordinal before a month is a date, not a sentence end: "am 3. Oktober", "zum 1. Jan.".
_MONTHS = frozenset(MONTHS)
# Nouns that follow an ordinal ("im 20. Jahrhundert", "zum 70. Geburtstag", "auf Platz 3." is
# the other kind: a cardinal that ends a sentence).
_ORDINAL_NOUNS = frozenset(
    ["jahrhundert", "jahrhunderts", "jahrtausend", "jahrtausends", "jahrestag", "geburtstag", "todestag", "mal", "runde", "spieltag", "stock", "stockwerk", "etage", "klasse", "liga", "kapitel", "staffel", "wahlgang", "durchgang"]
)
# Words before an ordinal ("am 3. Oktober", "der 3. Oktober", "seinem 80. …").
_ORDINAL_LEADS = frozenset(
    ["am", "im", "vom", "zum", "zur", "beim", "bis", "ab", "seit", "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines", "dieser", "diese", "diesem", "diesen", "jeden", "jedem", "jeder", "sein", "seine", "seinem", "seinen", "seiner", "ihr", "ihre", "ihrem", "ihren", "ihrer", "unser", "unsere", "unserem"]
)


def split_sentences(text: str) -> list[Sentence]:
    """Split ``text`` into sentences; each is a whitespace-trimmed span ``text[start:end]``.

    Blank lines always end a sentence; single newlines are ordinary whitespace.
    """
    sentences: list[Sentence] = []
    pos = 0
    for brk in _PARAGRAPH_BREAK.finditer(text):
        sentences.extend(_split_paragraph(text, pos, brk.start()))
        pos = brk.end()
    sentences.extend(_split_paragraph(text, pos, len(text)))
    return sentences


def _split_paragraph(text: str, start: int, end: int) -> list[Sentence]:
    para = text[start:end]
    out: list[Sentence] = []
    seg = 0
    for m in _CANDIDATE.finditer(para):
        if m.end() < len(para) and _is_boundary(para, m):
            _append(out, text, start + seg, start + m.end())
            seg = m.end()
    _append(out, text, start + seg, end)
    return out


def _append(out: list[Sentence], text: str, start: int, end: int) -> None:
    """Trim whitespace off the span and keep it unless nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        out.append(Sentence(start=start, end=end, text=text[start:end]))


def _is_boundary(para: str, m: re.Match[str]) -> bool:
    """Does the candidate ``m`` (inside one paragraph, not at its end) end a sentence?"""
    punct = m.group(1)
    after = m.end()
    while after < len(para) and para[after].isspace():
        after += 1
    if after == len(para):
        return True  # only whitespace follows: the paragraph ends here anyway
    if para[after].islower():
        # German and English sentences start upper-case; this alone vetoes most false
        # candidates ("z. B. die", "„Warum?“ fragte er", "… und dann").
        return False
    if punct[-1] in "?!؟":
        return True
    if punct.endswith("..") or punct[-1] == "…":
        # An ellipsis marks an omission far more often than a sentence end in news text.
        return False
    before = _word_start(para, m.start())
    token = para[before : m.start()].strip(_OPENING + _CLOSING)
    word = _WORD.match(para, after)
    next_word = word.group().strip(_OPENING + _CLOSING).rstrip(".,;:!?").lower() if word else ""
    at_line_start = before == 0 or para[before - 1] == "\n"
    return not _is_abbreviation(token, para, before, next_word, at_line_start=at_line_start)


def _word_start(para: str, i: int) -> int:
    """Where the whitespace-delimited word that ends at ``i`` starts."""
    while i > 0 and not para[i - 1].isspace():
        i -= 1
    return i


def _previous_word(para: str, before: int) -> str:
    """The whitespace-delimited word before position ``before``; "" if none."""
    end = before
    while end > 0 and para[end - 1].isspace():
        end -= 1
    return para[_word_start(para, end) : end]


def _is_abbreviation(token: str, para: str, before: int, next_word: str, *, at_line_start: bool) -> bool:
    """Is the period after ``token`` (which starts at ``para[before]``) part of it?"""
    if not token:
        return False
    low = token.lower()
    if len(token) == 1 and token.isalpha():
        return True  # initials ("W. Putin") and the parts of "z. B.", "u. a.", "d. h."
    if low in _ABBREVIATIONS or re.split(r"[-.]", low)[-1] in _ABBREVIATIONS:
        return True  # also "Univ.-Prof.", "Dipl.-Ing."
    if token == "Mag":
        return True  # the Austrian title "Mag. Maria …"; lower-case "mag." is the verb
    if low in ("art", "no") and next_word[:1].isdigit():
        return True  # "Art. 5 GG", "No. 5"; otherwise "Art" is the noun
    if _DOTTED.fullmatch(token):
        return True
    if _ORDINAL.fullmatch(token):
        if at_line_start:
            return True  # an enumeration: "1. Die Regierung …"
        if next_word in _MONTHS or next_word in _ORDINAL_NOUNS:
            return True
        prev = _previous_word(para, before)
        # "Std. – 2. Ben Swift", "1:19:57, 4. Benjamin Thorne": a rank in a results list.
        return prev.strip(_OPENING + _CLOSING).lower() in _ORDINAL_LEADS or prev[-1:] in ",:;–—-("
    return bool(_ROMAN.fullmatch(token))
