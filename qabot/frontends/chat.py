"""Answers as plain text, shared by `qabot ask`, `qabot search` and `qabot chat`.

The terminal chat and the Telegram bot give the same answers, follow-ups included: both go
through :class:`~qabot.answering.conversation.Conversation`;
only the rendering differs (plain text here, HTML in the bot).
"""

from __future__ import annotations

import os
import sys
import textwrap

from qabot.documents import Answer, Passage

__all__ = ["NOT_FOUND", "citation", "marked_sentence", "render_answer", "snippet"]

NOT_FOUND = "I found nothing in the archive that answers this."
SNIPPET_CHARS = 220
# How a reader's answer span is marked inside the sentence: bold on a terminal, guillemets in a
# pipe or a file (readable without colours; NO_COLOR=1 asks for them on a terminal too).
BOLD = ("\x1b[1m", "\x1b[0m")
MARKS = ("«", "»")


def _bold_here() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def marked_sentence(answer: Answer, *, bold: bool | None = None) -> str | None:
    """The answer sentence with the reader's span marked (bold: ANSI bold; else «…»; None: bold
    when stdout is a terminal); the sentence as it is without a span inside it."""
    sentence, span, start = answer.sentence, answer.span, answer.sentence_start
    if sentence is None or span is None or start is None or not start <= span.start < span.end <= start + len(sentence):
        return sentence
    lo, hi = span.start - start, span.end - start
    opening, closing = BOLD if (_bold_here() if bold is None else bold) else MARKS
    return f"{sentence[:lo]}{opening}{sentence[lo:hi]}{closing}{sentence[hi:]}"


def snippet(passage: Passage, *, limit: int = SNIPPET_CHARS, focus: int | None = None) -> str:
    """The passage text cut at word boundaries to about ``limit`` characters.

    ``focus`` is an offset in the article's text (e.g. where the answering sentence
    starts): the snippet then starts there instead of at the passage's beginning.
    """
    text = passage.text
    prefix = ""
    if focus is not None and passage.start < focus < passage.end:
        text = text[focus - passage.start :]
        prefix = "… "
    text = " ".join(text.split())
    if len(text) <= limit:
        return prefix + text
    cut = text[:limit].rsplit(" ", 1)[0]
    return prefix + cut + " …"


def citation(number: int, passage: Passage) -> str:
    """``[1] Title (2025-08-15) · source · url`` on one line."""
    parts = [f"[{number}] {passage.title}"]
    if passage.date:
        parts.append(f"({passage.date})")
    line = " ".join(parts)
    extras = [x for x in (passage.source, passage.url) if x]
    if passage.duplicates:
        extras.append(f"+{passage.duplicates} similar")
    return line + ("".join(f" · {x}" for x in extras))


def render_answer(answer: Answer, *, width: int = 100) -> str:
    """The answer as plain text: the sentence, its source number, then the numbered sources."""
    lines: list[str] = []
    if answer.sentence is None:
        lines.append(NOT_FOUND)
    elif answer.llm_reply is not None:  # the checked LLM answer, its [n] markers into the sources below
        lines.extend(textwrap.wrap(answer.llm_reply, width=width) or [""])
    else:
        number = (answer.passage_index or 0) + 1
        lines.extend(textwrap.wrap(f"{marked_sentence(answer)} [{number}]", width=width) or [""])
    if answer.passages:
        lines.append("")
        lines.append("Sources:" if answer.sentence is not None else "Closest passages:")
        for i, passage in enumerate(answer.passages, start=1):
            focus = answer.sentence_start if i - 1 == answer.passage_index else None
            lines.append(citation(i, passage))
            text = snippet(passage, focus=focus)
            lines.extend(textwrap.wrap(text, width=width, initial_indent="    ", subsequent_indent="    "))
    for note in answer.notes:
        lines.append(f"Note: {note}")
    if answer.llm_reply is not None and answer.unsupported:
        lines.append(f"Note: {len(answer.unsupported)} sentence(s) of the LLM's answer left out: not supported by the sources.")
    return "\n".join(lines)
