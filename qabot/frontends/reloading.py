"""Keep answering while the index on disk is rebuilt: reopen it between questions.

:class:`RetrieverHolder` hands out the current :class:`~qabot.answering.retriever.Retriever` to each
question and swaps in a fresh one when the index's manifest was replaced (a rebuild writes
it atomically: new inode and mtime). A question in flight keeps the retriever it started with.
A reopening that fails (mid-rebuild, broken, a model that cannot be loaded) keeps the old one
answering and is retried with exponential backoff (1 s doubling to 5 min), logged once per
manifest version. :class:`IndexOpener` opens the folder with the model its manifest names,
so a rebuild with another model is picked up too. Nothing here knows about Telegram: the
bot and the HTTP API share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.locations import Location
from qabot.models.embedding import Embedder, embedder_for
from qabot.store import same_model
from qabot.store.backends import backend_for, manifest_at

log = logging.getLogger(__name__)

FIRST_RETRY = 1.0  # seconds after a failed reopening; doubles after each further failure
MAX_RETRY = 300.0


class RetrieverHolder:
    """The current Retriever; reopened between questions when the index on disk was rebuilt.

    ``use()`` hands out the current one and counts its users; a replaced one is closed once
    its last user is done, unless it is the first one (that belongs to the caller). A failed
    reopening is retried no sooner than ``first_retry`` seconds later, doubling up to
    ``max_retry``; a new manifest version is tried at once. ``clock`` is for tests.
    """

    def __init__(self, retriever: Retriever, *, index_dir: Location | None = None,
                 opener: Callable[[Location], Retriever] | None = None, first_retry: float = FIRST_RETRY,
                 max_retry: float = MAX_RETRY, clock: Callable[[], float] = time.monotonic) -> None:
        self.current, self.first = retriever, retriever
        self.index_dir, self._opener = index_dir, opener
        self._version = manifest_version(index_dir)
        self.first_retry, self.max_retry, self._clock = first_retry, max_retry, clock
        self._failed: tuple[int, int, int] | None = None  # the manifest version that would not open
        self._delay = 0.0
        self._retry_at = 0.0
        self._users: Counter[int] = Counter()  # id(retriever) -> questions using it
        self._retired: list[Retriever] = []
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Retriever]:
        async with self._lock:  # one reload at a time; questions already running keep theirs
            await self._maybe_reload()
            retriever = self.current
            self._users[id(retriever)] += 1
        try:
            yield retriever
        finally:
            self._users[id(retriever)] -= 1
            for old in [r for r in self._retired if self._users[id(r)] <= 0]:
                self._retired.remove(old)
                if old is not self.first:
                    old.close()

    def close(self) -> None:
        """Close every Retriever this holder opened (at shutdown)."""
        for retriever in {id(r): r for r in [*self._retired, self.current]}.values():
            if retriever is not self.first:
                retriever.close()
        self._retired.clear()

    async def _maybe_reload(self) -> None:
        if self.index_dir is None or self._opener is None:
            return
        version = manifest_version(self.index_dir)  # a stat per question: cheap
        if version is None or version == self._version:
            return
        if version == self._failed and self._clock() < self._retry_at:
            return  # backing off: keep answering from the current one
        try:
            fresh = await asyncio.to_thread(self._opener, self.index_dir)
        except Exception as exc:  # noqa: BLE001 - mid-rebuild, broken, or no model: keep serving the old one
            self._note_failure(version, exc)
            return
        self._version, self._failed = version, None
        self._retired.append(self.current)
        self.current = fresh
        log.info("reopened the rebuilt index at %s", self.index_dir)

    def _note_failure(self, version: tuple[int, int, int], exc: Exception) -> None:
        """Schedule the next try; a WARNING once per manifest version, the traceback at DEBUG."""
        first = version != self._failed
        self._delay = self.first_retry if first else min(self._delay * 2, self.max_retry)
        self._failed, self._retry_at = version, self._clock() + self._delay
        if first:
            log.warning("the index at %s changed but cannot be reopened (%s); still answering from the "
                        "previous one, retrying with backoff", self.index_dir, exc)
        log.debug("reopening %s failed; next try in %.0f s", self.index_dir, self._delay, exc_info=exc)


class IndexOpener:
    """Opens an index folder with the model its manifest names (a rebuild may change it).

    The model in use is reused while the manifest names it; another one is loaded with
    ``load`` (default: :func:`~qabot.models.embedding.embedder_for` with ``settings``) and
    then kept for the next reopening.
    """

    def __init__(self, settings: Settings, embedder: Embedder, *,
                 load: Callable[[str], Embedder] | None = None) -> None:
        self.settings, self.embedder = settings, embedder
        self._load = load if load is not None else (lambda model: embedder_for(settings, model))

    def __call__(self, folder: Location) -> Retriever:
        manifest = manifest_at(folder, timeout=self.settings.pg_timeout)
        if not (same_model(manifest.model, self.embedder.name) and manifest.dimension == self.embedder.dimension):
            log.info("the index at %s is now built with %s (%d dims), not %s: loading it",
                     folder, manifest.model, manifest.dimension, self.embedder.name)
            self.embedder = self._load(manifest.model)
        retriever = Retriever.open(folder, settings=self.settings, embedder=self.embedder)
        retriever.warm_up()  # here, in the reloading thread, not in the next question
        return retriever


def manifest_version(location: Location | None) -> tuple[int, ...] | None:
    """The index's reload signal (:meth:`qabot.store.interface.Backend.version`): it changes when a
    rebuild was published; None where there is nothing to reopen (a PostgreSQL index: its readers
    see each committed batch as it lands) or no index yet."""
    return backend_for(location).version() if location else None
