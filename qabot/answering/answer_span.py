"""From a reader's span to the answer sentence; pure functions only.

The reader (:mod:`qabot.models.reader`) returns character offsets into one passage's text.
:func:`locate` turns them into the sentence that holds the span's start (the answer sentence)
and a :class:`~qabot.documents.Span` whose offsets, like the sentence's, point into the
article's text. A span that runs past its sentence's end (readers sometimes cross a full stop)
is cut at that end, so the highlighted words always lie inside the sentence shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qabot.answering.picking import Candidate
from qabot.documents import Passage, Sentence, Span
from qabot.models.reader import ReaderAnswer

NO_ANSWER_NOTE = "The reader model found no answer in the top passages."


@dataclass(frozen=True)
class Located:
    """The answer sentence (offsets in the article) and the reader's span inside it."""

    sentence: Candidate
    span: Span


def locate(passages: Sequence[Passage], reading: ReaderAnswer, split: Callable[[str], list[Sentence]]) -> Located | None:
    """The sentence of ``passages[reading.text]`` holding the span, and the span; None when the
    span is empty or whitespace, or lies outside the passage."""
    if not 0 <= reading.text < len(passages):
        return None
    passage = passages[reading.text]
    start, end = reading.start, reading.end
    while start < end and passage.text[start].isspace():
        start += 1
    while end > start and passage.text[end - 1].isspace():
        end -= 1
    if not 0 <= start < end <= len(passage.text):
        return None
    sentences = split(passage.text)
    holder = next((s for s in sentences if s.start <= start < s.end), None)
    if holder is None:  # between sentences (whitespace the splitter trimmed): the next one
        holder = next((s for s in sentences if s.start >= start), None)
        if holder is None:
            return None
        start = holder.start
    end = max(start + 1, min(end, holder.end))
    offset = passage.start
    return Located(
        Candidate(reading.text, offset + holder.start, offset + holder.end, holder.text),
        Span(passage.text[start:end], offset + start, offset + end, float(reading.score)),
    )
