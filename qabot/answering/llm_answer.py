"""The LLM answer: ask an LLM with the cited passages, check its reply, keep what is supported.

    >>> refiner = LLMAnswerer(llm, embedder)          # llm: qabot.models.llm.LLMClient
    >>> answer = refiner.refine(retriever.ask(question))
    >>> answer.reply, answer.reply_source, answer.unsupported

:func:`build_messages` makes the prompt: the question and the numbered passages (title, date,
text), the instruction to answer in the question's language with ``[n]`` after every
sentence, or to write ``NOT_IN_ARCHIVE``. :meth:`LLMAnswerer.check` runs the pure checks of
:mod:`qabot.answering.citations` and, for the sentences that pass them, the meaning check:
the claim's e5 embedding against each sentence (and pair of neighbouring sentences) of its
cited passages, the best cosine at least :data:`CALIBRATED_BAR` (``scripts/research/calibrate_citations.py``
measured it on XQuAD, English claims against German text). :meth:`LLMAnswerer.refine` puts
the supported sentences into ``Answer.llm_reply`` and the others into ``Answer.unsupported``.
When the archive has no answer, the call fails or nothing is supported, the answer stays
extractive (``models.llm`` is then None: the LLM's words are not what the user sees).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from qabot.answering.citations import (
    NO_ANSWER,
    Verdict,
    citation_problem,
    compose,
    fact_problem,
    is_no_answer,
    judge,
    split_claims,
    support_units,
)
from qabot.documents import Answer, Passage, Unsupported
from qabot.lexicon import detect_language
from qabot.models.embedding import Embedder
from qabot.models.llm import LLMClient

log = logging.getLogger(__name__)

# The meaning check's bar (cosine, e5 "passage: " prompt on both sides, as the Retriever embeds),
# calibrated by `.venv/bin/python -m scripts.research.calibrate_citations --en ../shared/eval/xquad-dev/xquad.en.json
# --de ../shared/eval/xquad-dev/xquad.de.json`: English sentences vs German paragraphs of XQuAD dev
# (120 paragraphs, 1,623 examples), tuned for F0.5 on the even articles, measured on the odd ones:
# the whole check (facts + meaning) precision 0.98, recall 0.54 (names lost in translation cost
# most of the recall); meaning alone precision 0.57, recall 0.95 (0.996 / 0.95 against other
# paragraphs of the same article only: it cannot see a changed number or name, the facts check does).
# Same-language pairs score higher than these cross-lingual ones, so for them the bar is lenient.
# For other embedding models it is a guess (DEFAULT_BAR).
CALIBRATED_BAR = {"multilingual-e5-small": 0.86}
DEFAULT_BAR = 0.80
UNIT_CACHE = 20_000  # embedded passage sentences and pairs kept for the next check
PASSAGE_CHARS = 1500  # per passage in the prompt: enough for a chunk of ~200 tokens

LANGUAGES = {"en": "English", "de": "German"}
SYSTEM = (
    "You answer questions about a news archive, using only the numbered passages you are given.\n"
    "- Answer in {language}, the language of the question, in one to three short sentences.\n"
    "- End every sentence with the numbers of the passages that say it, in square brackets: [1] or [1][3].\n"
    "- State only what those passages say. Copy numbers, dates, times and names exactly as they are written "
    "there. Add nothing from your own knowledge.\n"
    "- If the passages do not answer the question, reply with exactly " + NO_ANSWER + " and nothing else."
)


def default_bar(model: str) -> float:
    """The calibrated meaning-check bar for embedding ``model`` (a guess for uncalibrated models)."""
    return CALIBRATED_BAR.get(model.rsplit("/", 1)[-1], DEFAULT_BAR)


def build_messages(question: str, passages: Sequence[Passage], *, language: str | None = None) -> list[dict[str, str]]:
    """The chat messages: the rules (system), then the question and the numbered passages (user)."""
    language = language or detect_language(None, question)
    blocks = []
    for number, passage in enumerate(passages, start=1):
        head = f"[{number}] {' '.join(passage.title.split())}" + (f" ({passage.date})" if passage.date else "")
        text = " ".join(passage.text.split())
        blocks.append(f"{head}\n{text[:PASSAGE_CHARS]}")
    user = f"Question: {question}\n\nPassages:\n\n" + "\n\n".join(blocks)
    return [{"role": "system", "content": SYSTEM.format(language=LANGUAGES.get(language, "English"))},
            {"role": "user", "content": user}]


def cited_texts(passages: Sequence[Passage], numbers: Sequence[int]) -> list[str]:
    """The texts a claim cites (title, date and text: the prompt showed all three)."""
    return [f"{p.title}. {p.date or ''}. {p.text}" for n in numbers if 1 <= n <= len(passages)
            for p in [passages[n - 1]]]


@dataclass(frozen=True)
class Checked:
    """The checked reply: the supported sentences (None if none), the verdicts, and what it cost."""

    reply: str | None
    verdicts: tuple[Verdict, ...]
    check_seconds: float

    @property
    def unsupported(self) -> tuple[Unsupported, ...]:
        return tuple(Unsupported(v.claim.text, v.reason or "") for v in self.verdicts if not v.supported)


class CachedEmbed:
    """``embedder.embed_passages`` with a bounded cache: the meaning check embeds the cited passages'
    sentences and pairs, which the next reply about the same passages (a retry, a follow-up) needs
    again. Thread-safe: the cache is touched under a lock, embedding happens outside it, and each
    call's result is built from a local dict, so an entry evicted meanwhile is never lost."""

    def __init__(self, embedder: Embedder, size: int = UNIT_CACHE) -> None:
        self.embedder, self.size = embedder, size
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, texts: list[str]) -> np.ndarray:
        wanted = list(dict.fromkeys(texts))
        with self._lock:
            vectors = {t: self._cache[t] for t in wanted if t in self._cache}
            for text in vectors:
                self._cache.move_to_end(text)
        missing = [t for t in wanted if t not in vectors]
        if missing:
            vectors.update(zip(missing, np.asarray(self.embedder.embed_passages(missing), dtype=np.float32)))
            with self._lock:
                for text in missing:
                    self._cache[text] = vectors[text]
                    self._cache.move_to_end(text)
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, self.embedder.dimension), np.float32)


