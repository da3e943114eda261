"""qabot: ask a news archive a question and get a cited answer.

    >>> from qabot import Retriever
    >>> r = Retriever.open("index/my-archive")
    >>> answer = r.ask("When does Putin land in Alaska?")
    >>> answer.sentence, [p.title for p in answer.passages]

Build an index from Python with :func:`build_index` and an embedder from
:func:`load_embedder` (the CLI's ``qabot index`` does the same).

The public API (``__all__``; tests/test_public_api.py keeps this list and it equal):

    Retriever       open an index, ``ask`` a question, ``search`` passages
    Answer          what ``ask`` returns: the sentence, its context and the cited passages
    Passage         one cited passage: title, date, url, text, offsets, score
    Article, Chunk  an archive's articles and the indexed pieces of them
    build_index     index an archive into a folder; returns an IndexReport
    IndexReport     counts, timing and the Problems of one indexing run
    Problem         one bad file or line of an archive: path, line, reason
    load_embedder   a model name or folder -> an embedder for build_index and Retriever
    Settings        every setting, read from the environment (``Settings.load()``) and validated
    QabotError      the base of every error qabot raises on purpose
"""

from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.documents import Answer, Article, Chunk, Passage, Problem
from qabot.errors import QabotError
from qabot.indexer import IndexReport, build_index
from qabot.models.embedding import load_embedder

__all__ = [
    "Answer",
    "Article",
    "Chunk",
    "IndexReport",
    "Passage",
    "Problem",
    "QabotError",
    "Retriever",
    "Settings",
    "build_index",
    "load_embedder",
]
