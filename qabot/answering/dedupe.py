"""Near-duplicate collapse for cited passages. Pure; no I/O.

A news archive holds the same wire story many times (another outlet's intro, a shortened
copy, a corrected number, a different source line). Texts are compared as sets of hashed
word n-gram shingles; ``collapse`` groups a best-first list into keepers and their copies.

    groups = collapse(passages, lambda p: p.text, key=lambda p: p.article_id)
    cited = [keeper for keeper, _copies in groups]
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["MIN_CONTAINMENT_SHINGLES", "collapse", "normalise", "shingles", "similarity"]

T = TypeVar("T")

# Containment on tiny sets is noise: a 3-shingle text "contained" in a story says little.
MIN_CONTAINMENT_SHINGLES = 8

_NON_WORD = re.compile(r"[^\w\s]+")  # \w is Unicode-aware: umlauts and ß stay


def normalise(text: str) -> str:
    """Lowercase, replace punctuation with spaces, collapse whitespace."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def shingles(text: str, *, n: int = 5) -> frozenset[int]:
    """The word ``n``-gram shingles of ``normalise(text)``, each hashed with CRC-32.

    CRC-32 rather than ``hash()``: Python salts string hashes per process, and the
    shingles must be the same in every run. A text of fewer than ``n`` words gives one
    shingle of its whole normalised text; an empty text gives the empty set.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    words = normalise(text).split()
    if not words:
        return frozenset()
    if len(words) < n:
        return frozenset({_crc(" ".join(words))})
    return frozenset(_crc(" ".join(words[i : i + n])) for i in range(len(words) - n + 1))


def _crc(s: str) -> int:
    return zlib.crc32(s.encode("utf-8"))


def similarity(a: frozenset[int], b: frozenset[int]) -> float:
    """Similarity of two shingle sets in [0, 1].

    The Jaccard index, or the containment ``|a & b| / min(|a|, |b|)`` when that is
    higher and the smaller set has at least ``MIN_CONTAINMENT_SHINGLES`` shingles, so
    that a shortened copy of a story scores as a duplicate of the full one.
    Two empty sets score 0.0: there is nothing to compare.
    """
    if not a or not b:
        return 0.0
    common = len(a & b)
    jaccard = common / len(a | b)
    smaller = min(len(a), len(b))
    if smaller >= MIN_CONTAINMENT_SHINGLES:
        return max(jaccard, common / smaller)
    return jaccard


def collapse(
    items: Sequence[T],
    text: Callable[[T], str],
    *,
    threshold: float = 0.6,
    key: Callable[[T], Any] | None = None,
) -> list[tuple[T, list[T]]]:
    """Group near-duplicates of a best-first list: ``[(keeper, [its duplicates])]``.

    Walking ``items`` in order, an item whose ``similarity`` with some earlier keeper is
    at least ``threshold`` joins the most similar such keeper (the earlier one on a tie);
    otherwise it becomes a keeper itself. Keepers and each group's duplicates keep the
    input order. Duplicates are compared with keepers only, never with each other.

    ``key`` (e.g. ``lambda p: p.article_id``): items with equal keys are never collapsed
    into each other. Neighbouring chunks of one article overlap by a sentence, and a
    short chunk can be mostly "contained" in its neighbour; they are still different
    parts of the article, not copies. An item may still join a keeper with another key.

    The 0.6 default: with 5-word shingles, one changed word removes up to five shingles,
    so a changed number, a swapped intro or source line, or a cut-down copy keeps its
    containment well above 0.6, while two separately written stories on the same topic
    share only a few names and phrases (well below 0.2). O(n^2) comparisons; meant for
    the few dozen passages of one answer.
    """
    sets = [shingles(text(item)) for item in items]
    keys = [key(item) for item in items] if key is not None else None
    keepers: list[int] = []
    groups: dict[int, list[T]] = {}
    for i, item in enumerate(items):
        best, best_sim = -1, threshold
        for k in keepers:
            if keys is not None and keys[k] == keys[i]:
                continue
            sim = similarity(sets[k], sets[i])
            if sim >= best_sim and (best < 0 or sim > best_sim):
                best, best_sim = k, sim
        if best < 0:
            keepers.append(i)
            groups[i] = []
        else:
            groups[best].append(item)
    return [(items[k], groups[k]) for k in keepers]
