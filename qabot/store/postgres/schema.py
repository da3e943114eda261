"""The PostgreSQL schema, changed only through numbered SQL migrations (``sql/NNNN_name.sql``).

Add a new file at the end; never edit one that has shipped. A file may use ``{dimension}`` (the
vector size, fixed when the index is created). Migrations run in one transaction under an
advisory lock, so indexers starting together apply each exactly once.
"""

from __future__ import annotations

import re
from importlib import resources

import psycopg

from qabot.store.postgres.connection import SCHEMA_LOCK

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[str, str]]:
    """(name, SQL) of every migration, in order."""
    folder = resources.files("qabot.store.postgres") / "sql"
    names = sorted(p.name for p in folder.iterdir() if _NAME.match(p.name))
    return [(name.removesuffix(".sql"), (folder / name).read_text(encoding="utf-8")) for name in names]


def applied(conn: psycopg.Connection) -> list[str]:
    """The migrations this database has had (none for an empty one)."""
    exists = conn.execute("select to_regclass('qabot_migrations') is not null").fetchone()
    if not exists or not exists[0]:
        return []
    return [r[0] for r in conn.execute("select name from qabot_migrations order by name")]


def pending(conn: psycopg.Connection) -> list[str]:
    done = set(applied(conn))
    return [name for name, _ in migration_files() if name not in done]


def migrate(conn: psycopg.Connection, *, dimension: int) -> list[str]:
    """Apply the pending migrations in one transaction; the names applied."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
        conn.execute("create table if not exists qabot_migrations (name text primary key, applied_at timestamptz not null default now())")
        done = set(applied(conn))
        names = []
        for name, sql in migration_files():
            if name in done:
                continue
            conn.execute(sql.replace("{dimension}", str(int(dimension))))
            conn.execute("insert into qabot_migrations (name) values (%s)", [name])
            names.append(name)
    return names


__all__ = ["applied", "migrate", "migration_files", "pending"]
