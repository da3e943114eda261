"""The frozen dataclasses that cross module boundaries. No I/O here.

Article   one news article as read from the archive
Problem   a file or line of the archive that was skipped (or read with a warning), and why
Sentence  a sentence's character span inside a text
Chunk     a sentence-aligned piece of an article, with offsets into the article text
Passage   a retrieved chunk with its article's metadata and a score (what gets cited)
Answer    the answering sentence plus the cited passages
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from qabot.links import text_fragment_url


@dataclass(frozen=True)
class Article:
    """One article. ``id`` is stable across runs; ``date`` is ISO ``YYYY-MM-DD`` or None.

    ``path`` and ``line`` say where it was read from (line is None for one-file articles).
    """

    id: str
    text: str
    title: str
    date: str | None = None
    url: str | None = None
    source: str | None = None
    path: str = ""
    line: int | None = None
    # True for the earlier parts of a long article stored in parts (qabot.store.partial); not hashed.
    partial: bool = False

    @property
    def content_hash(self) -> str:
        """sha256 over everything that ends up in the index (not where it was read from)."""
        h = hashlib.sha256()
        for part in (self.title, self.date or "", self.url or "", self.source or "", self.text):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


@dataclass(frozen=True)
class Problem:
    """Something wrong with an archive input: where (path, line) and why.

    ``skipped`` is False for a warning where the input was still read (e.g. a
    latin-1 file decoded as cp1252); True when nothing from it was indexed.
    """

    path: str
    line: int | None
    reason: str
    skipped: bool = True

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "reason": self.reason, "skipped": self.skipped}


@dataclass(frozen=True)
class Sentence:
    """A sentence as a span ``text[start:end]`` of some text (whitespace trimmed)."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """A sentence-aligned piece of an article: ``article.text[start:end] == text``."""

    article_id: str
    index: int
    text: str
    start: int
    end: int
    n_tokens: int


@dataclass(frozen=True)
class Passage:
    """A cited passage: a chunk of an article with the article's metadata and a score.

    ``start``/``end`` are character offsets into the article's text.
    """

    chunk_id: int
    article_id: str
    title: str
    date: str | None
    url: str | None
    source: str | None
    text: str
    start: int
    end: int
    score: float
    duplicates: int = 0  # near-identical passages (e.g. the same wire story) collapsed into this one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Span:
    """The exact words that answer, as a reader model found them inside the answer sentence.

    ``start``/``end`` are character offsets into the article's text (like a sentence's);
    ``score`` is the reader's confidence (0-1).
    """

    text: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Unsupported:
    """A sentence of an LLM's reply that the citation check removed, and why."""

    sentence: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "reason": self.reason}


@dataclass(frozen=True)
class Models:
    """Which models made an answer; None where a seam is not configured (or fell back)."""

    embedder: str
    reranker: str | None = None
    reader: str | None = None
    llm: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """The answer to a question.

    ``sentence`` is the sentence that answers (None when the archive has no answer);
    ``passage_index`` points into ``passages`` at the passage that holds it, and
    ``sentence_start``/``sentence_end`` are its offsets in that article's text.
    ``context`` is the sentence with one sentence either side, as it stands in the article.
    ``span`` is the reader model's answer inside the sentence (None without a reader).
    ``llm_reply`` is an LLM's answer whose every sentence passed the citation check (with
    ``[n]`` markers into ``passages``); ``unsupported`` lists the sentences that did not.
    ``reply`` is what the user is shown: the checked LLM answer, else the sentence.
    """

    question: str
    sentence: str | None
    passages: tuple[Passage, ...] = field(default_factory=tuple)
    passage_index: int | None = None
    sentence_start: int | None = None
    sentence_end: int | None = None
    context: str | None = None
    score: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    span: Span | None = None
    llm_reply: str | None = None
    unsupported: tuple[Unsupported, ...] = field(default_factory=tuple)
    models: Models | None = None

    @property
    def reply(self) -> str | None:
        """The text the user is shown: the checked LLM answer, else the answer sentence."""
        return self.llm_reply if self.llm_reply is not None else self.sentence

    @property
    def reply_source(self) -> str:
        """``"llm"`` when :attr:`reply` is the checked LLM answer, else ``"extractive"``."""
        return "llm" if self.llm_reply is not None else "extractive"

    @property
    def found(self) -> bool:
        """True when an answering sentence was found."""
        return self.sentence is not None

    @property
    def source(self) -> Passage | None:
        """The passage that holds the answering sentence."""
        if self.passage_index is None:
            return None
        return self.passages[self.passage_index]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``qabot ask --json``."""
        return {
            "question": self.question,
            "sentence": self.sentence,
            "found": self.found,
            "score": round(self.score, 4),
            "context": self.context,
            "citation": self.passage_index,
            # the cited passage's URL with a text fragment that lands on the sentence (null without a URL)
            "url_to_sentence": text_fragment_url(self.source.url, self.sentence) if self.source else None,
            "reply": self.reply,
            "reply_source": self.reply_source,
            "unsupported": [u.to_dict() for u in self.unsupported],
            "span": self.span.to_dict() if self.span is not None else None,
            "models": self.models.to_dict() if self.models is not None else None,
            "notes": list(self.notes),
            "passages": [
                {
                    "article_id": p.article_id,
                    "title": p.title,
                    "date": p.date,
                    "url": p.url,
                    "source": p.source,
                    "text": p.text,
                    "start": p.start,
                    "end": p.end,
                    "score": round(p.score, 4),
                    "duplicates": p.duplicates,
                }
                for p in self.passages
            ],
        }
