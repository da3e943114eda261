"""Where an index is decides which backend holds it: the one factory.

:func:`backend_for` maps a location (a folder path, or a ``postgresql://`` URL) to a
:class:`qabot.store.interface.Backend`; nothing above the store asks which one it got. Backends
are named by module path and imported only when used, so a folder index never loads the
PostgreSQL driver (txtai's ``ann/dense/factory.py`` does the same for its vector indexes).

A third backend (another vector database, say) is one module with a class implementing
``Backend`` and one line in ``BACKENDS``, keyed by its locations' ``scheme`` (a location type
in :mod:`qabot.locations` that ``parse_location`` returns for its URLs): docs/design.md.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from qabot.config.table import BY_NAME
from qabot.locations import Location, parse_location
from qabot.store.interface import Backend, CheckReport, IndexReader
from qabot.store.manifest import Manifest

# The defaults for a backend with a server: QABOT_PG_POOL's and QABOT_PG_TIMEOUT's (the settings table's).
POOL_SIZE: int = BY_NAME["pg_pool"].default
TIMEOUT: float = BY_NAME["pg_timeout"].default

# scheme of a location (a Path has none: "folder") -> "module:Class"
BACKENDS: dict[str, str] = {
    "folder": "qabot.store.folder:FolderBackend",
    "postgresql": "qabot.store.postgres.backend:PgBackend",
}


def scheme_of(location: Location) -> str:
    """The location type's ``scheme`` (``"postgresql"`` for a PgUrl); ``"folder"`` for a path, which has none."""
    return str(getattr(location, "scheme", "folder"))


def backend_for(location: str | Path | Location, *, pool_size: int = POOL_SIZE, timeout: float = TIMEOUT) -> Backend:
    """The backend of the index at ``location``; ``pool_size`` and ``timeout`` matter to backends with a server."""
    where = parse_location(location)
    module, _, name = BACKENDS[scheme_of(where)].partition(":")
    return getattr(importlib.import_module(module), name).at(where, pool_size=pool_size, timeout=timeout)


def manifest_at(location: Location, *, timeout: float = TIMEOUT) -> Manifest:
    """What the index at ``location`` was built with (StoreError when there is none)."""
    return backend_for(location, timeout=timeout).manifest()


def exists(location: Location, *, timeout: float = TIMEOUT) -> bool:
    """Whether an index is at ``location`` (StoreError when its server cannot be reached)."""
    return backend_for(location, timeout=timeout).exists()


def open_reader(location: Location, *, model: str | None = None, pool_size: int = POOL_SIZE, timeout: float = TIMEOUT) -> IndexReader:
    """Open the index at ``location`` for questions; ``model`` must match the one it was built with."""
    return backend_for(location, pool_size=pool_size, timeout=timeout).open_reader(model=model)


def check_index(location: Location, *, timeout: float = TIMEOUT) -> CheckReport:
    """``qabot check``: whether the index at ``location`` is sound (never raises for damage: it is reported)."""
    return backend_for(location, pool_size=1, timeout=timeout).check()


def index_stats(location: Location, *, timeout: float = TIMEOUT) -> dict[str, Any]:
    """``qabot stats``: articles, chunks, vectors, dates, sources, size, model of the index at ``location``."""
    return backend_for(location, pool_size=1, timeout=timeout).stats()


__all__ = ["BACKENDS", "POOL_SIZE", "TIMEOUT", "Location", "backend_for", "check_index", "exists", "index_stats", "manifest_at", "open_reader", "parse_location", "scheme_of"]
