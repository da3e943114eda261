"""Open an index wherever it is: a folder (the default) or a ``postgresql://`` URL.

The one place that tells the two stores apart; the PostgreSQL modules (and the driver) are
imported only when a URL is given, so a folder index never loads them.
"""

from __future__ import annotations

from pathlib import Path

from qabot.locations import Location, PgUrl, parse_location
from qabot.store.interface import IndexReader
from qabot.store.manifest import Manifest, is_index, read_manifest
from qabot.store.store import Store

POOL_SIZE = 4  # the defaults for a PostgreSQL index (Settings.pg_pool / pg_timeout are the user's)
TIMEOUT = 30.0


def manifest_at(location: Location, *, timeout: float = TIMEOUT) -> Manifest:
    """What the index at ``location`` was built with (StoreError when there is none)."""
    if isinstance(location, PgUrl):
        from qabot.store.postgres.store import read_pg_manifest

        return read_pg_manifest(location, timeout=timeout)
    return read_manifest(Path(location))


def exists(location: Location, *, timeout: float = TIMEOUT) -> bool:
    """Whether an index is at ``location`` (for a URL: the database holds one; StoreError when unreachable)."""
    if isinstance(location, PgUrl):
        from qabot.errors import StoreError
        from qabot.store.postgres.store import read_pg_manifest

        try:
            read_pg_manifest(location, timeout=timeout)
        except StoreError as exc:
            if "no qabot index" in str(exc):
                return False
            raise
        return True
    return is_index(Path(location))


def open_reader(location: Location, *, model: str | None = None, pool_size: int = POOL_SIZE, timeout: float = TIMEOUT) -> IndexReader:
    """Open the index at ``location`` for questions; ``model`` must match the one it was built with."""
    if isinstance(location, PgUrl):
        from qabot.store.postgres.store import PgStore

        return PgStore.open(location, model=model, pool_size=pool_size, timeout=timeout)
    return Store.open(Path(location), model=model)


__all__ = ["POOL_SIZE", "TIMEOUT", "Location", "PgUrl", "exists", "manifest_at", "open_reader", "parse_location"]