class LLMAnswerer:
    """Refines extractive answers with an LLM whose reply is checked; safe to share by threads.

    ``embed`` embeds texts for the meaning check (default: :class:`CachedEmbed` of ``embedder``).
    ``bar`` defaults to the calibrated one.
    """

    def __init__(self, llm: LLMClient, embedder: Embedder, *, bar: float | None = None,
                 embed: Callable[[list[str]], np.ndarray] | None = None) -> None:
        self.llm = llm
        self.embedder = embedder
        self.bar = bar if bar is not None else default_bar(embedder.name)
        self._embed = embed if embed is not None else CachedEmbed(embedder)

    @property
    def name(self) -> str:
        """The LLM's model name."""
        return self.llm.name

    def __repr__(self) -> str:
        return f"LLMAnswerer({self.llm!r}, bar={self.bar:.3f})"

    def check(self, reply: str, passages: Sequence[Passage]) -> Checked:
        """Judge every sentence of ``reply`` against ``passages``: citations, facts, then meaning."""
        started = time.perf_counter()
        claims = split_claims(reply)
        similarity: list[float | None] = [None] * len(claims)
        pending = [i for i, c in enumerate(claims)
                   if citation_problem(c, len(passages)) is None
                   and fact_problem(c.body, cited_texts(passages, c.citations)) is None]
        if pending:
            units = {n: [*support_units(passages[n - 1].text), passages[n - 1].title]
                     for i in pending for n in claims[i].citations}
            flat = list(dict.fromkeys(u for us in units.values() for u in us))
            vectors = self._embed([claims[i].body for i in pending] + flat)
            claim_vectors, unit_vectors = vectors[:len(pending)], dict(zip(flat, vectors[len(pending):]))
            for row, i in enumerate(pending):
                block = np.stack([unit_vectors[u] for n in claims[i].citations for u in units[n]])
                similarity[i] = float(np.max(block @ claim_vectors[row]))
        verdicts = tuple(judge(c, len(passages), cited_texts(passages, c.citations), s, bar=self.bar)
                         for c, s in zip(claims, similarity))
        return Checked(compose(verdicts), verdicts, time.perf_counter() - started)

    def refine(self, answer: Answer) -> Answer:
        """``answer`` with the checked LLM reply; unchanged (``models.llm`` None) when the archive
        has no answer, the call fails, the LLM says the passages do not answer, or nothing is supported."""
        extractive = replace(answer, models=replace(answer.models, llm=None)) if answer.models else answer
        if not answer.found or not answer.passages:
            return extractive
        completion = self.llm.try_complete(build_messages(answer.question, answer.passages))
        if completion is None:
            return extractive
        if is_no_answer(completion.text):
            log.info("the LLM found no answer in the passages (%.2f s); the extractive answer stands", completion.seconds)
            return extractive
        checked = self.check(completion.text, answer.passages)
        kept = sum(v.supported for v in checked.verdicts)
        log.info("LLM reply in %.2f s, checked in %.3f s: %d of %d sentences supported", completion.seconds,
                 checked.check_seconds, kept, len(checked.verdicts))
        if checked.reply is None:
            return replace(extractive, unsupported=checked.unsupported)
        models = replace(answer.models, llm=self.name) if answer.models else None
        return replace(answer, llm_reply=checked.reply, unsupported=checked.unsupported, models=models)
