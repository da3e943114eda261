"""Connections to a PostgreSQL index: a pool for readers, single connections for writers.

Every failure becomes one StoreError line that names the server without its password: the
server is down or refuses us, the database is missing, or pgvector is not installed there.
Each connection gets pgvector's types (vectors travel in binary) and a statement timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool, PoolTimeout

from qabot.errors import StoreError
from qabot.locations import PgUrl, redact

log = logging.getLogger(__name__)
T = TypeVar("T")

# The advisory lock held while the extension and the schema are created or migrated (any number;
# it only has to be the same for every qabot): indexers starting together do each step once.
SCHEMA_LOCK = 0x7161626F74  # "qabot"


def _reason(exc: BaseException) -> str:
    """The first line of a driver error, without any password."""
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)


def _options(timeout: float, statements: float | None) -> dict[str, object]:
    # connect_timeout is whole seconds (libpq); statement_timeout is milliseconds (0: none).
    # prepare_threshold None: psycopg never prepares a statement, so every search is planned for its
    # own words and vector. Prepared after 5 runs, the keyword query got a generic plan: 14 -> 188 ms.
    return {"connect_timeout": max(1, round(timeout)), "options": f"-c statement_timeout={int((statements or 0) * 1000)}",
            "prepare_threshold": None}


def connect(url: PgUrl, *, timeout: float, vectors: bool = True) -> psycopg.Connection:
    """One connection (autocommit off); StoreError naming the server if it cannot be made."""
    try:
        conn = psycopg.connect(url.dsn, **_options(timeout, timeout))
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {url}: {_reason(exc)}") from None
    if vectors:
        try:
            _configure(conn)
        except BaseException:
            conn.close()
            raise
    return conn


def refuse_read_only(conn: psycopg.Connection, url: PgUrl) -> None:
    """StoreError when this database takes no writes: a read replica (hot standby) or a read-only endpoint."""
    standby, read_only = conn.execute("select pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'").fetchone()
    conn.rollback()
    if standby:
        raise StoreError(f"the database at {url} is a read-only replica (a hot standby); index into its primary, "
                         "the replica follows it")
    if read_only:
        raise StoreError(f"the database at {url} is read-only (default_transaction_read_only); index through a "
                         "connection that may write")


def ensure_extension(conn: psycopg.Connection, url: PgUrl) -> str:
    """Create pgvector in the database if it is not there yet; its version. StoreError when the server lacks it."""
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
            conn.execute("create extension if not exists vector")
    except psycopg.OperationalError as exc:
        raise StoreError(f"PostgreSQL at {url}: {_reason(exc)}") from None
    except psycopg.Error as exc:
        raise StoreError(
            f"the pgvector extension is missing at {url}: {_reason(exc)}; install pgvector on the server "
            "(https://github.com/pgvector/pgvector; managed Postgres services have it) or have an administrator "
            "run `CREATE EXTENSION vector` in this database"
        ) from None
    return installed_extension(conn, url)


def installed_extension(conn: psycopg.Connection, url: PgUrl) -> str:
    """pgvector's version in this database; StoreError when it is not installed."""
    row = conn.execute("select extversion from pg_extension where extname = 'vector'").fetchone()
    conn.rollback()
    if row is None:
        raise StoreError(f"the pgvector extension is not installed in the database at {url}; "
                         "`qabot index ARCHIVE --index URL` installs it (or ask an administrator: `CREATE EXTENSION vector`)")
    return str(row[0])


def _configure(conn: psycopg.Connection) -> None:
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:  # the type is not there: pgvector missing in this database
        conn.rollback()
        return
    conn.commit()


class Pool:
    """A pool of configured connections, ``size`` at most. ``timeout`` bounds connecting and waiting
    for a free connection, ``statements`` each query (None: no limit, for writers)."""

    def __init__(self, url: PgUrl, *, size: int, timeout: float, statements: float | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self._pool = ConnectionPool(
            url.dsn, min_size=1, max_size=max(1, size), kwargs=_options(timeout, statements), configure=_configure,
            timeout=timeout, open=False, name="qabot",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {url}: {_reason(exc)}") from None

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection for one unit of work (committed on success, rolled back on error)."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise self._error(exc) from None

    def read(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work(conn)`` for a read, run once more if a read replica cancelled it for a conflict with recovery
        (SQLSTATE 40001: the primary's changes replayed under it, e.g. a vacuum or a table lock); the second
        time it sees the replayed state. Errors as :meth:`connection`."""
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    return work(conn)
            except psycopg.errors.SerializationFailure as exc:
                if attempt == 2:
                    raise self._error(exc) from None
                log.info("%s: a read was cancelled (%s); once more", self.url, _reason(exc))
            except (PoolTimeout, psycopg.OperationalError) as exc:
                raise self._error(exc) from None
        raise AssertionError("unreachable")

    def _error(self, exc: BaseException) -> StoreError:
        if isinstance(exc, PoolTimeout):
            return StoreError(f"PostgreSQL at {self.url}: no free connection within {self.timeout:g} s ({_reason(exc)})")
        return StoreError(f"PostgreSQL at {self.url}: {_reason(exc)}")

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"Pool({self.url.safe!r})"


__all__ = ["SCHEMA_LOCK", "Pool", "connect", "ensure_extension", "installed_extension", "refuse_read_only"]
