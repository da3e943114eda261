"""Checking an LLM's cited reply against the passages it cites; pure, no I/O, no model.

``split_claims``     the reply as sentences, each with the ``[n]`` numbers it cites
``is_no_answer``     the reply says the archive does not answer (the prompt's sentinel, or a phrase)
``citation_problem`` no citation, or a number that is no passage
``fact_problem``     a number, date, time, month or name of the sentence that the cited text lacks
``support_units``    the sentences (and adjacent pairs) of a passage that the meaning check compares with
``judge``            the verdict on one claim, given its best similarity to those units
``compose``          the reply rebuilt from the supported sentences only

The numbers, dates, times and names are compared after the normalisers of
:mod:`qabot.answering.normalising` ("11.00 Uhr" = "11:00", Lukashenko = Lukaschenko).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from qabot.answering.normalising import fact_readings, facts, name_key, name_keys, name_matches, names
from qabot.ingest.sentences import split_sentences

NO_ANSWER = "NOT_IN_ARCHIVE"  # what the prompt asks the LLM to write when the passages do not answer

_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_NO_ANSWER_PHRASES = re.compile(
    r"not_in_archive|not in the archive|archive does not (?:answer|contain|say)|passages do not (?:answer|contain|say)|"
    r"nicht im archiv|archiv (?:beantwortet|enthält) (?:das|dies|die frage)? ?nicht|die passagen (?:beantworten|enthalten)",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


@dataclass(frozen=True)
class Claim:
    """One sentence of the reply: as written (markers included), without markers, and its citations."""

    text: str
    body: str
    citations: tuple[int, ...]


@dataclass(frozen=True)
class Verdict:
    """A claim and why it is unsupported (``reason`` None: supported); ``similarity`` its best match."""

    claim: Claim
    reason: str | None = None
    similarity: float | None = None

    @property
    def supported(self) -> bool:
        return self.reason is None


# -- splitting ----------------------------------------------------------------------------------


def _numbers(group: str) -> list[int]:
    """"1, 3" -> [1, 3]; "2-4" -> [2, 3, 4] (ranges of at most 10)."""
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group):
        lo, _, hi = re.sub(r"\s", "", part).replace("–", "-").partition("-")
        if hi and lo.isdigit() and hi.isdigit() and 0 <= int(hi) - int(lo) <= 10:
            out.extend(range(int(lo), int(hi) + 1))
        elif lo.isdigit():
            out.append(int(lo))
    return out


def split_claims(reply: str) -> tuple[Claim, ...]:
    """The reply's sentences; markers that open a sentence ("… Uhr. [1] Trump …") belong to the one before."""
    lines = [_BULLET.sub("", line) for line in reply.replace("\r", "").split("\n")]
    text = "\n\n".join(line.strip() for line in lines if line.strip())  # a line break ends a sentence too
    pieces = [s.text for s in split_sentences(text)]
    merged: list[str] = []
    for piece in pieces:
        lead = re.match(r"(?:\s*\[\d+(?:\s*[,;–-]\s*\d+)*\]\s*[.,;:]?)+", piece)
        if lead and merged:
            merged[-1] += " " + lead.group(0).strip()
            piece = piece[lead.end():].strip()
        if piece:
            merged.append(piece)
    claims = []
    for sentence in merged:
        cited = tuple(dict.fromkeys(n for m in _MARKER.finditer(sentence) for n in _numbers(m.group(1))))
        body = " ".join(_MARKER.sub(" ", sentence).split())
        body = re.sub(r"\s+([.,;:!?])", r"\1", body)
        if re.search(r"\w", body):
            claims.append(Claim(text=sentence.strip(), body=body, citations=cited))
    return tuple(claims)


def is_no_answer(reply: str) -> bool:
    """True when the reply says the passages do not answer (the sentinel or a usual phrasing)."""
    return bool(_NO_ANSWER_PHRASES.search(reply[:300]))


# -- citations ----------------------------------------------------------------------------------


def citation_problem(claim: Claim, passages: int) -> str | None:
    """Why the claim's citations are wrong: none at all, or a number that is not a passage."""
    if not claim.citations:
        return "no citation"
    wrong = [n for n in claim.citations if not 1 <= n <= passages]
    if wrong:
        return f"cites [{wrong[0]}], but there {'is only 1 passage' if passages == 1 else f'are only {passages} passages'}"
    return None


# -- the verdict --------------------------------------------------------------------------------


def fact_problem(body: str, cited: Sequence[str]) -> str | None:
    """The first number, date, time or name in ``body`` that ``cited`` (the cited texts) lacks."""
    readings = set().union(*(fact_readings(t) for t in cited)) if cited else set()
    for fact in facts(body):
        if not fact.readings & readings:
            return f"“{fact.shown}” is not in the cited passages"
    keys = set().union(*(name_keys(t) for t in cited)) if cited else set()
    for name in names(body):
        key = name_key(name)
        if key and not name_matches(key, keys):
            return f"the name “{name}” is not in the cited passages"
    return None


def support_units(text: str) -> list[str]:
    """What one claim may paraphrase: each sentence of ``text`` and each pair of neighbours."""
    sentences = [s.text for s in split_sentences(text)]
    return sentences + [f"{a} {b}" for a, b in itertools.pairwise(sentences)]


def judge(claim: Claim, passages: int, cited: Sequence[str], similarity: float | None, *, bar: float) -> Verdict:
    """The verdict on ``claim``: citations, then facts, then meaning (``similarity`` to its best
    unit of the cited passages must reach ``bar``; None skips the meaning check)."""
    problem = citation_problem(claim, passages) or fact_problem(claim.body, cited)
    if problem is None and similarity is not None and similarity < bar:
        problem = f"its meaning matches no sentence of the cited passages (similarity {similarity:.2f} < {bar:.2f})"
    return Verdict(claim, problem, similarity)


def compose(verdicts: Sequence[Verdict]) -> str | None:
    """The reply made of the supported sentences (as written, markers kept); None if none is."""
    kept = [v.claim.text for v in verdicts if v.supported]
    return " ".join(kept) if kept else None
