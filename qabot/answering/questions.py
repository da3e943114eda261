"""A question as the Retriever takes it: cleaned the way article text is, or a QuestionError.

Every front end (CLI, chat, bot, HTTP API) reaches the model through ``Retriever.ask`` /
``Retriever.search``, which call :func:`clean_question` first: that is the one place a
question's text is checked. Questions come from command lines (undecodable bytes arrive as
lone surrogates, ``"\\udcff"``), JSON (``"\\ud800"``), chat clients (bidi controls, zero-width
spaces, decomposed umlauts); the tokenizer raises on lone surrogates, and invisible characters
change what FTS5 and the model see. So a question gets what an article gets
(:func:`qabot.ingest.cleaning.clean_chars`): lone surrogates become U+FFFD, control and
invisible characters go, NFC; then its whitespace is collapsed to single spaces.
"""

from __future__ import annotations

from qabot.errors import QuestionError
from qabot.ingest.cleaning import clean_chars

__all__ = ["clean_question"]


def clean_question(text: str, *, max_chars: int) -> str:
    """``text`` cleaned and on one line; QuestionError when it is not text, empty or too long.

    The length is counted after cleaning, so invisible characters do not count against it.
    """
    if not isinstance(text, str):  # callers outside typed code (JSON bodies) can pass anything
        raise QuestionError("the question must be text")
    question = " ".join(clean_chars(text).split())
    if not question:
        raise QuestionError("the question is empty; ask a question in English or German, e.g. “What happened last week?”")
    if len(question) > max_chars:
        raise QuestionError(f"the question is too long ({len(question)} characters; at most {max_chars})")
    return question
