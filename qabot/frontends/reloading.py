"""Keep answering while the index on disk is rebuilt: reopen it between questions.

:class:`RetrieverHolder` hands out the current :class:`~qabot.answering.retriever.Retriever` to each
question and swaps in a fresh one when the index's manifest was replaced (a rebuild writes
it atomically: new inode and mtime). A question in flight keeps the retriever it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from qabot.answering.retriever import Retriever
from qabot.store.store import MANIFEST_NAME

log = logging.getLogger(__name__)


class RetrieverHolder:
    """The current Retriever; reopened between questions when the index on disk was rebuilt.

    ``use()`` hands out the current one and counts its users; a replaced one is closed once
    its last user is done, unless it is the first one (that belongs to the caller).
    """

    def __init__(self, retriever: Retriever, *, index_dir: Path | None = None,
                 opener: Callable[[Path], Retriever] | None = None) -> None:
        self.current, self.first = retriever, retriever
        self.index_dir, self._opener = index_dir, opener
        self._version = manifest_version(index_dir)
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
        try:
            fresh = await asyncio.to_thread(self._opener, self.index_dir)
        except Exception:  # mid-rebuild or broken: keep answering from the old one, retry next time
            log.warning("the index at %s changed but cannot be reopened yet", self.index_dir, exc_info=True)
            return
        self._version = version
        self._retired.append(self.current)
        self.current = fresh
        log.info("reopened the rebuilt index at %s", self.index_dir)


def manifest_version(folder: Path | None) -> tuple[int, int, int] | None:
    """Identifies the manifest as written: a rebuild replaces it atomically (new inode, mtime).

    Its ``updated_at`` is not enough on its own: it has whole seconds only.
    """
    try:
        info = (Path(folder) / MANIFEST_NAME).stat() if folder else None
    except OSError:  # missing for a moment: no version, so nothing is reloaded yet
        return None
    return (info.st_mtime_ns, info.st_ino, info.st_size) if info else None
