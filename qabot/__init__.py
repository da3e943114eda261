"""qabot: ask a news archive a question and get a cited answer.

    >>> from qabot import Retriever
    >>> r = Retriever.open("index/my-archive")
    >>> answer = r.ask("When does Putin land in Alaska?")
    >>> answer.sentence, [p.title for p in answer.passages]

Build an index from Python with :func:`build_index` and an embedder from
:func:`load_embedder` (the CLI's ``qabot index`` does the same).
"""

from qabot.config import Settings
from qabot.documents import Answer, Article, Chunk, Passage, Problem
from qabot.models.embedding import load_embedder
from qabot.errors import QabotError
from qabot.indexer import IndexReport, build_index
from qabot.answering.retriever import Retriever

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
