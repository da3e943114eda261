"""The SQL read queries of an open generation, mixed into :class:`qabot.store.store.Store`.

Everything here reads SQLite only (articles, chunks, sentences, the full-text index); the
vectors and every write are in :mod:`qabot.store.store`. A pure function builds the
full-text SQL (:func:`keyword_search_sql`); the thin methods run the queries.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from qabot.documents import Chunk
from qabot.errors import StoreError
from qabot.store import integrity, partial, sentences
from qabot.store.manifest import DB_NAME, Manifest
from qabot.store.sentences import StoredSentence

log = logging.getLogger("qabot.store.store")

FTS_TABLE = "chunks_fts"


def keyword_search_sql(*, fts_table: str = FTS_TABLE) -> str:
    """Full-text search of chunk text, best first: rows (rowid, -bm25 score); params (match, k)."""
    return f"select rowid, -bm25({fts_table}) as score from {fts_table} where {fts_table} match ? order by score desc limit ?"


def fts5_match(words: Sequence[str]) -> str | None:
    """An FTS5 MATCH expression that ORs ``words``, each a double-quoted string, so FTS5 syntax in
    them (AND, NOT, NEAR, ``*``, ``:``, quotes) is searched as words, never interpreted."""
    quoted = ['"' + word.replace('"', '""') + '"' for word in words if word.strip()]
    return " OR ".join(quoted) if quoted else None


class Queries:
    """Read queries over ``db``, the generation's SQLite database (see :class:`~qabot.store.store.Store`)."""

    db: sqlite_utils.Database
    manifest: Manifest
    _fts_errors: set[str]
    data_dir: Path  # a property of Store

    def article_hashes(self) -> dict[str, str]:
        """article id -> content hash, for skipping unchanged articles."""
        return {r[0]: r[1] for r in self.db.execute("select id, content_hash from articles")}

    def _hashes_of(self, article_ids: Sequence[str]) -> dict[str, str]:
        """article id -> content hash of those of ``article_ids`` stored."""
        found: dict[str, str] = {}
        for lo in range(0, len(article_ids), 500):  # SQLite's limit on bound parameters
            part = list(article_ids[lo : lo + 500])
            sql = f"select id, content_hash from articles where id in ({','.join('?' * len(part))})"
            found.update({r[0]: r[1] for r in self.db.execute(sql, part)})
        return found

    def incomplete_articles(self) -> list[str]:
        """Articles whose stored chunk count differs from the chunks present (for repairs and checks)."""
        sql = "select a.id from articles a where a.n_chunks != (select count(*) from chunks c where c.article_id = a.id)"
        return [r[0] for r in self.db.execute(sql)]

    def articles_of_chunks(self, chunk_ids: Sequence[int]) -> list[str]:
        """The distinct article ids these chunks belong to."""
        found: set[str] = set()
        ids = list(chunk_ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(r[0] for r in self.db.execute(f"select distinct article_id from chunks where id in ({marks})", part))
        return sorted(found)

    def partial_articles(self) -> dict[str, int]:
        """Articles stored in part (a long one a run was interrupted in): id -> chunks stored."""
        return partial.stored_chunks(self.db)

    def first_chunk_without(self, article_id: str, missing: set[int]) -> int:
        """The index of ``article_id``'s first chunk whose id is in ``missing`` (its chunk count if none)."""
        rows = self.db.execute("select idx, id from chunks where article_id = ? order by idx", [article_id]).fetchall()
        return next((idx for idx, chunk_id in rows if chunk_id in missing), len(rows))

    def articles_without_sentences(self) -> list[str]:
        return sentences.articles_without(self.db)

    def article_chunks(self, article_ids: Sequence[str]) -> dict[str, list[Chunk]]:
        return sentences.article_chunks(self.db, article_ids)

    def sentence_problems(self) -> list[str]:
        return sentences.problems(self.db, self.manifest.dimension)

    def sentences_in(self, chunk_ids: Sequence[int]) -> tuple[list[StoredSentence], np.ndarray]:
        """The stored sentences inside these chunks (in the chunks' order) and their vectors (float32);
        StoreError when a vector is damaged (wrong size, or not unit length: it would outscore every
        sound sentence)."""
        source = f"{self.data_dir / DB_NAME} (sentence vectors)"
        try:
            found, vectors = sentences.for_chunks(self.db, chunk_ids, self.manifest.dimension)
        except ValueError as exc:
            raise StoreError(integrity.damage_message([f"{source}: {exc}"])) from None
        if problems := integrity.norm_problems(vectors, np.array([s.chunk_id for s in found]), source=source,
                                               label="a sentence of chunk"):
            raise StoreError(integrity.damage_message(problems))
        return found, vectors

    def date_range(self) -> tuple[str | None, str | None]:
        row = self.db.execute("select min(date), max(date) from articles where date is not null").fetchone()
        return row[0], row[1]

    def newest_title(self) -> str | None:
        """The title of the newest dated article (whitespace collapsed); None for an empty index."""
        row = self.db.execute(
            "select title from articles where coalesce(trim(title), '') != '' order by date desc, rowid desc limit 1"
        ).fetchone()
        return " ".join(row[0].split()) if row else None

    def sources(self) -> list[str]:
        """The distinct sources of the indexed articles, sorted."""
        rows = self.db.execute("select distinct source from articles where source is not null order by 1")
        return [r[0] for r in rows]

    def keyword_search(self, match: str, k: int) -> list[tuple[int, float]]:
        """Chunks matching the FTS5 expression ``match``, by bm25: [(chunk_id, score)], best first.

        An SQLite error (a malformed expression: OperationalError; a corrupt full-text index:
        DatabaseError) is logged, as a warning the first time this store meets that message,
        and gives no hits: the question is then answered from the vectors alone, not failed.
        """
        if k <= 0 or not match.strip():
            return []
        try:
            rows = self.db.execute(keyword_search_sql(), [match, k]).fetchall()
        except sqlite3.ProgrammingError:
            raise  # misuse (a closed store), not a broken index
        except (sqlite3.DatabaseError, MemoryError) as exc:  # OperationalError; a corrupt FTS5 index's
            self._log_fts_error(exc, match)  # DatabaseError, or SQLITE_NOMEM from garbage in its segments
            return []
        return [(int(r[0]), float(r[1])) for r in rows]

    def keyword_search_words(self, words: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Chunks holding any of ``words``, by bm25: [(chunk_id, score)], best first (the store interface)."""
        match = fts5_match(words)
        return self.keyword_search(match, k) if match is not None else []

    def _log_fts_error(self, exc: sqlite3.Error | MemoryError, match: str) -> None:
        message = str(exc) or type(exc).__name__
        first = message not in self._fts_errors
        self._fts_errors.add(message)
        log.log(logging.WARNING if first else logging.DEBUG, "%s: full-text search failed (%s) for %r; "
                "no keyword hits; `qabot check` tests the full-text index", self.data_dir / DB_NAME, message, match)

    def chunks_between(self, chunk_ids: Sequence[int], since: date | None, until: date | None) -> set[int]:
        """The chunks among ``chunk_ids`` whose article is dated within [since, until]."""
        if not chunk_ids:
            return set()
        clauses, params = ["c.id in ({})".format(",".join("?" * len(chunk_ids)))], list(chunk_ids)
        if since is not None:
            clauses.append("a.date >= ?")
            params.append(since.isoformat())
        if until is not None:
            clauses.append("a.date <= ?")
            params.append(until.isoformat())
        sql = f"select c.id from chunks c join articles a on a.id = c.article_id where {' and '.join(clauses)}"
        return {row[0] for row in self.db.execute(sql, params)}

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """chunk id -> chunk joined with its article's metadata."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        sql = (
            'select c.id, c.article_id, c.idx, c.text, c.start, c."end", a.title, a.date, a.url, a.source '
            f"from chunks c join articles a on a.id = c.article_id where c.id in ({marks})"
        )
        cursor = self.db.execute(sql, list(chunk_ids))
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}

    def article_text(self, article_id: str) -> str | None:
        row = self.db.execute("select text from articles where id = ?", [article_id]).fetchone()
        return row[0] if row else None


__all__ = ["FTS_TABLE", "Queries", "fts5_match", "keyword_search_sql"]
