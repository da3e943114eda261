"""The reads of a PostgreSQL index, mixed into :class:`qabot.store.postgres.store.PgStore`.

The same methods, arguments and results as the folder store's reads, so the ranking code does
not know which store it asks. The vector searches use the HNSW indexes (their breadth:
:func:`ef_search`); the keyword search ORs the words in the ``simple`` text-search configuration
(as written, case folded), leaves out words most chunks hold (:func:`rare_words`) and ranks
by BM25 as FTS5 does in a folder (:func:`keyword_sql`). German stemming was
measured and left out (docs/postgres.md). Pure functions build the full-text SQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import numpy as np
import psycopg
from pgvector import HalfVector

from qabot.locations import PgUrl
from qabot.store.manifest import Manifest
from qabot.store.postgres.connection import Pool
from qabot.store.sentences import StoredSentence

log = logging.getLogger("qabot.store.postgres.store")

# hnsw.ef_search: at least EF_SEARCH, else twice the hits wanted (pgvector's maximum is 1000). On 100,000
# real e5 sentence vectors under the schema's graphs (m 32, ef_construction 200), 400 found 0.997 of the
# exact top 10 for archive sentences asked as questions and 0.980 for off-topic questions, at 13-14 ms a
# search on 2 cores (100: 0.981 / 0.883 at 4.5 ms; scripts/bench/hnsw_recall.py).
EF_SEARCH = 400
EF_SEARCH_MAX = 1000
COMMON = 0.01  # a word in more than this share of chunks, and in more than COMMON_MIN of them, is left out
COMMON_MIN = 1000  # of the keyword query (rare_words): small indexes keep every word
SHARES_SECONDS = 300.0  # how long the words' shares (pg_stats, refreshed by ANALYZE) and the mean chunk length are reused
K1, B = 1.2, 0.75  # BM25's constants, FTS5's (the folder's keyword leg)
LENGTH_SAMPLE = 10_000  # chunks whose mean length stands for all


def tsquery_text(words: Sequence[str]) -> str | None:
    """A ``to_tsquery`` text that ORs ``words`` as quoted lexemes (no operator in them is interpreted)."""
    quoted = []
    for word in words:
        cleaned = word.replace("\\", " ").replace("'", " ").strip()
        if cleaned:
            quoted.append("'" + cleaned + "'")
    return " | ".join(quoted) if quoted else None


def term_frequency(document: str, query: str) -> str:
    """SQL for how often the one-word tsquery ``query`` occurs in the tsvector ``document`` (0 if not at all).

    ``ts_rank`` of a one-word query is 0.1 * (1 + 1/2² + ... + 1/tf²) / (π²/6) (PostgreSQL's tsrank.c),
    so tf = floor(1 / (π²/6 - 16.449... * rank)) exactly, with no per-position unnest (that made an
    exact BM25 2.3x slower at 115k chunks); a word not there ranks 0, so 0. A hyphenated word is a phrase
    query, ranked otherwise: 1 if the phrase is there.
    """
    return (f"case when numnode({query}) > 1 then ({document} @@ {query})::int "
            f"else floor(1 / (pi() ^ 2 / 6 - 16.4493406685 * ts_rank({document}, {query})))::int end")


def keyword_sql(n_words: int) -> str:
    """BM25 ranking of the chunks matching any of ``n_words`` words, best first: rows (id, score);
    params: each word's tsquery text, the chunks' mean length (tokens), all the words OR-ed, then k.

    score = sum over words of idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / mean length)), as FTS5's
    bm25 ranks a folder's chunks (K1 1.2, B 0.75: its constants); idf = ln(1 + (N - n + 0.5) / (n + 0.5))
    (n: chunks holding the word, N: all chunks, from the planner's estimate once there is one), tf by
    :func:`term_frequency`, length: the chunk's tokens.
    """
    words = ", ".join(f"to_tsquery('simple', %s) as q{i}" for i in range(n_words))
    tfs = ", ".join(f"{term_frequency('c.fts_simple', f'w.q{i}')} as tf{i}" for i in range(n_words))
    counts = ", ".join(f"count(*) filter (where s.tf{i} > 0) as n{i}" for i in range(n_words))
    score = " + ".join(f"ln(1 + (t.total - d.n{i} + 0.5) / (d.n{i} + 0.5)) * s.tf{i} * {K1 + 1} / (s.tf{i} + s.norm)"
                       for i in range(n_words))
    # s is materialised: each word's count is computed once a chunk (an inlined CTE would compute it for every
    # use), and the words' document counts come from it, not from another pass over the chunks' text.
    return (
        f"with w as (select {words}), "
        f"s as materialized (select c.id, {K1} * (1 - {B} + {B} * c.n_tokens / %s::float8) as norm, {tfs} "
        "from chunks c, w where c.fts_simple @@ to_tsquery('simple', %s)), "
        f"d as (select {counts} from s), "
        "t as (select case when reltuples > 0 then reltuples::float8 else (select count(*) from chunks)::float8 end as total "
        "from pg_class where oid = 'chunks'::regclass) "
        f"select s.id, {score} as score from s, d, t order by score desc, s.id limit %s"
    )


def ef_search(k: int) -> int:
    """The HNSW search breadth for ``k`` hits (see EF_SEARCH)."""
    return min(EF_SEARCH_MAX, max(EF_SEARCH, 2 * k))


def rare_words(words: Iterable[str], shares: dict[str, float], total: float, *, common: float = COMMON,
               at_least: int = COMMON_MIN) -> list[str]:
    """``words`` without those held by more than ``common`` of the ``total`` chunks and by more than
    ``at_least`` of them (``shares``: word -> share of chunks holding it).

    Such a word's idf is low (ln 100 at 1%), so it moves the ranking little, but every chunk holding
    it must be read and scored: on 115k chunks of German news, words like "wurde" made the keyword
    leg take 0.25 s at the median and 2 s at p95 (15 / 80 ms without them). Words not in ``shares``
    (all of them before the first ANALYZE) are kept.
    """
    limit = max(common, at_least / total) if total > 0 else 1.0
    return [w for w in words if shares.get(w, 0.0) <= limit]


def _vector(query: np.ndarray) -> HalfVector:
    return HalfVector(np.asarray(query, dtype=np.float32).reshape(-1))


def matrix(rows: Sequence[Any], dimension: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.stack([np.asarray(v.to_numpy(), dtype=np.float32) for v in rows])


class PgQueries:
    """Read queries over ``pool`` (see :class:`~qabot.store.postgres.store.PgStore`)."""

    pool: Pool
    url: PgUrl
    manifest: Manifest
    _fts_errors: set[str]

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.pool.read(lambda conn: conn.execute(sql, list(params)).fetchall())

    def counts(self) -> dict[str, int]:
        row = self._all("select (select count(*) from articles), (select count(*) from chunks), "
                        "(select count(*) from chunks where embedding is not null), (select count(*) from sentences)")[0]
        return {"articles": int(row[0]), "chunks": int(row[1]), "vectors": int(row[2]), "sentences": int(row[3])}

    def article_hashes(self) -> dict[str, str]:
        return dict(self._all("select id, content_hash from articles"))

    def present(self, article_ids: Sequence[str]) -> set[str]:
        """Which of these articles the index holds."""
        return {r[0] for r in self._all("select id from articles where id = any(%s)", [list(article_ids)])}

    def incomplete_articles(self) -> list[str]:
        return [r[0] for r in self._all(
            "select a.id from articles a where a.n_chunks != (select count(*) from chunks c where c.article_id = a.id) order by a.id")]

    def articles_of_chunks(self, chunk_ids: Sequence[int]) -> list[str]:
        return [r[0] for r in self._all("select distinct article_id from chunks where id = any(%s) order by 1", [list(map(int, chunk_ids))])]

    def date_range(self) -> tuple[str | None, str | None]:
        row = self._all("select min(date), max(date) from articles where date is not null")[0]
        return row[0], row[1]

    def newest_title(self) -> str | None:
        rows = self._all("select title from articles where coalesce(trim(title), '') != '' order by date desc nulls last, indexed_at desc, id desc limit 1")
        return " ".join(rows[0][0].split()) if rows else None

    def sources(self) -> list[str]:
        return [r[0] for r in self._all("select distinct source from articles where source is not null order by 1")]

    def article_text(self, article_id: str) -> str | None:
        rows = self._all("select text from articles where id = %s", [article_id])
        return rows[0][0] if rows else None

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        if not chunk_ids:
            return {}

        def rows(conn: psycopg.Connection) -> dict[int, dict[str, Any]]:
            with conn.cursor() as cur:
                cur.execute('select c.id, c.article_id, c.idx, c.text, c.start, c."end", a.title, a.date, a.url, a.source '
                            "from chunks c join articles a on a.id = c.article_id where c.id = any(%s)", [list(map(int, chunk_ids))])
                names = [d.name for d in cur.description or []]
                return {row[0]: dict(zip(names, row)) for row in cur.fetchall()}

        return self.pool.read(rows)

    def chunks_between(self, chunk_ids: Sequence[int], since: date | None, until: date | None) -> set[int]:
        if not chunk_ids:
            return set()
        sql = "select c.id from chunks c join articles a on a.id = c.article_id where c.id = any(%s)"
        params: list[Any] = [list(map(int, chunk_ids))]
        if since is not None:
            sql += " and a.date >= %s"
            params.append(since.isoformat())
        if until is not None:
            sql += " and a.date <= %s"
            params.append(until.isoformat())
        return {r[0] for r in self._all(sql, params)}

    def keyword_search_words(self, words: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Chunks holding any of ``words`` (as written, case folded), by :func:`keyword_sql`: [(chunk_id, score)], best first.

        A database error is logged (a warning the first time) and gives no hits: the question
        is then answered from the vectors alone, not failed.
        """
        if k <= 0:
            return []
        try:
            shares, total, mean_length = self._statistics()
            kept = rare_words(dict.fromkeys(words), shares, total, common=COMMON)
            each = [t for t in (tsquery_text([word]) for word in kept) if t is not None]
            if not each:
                return []
            rows = self._all(keyword_sql(len(each)), [*each, mean_length, " | ".join(each), k])
        except psycopg.Error as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            first = message not in self._fts_errors
            self._fts_errors.add(message)
            log.log(logging.WARNING if first else logging.DEBUG, "%s: full-text search failed (%s); no keyword hits", self.url, message)
            return []
        return [(int(r[0]), float(r[1])) for r in rows]

    def _statistics(self) -> tuple[dict[str, float], float, float]:
        """(word -> share of chunks holding it, for the words ANALYZE found most common (pg_stats); the chunks
        ANALYZE counted; the mean chunk length in tokens, of up to LENGTH_SAMPLE chunks); cached a while."""
        now = time.monotonic()
        cached = getattr(self, "_cached_statistics", None)
        if cached is None or now - cached[0] > SHARES_SECONDS:
            rows = self._all("select most_common_elems::text::text[], most_common_elem_freqs from pg_stats "
                             "where schemaname = current_schema() and tablename = 'chunks' and attname = 'fts_simple'")
            total = self._all("select reltuples from pg_class where oid = 'chunks'::regclass")
            mean = self._all("select avg(n_tokens)::float8 from (select n_tokens from chunks limit %s) c", [LENGTH_SAMPLE])
            shares = dict(zip(rows[0][0], rows[0][1])) if rows and rows[0][0] else {}
            self._cached_statistics = cached = (now, shares, float(total[0][0]) if total else 0.0, float(mean[0][0] or 1.0))
        return cached[1], cached[2], cached[3]

    def _nearest(self, sql: str, query: np.ndarray, k: int) -> list[tuple[Any, ...]]:
        def rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
            conn.execute("select set_config('hnsw.ef_search', %s, true)", [str(ef_search(k))])
            return conn.execute(sql, [_vector(query), k]).fetchall()

        return self.pool.read(rows)

    def nearest_ids(self, table: str, query: np.ndarray, k: int, *, exact: bool = False) -> list[int]:
        """Ids of the ``k`` rows of ``table`` (chunks or sentences) nearest to ``query``: through the HNSW
        index, or ``exact`` (a full scan): the pair measures the index's recall."""
        if table not in {"chunks", "sentences"}:
            raise ValueError(f"no vectors in {table!r}")
        with self.pool.connection() as conn:
            conn.execute("select set_config('hnsw.ef_search', %s, true)", [str(ef_search(k))])
            if exact:
                conn.execute("select set_config('enable_indexscan', 'off', true)")
            rows = conn.execute(f"select id from {table} order by embedding <#> %s limit %s", [_vector(query), k]).fetchall()
        return [int(r[0]) for r in rows]

    def search_vectors(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunks by inner product (cosine for normalised vectors): [(chunk_id, score)]."""
        if k <= 0:
            return []
        rows = self._nearest("select id, embedding <#> %s as d from chunks order by d limit %s", query, k)
        return [(int(r[0]), -float(r[1])) for r in rows]

    def search_sentences(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Chunks by their nearest sentences: [(chunk_id, best sentence score)], best first."""
        if k <= 0:
            return []
        rows = self._nearest(
            "with hits as materialized (select id, article_id, start, \"end\", embedding <#> %s as d from sentences order by d limit %s) "
            "select (select min(c.id) from chunks c where c.article_id = h.article_id and h.start >= c.start "
            'and h."end" <= c."end") as chunk, h.d from hits h order by h.d, h.id', query, k)
        best: dict[int, float] = {}
        for chunk, distance in rows:
            if chunk is not None and chunk not in best:
                best[int(chunk)] = -float(distance)
        return list(best.items())

    def vectors_for(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, one row each, in the order given (KeyError for an unknown id)."""
        ids = [int(i) for i in chunk_ids]
        found = dict(self._all("select id, embedding from chunks where id = any(%s)", [ids]))
        return matrix([found[i] for i in ids], self.manifest.dimension)

    def sentences_in(self, chunk_ids: Sequence[int]) -> tuple[list[StoredSentence], np.ndarray]:
        """The stored sentences inside these chunks (in the chunks' order) and their vectors (float32)."""
        ids = list(dict.fromkeys(int(i) for i in chunk_ids))
        rows = self._all('select c.id, s.start, s."end", s.embedding from chunks c join sentences s on s.article_id = c.article_id '
                         'and s.start >= c.start and s."end" <= c."end" where c.id = any(%s)', [ids])
        position = {chunk_id: i for i, chunk_id in enumerate(ids)}
        rows.sort(key=lambda r: (position[r[0]], r[1], r[2]))
        return [StoredSentence(r[0], r[1], r[2]) for r in rows], matrix([r[3] for r in rows], self.manifest.dimension)


__all__ = ["COMMON", "COMMON_MIN", "EF_SEARCH", "PgQueries", "ef_search", "keyword_sql", "rare_words", "term_frequency",
           "tsquery_text"]
