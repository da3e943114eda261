"""What every optional model seam (reranker, reader) shares.

``load_once``     build a model once per process and key; a failure is remembered and logged once
``Deadline``      a time budget, checked between batches: a slow model gives up with SlowModelError
``resolve``       the device and precision a seam runs with (its own device, else the embedder's)
``batched``       consecutive tuples of ``n`` (itertools.batched, which Python 3.11 lacks)

A seam that cannot be had is not an error for the caller: :func:`load_once` returns None and
the answer falls back to the bi-encoder's. Torch cannot stop a forward pass half-way, so the
budget is checked between batches; one batch may overrun it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

from qabot.errors import ModelError
from qabot.models.precision import bf16_supported, resolve_precision

log = logging.getLogger(__name__)

T = TypeVar("T")

_lock = threading.Lock()
_loaded: dict[Hashable, object] = {}  # key -> the model, or the ModelError it raised


def batched(items: Iterable[T], n: int) -> Iterator[tuple[T, ...]]:
    """Consecutive tuples of ``n`` items (the last may be shorter)."""
    it = iter(items)
    while batch := tuple(islice(it, n)):
        yield batch


class SlowModelError(ModelError):
    """An optional model ran past its time budget for one question."""


class Deadline:
    """A time budget in seconds (None: unlimited), checked with :meth:`check` between batches."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds

    def check(self, what: str) -> None:
        """Raise SlowModelError when the budget is spent."""
        if self._end is not None and time.monotonic() >= self._end:
            raise SlowModelError(f"{what} took longer than {self.seconds:g} s")


def resolve(device: str | None, fallback_device: str, precision: str) -> tuple[str, str]:
    """(device, "fp32"/"bf16"): the seam's own device, else the embedder's; bf16 only where
    the embedder would use it (see :func:`~qabot.models.precision.resolve_precision`)."""
    chosen = device or fallback_device
    return chosen, resolve_precision(precision, bf16_ok=bf16_supported(chosen))


def load_once(kind: str, key: Hashable, build: Callable[[], T]) -> T | None:
    """``build()``'s model, made once per process for ``key``; None when it cannot be loaded.

    A ModelError (or any other exception) is logged once, as one line, with what ``kind`` of
    seam fell back; later calls with the same key return None without trying again (restart the
    process after fixing the model).
    """
    with _lock:  # held while loading: two threads never load one model twice
        if key not in _loaded:
            try:
                _loaded[key] = build()
            except Exception as exc:  # noqa: BLE001 - any failure means "no such seam", never a crash
                error = exc if isinstance(exc, ModelError) else ModelError(f"{type(exc).__name__}: {exc}")
                _loaded[key] = error
                reason = " ".join(str(error).split())[:400]
                log.warning("%s unavailable, answering without it: %s", kind, reason)
        found = _loaded[key]
    return None if isinstance(found, ModelError) else found  # type: ignore[return-value]


def forget_loaded() -> None:
    """Drop every loaded model and remembered failure (for tests)."""
    with _lock:
        _loaded.clear()
