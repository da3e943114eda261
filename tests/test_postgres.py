"""An index in PostgreSQL + pgvector, against a real server on 127.0.0.1 (tests/pg_server.py):
connection errors and the password, settings and migrations, German keyword search, writers
at once (the same article, disjoint shards), kill -9 while indexing, `qabot check`, and the
real model answering from it and from `qabot copy` both ways."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from qabot.errors import IndexMismatchError, StoreError
from qabot.indexer import Shard, build_index
from qabot.locations import PgUrl
from qabot.store.backends import check_index, exists
from qabot.store.postgres import schema
from qabot.store.postgres.store import PgStore, read_pg_manifest
from tests.archives import write_archive
from tests.conftest import LANDING_SENTENCE
from tests.stop_at import spec

ROOT = Path(__file__).resolve().parents[1]


def _store(url: str, **settings) -> PgStore:
    values = {"model": "m", "dimension": 8, "chunk_tokens": 200, "chunk_overlap": 1} | settings
    return PgStore.create_or_open(PgUrl(url), **values)


def test_the_password_never_shows_in_reprs_errors_or_logs(pg_server, pg_url, caplog):
    url = PgUrl(pg_url)
    with _store(pg_url) as store:
        for text in (str(url), repr(url), repr(store), repr(store.pool), url.safe):
            assert pg_server.password not in text and "***" in text
    wrong = pg_url.replace(pg_server.password, "not-the-password")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError) as info:
        PgStore.open(PgUrl(wrong), timeout=5)
    assert "password authentication failed" in str(info.value) and "not-the-password" not in str(info.value)
    assert "not-the-password" not in caplog.text and pg_server.password not in caplog.text


def test_a_server_that_is_down_is_one_clear_line(pg_server):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as info:
        read_pg_manifest(PgUrl(f"postgresql://qabot:secret-pw@127.0.0.1:{port}/news"), timeout=2)
    message = str(info.value)
    assert message.startswith("cannot connect to PostgreSQL at postgresql://qabot:***@127.0.0.1:") and "refused" in message
    assert "secret-pw" not in message and "\n" not in message


def test_an_empty_database_holds_no_index_until_an_indexer_creates_it(pg_url):
    assert exists(PgUrl(pg_url)) is False
    with pytest.raises(StoreError, match="no qabot index"):
        PgStore.open(PgUrl(pg_url))
    with _store(pg_url) as store:
        assert store.manifest.model == "m" and store.manifest.dimension == 8
    assert exists(PgUrl(pg_url)) is True
    with psycopg.connect(pg_url) as conn:
        assert schema.pending(conn) == [] and schema.applied(conn) == [name for name, _ in schema.migration_files()]
        assert schema.migrate(conn, dimension=8) == [], "a migration is applied once"


def test_an_index_from_before_migration_0002_is_upgraded_by_its_next_writer_while_readers_answer(pg_url):
    from tests.test_store_contract import ITEMS, _add

    with _store(pg_url) as store:
        _add(store, ITEMS)
    with psycopg.connect(pg_url) as conn:  # as migration 0001 left an index
        for table in ("chunks", "sentences"):
            conn.execute(f"drop index {table}_embedding")
            conn.execute(f"create index {table}_embedding on {table} using hnsw (embedding halfvec_ip_ops)")
        conn.execute("delete from qabot_migrations where name = '0002_hnsw_recall'")
    with pytest.raises(StoreError, match="needs migrations 0002_hnsw_recall; run `qabot index ARCHIVE --index URL`"):
        PgStore.open(PgUrl(pg_url))
    holder = psycopg.connect(pg_url)  # a writer's open transaction on sentences holds the rebuild half-way
    holder.execute("lock table sentences in row exclusive mode")
    writer = threading.Thread(target=lambda: _store(pg_url).close())
    writer.start()
    try:
        deadline = time.monotonic() + 30
        with psycopg.connect(pg_url, autocommit=True) as watch:
            while not watch.execute("select count(*) from pg_locks where not granted and relation = 'sentences'::regclass").fetchone()[0]:
                assert time.monotonic() < deadline, "the migration never reached the sentences"
                time.sleep(0.05)
        with psycopg.connect(pg_url, options="-c statement_timeout=3000") as reader:  # not blocked meanwhile
            query = "[" + ",".join(["0.35"] * 8) + "]"
            assert len(reader.execute("select id from chunks order by embedding <#> %s::halfvec limit 3", [query]).fetchall()) == 3
            assert reader.execute("select count(*) from sentences").fetchone()[0] > 0
    finally:
        holder.rollback()
        holder.close()
        writer.join(60)
    with psycopg.connect(pg_url) as conn:
        definitions = [d for (d,) in conn.execute("select indexdef from pg_indexes where indexname like '%%embedding%%' order by 1")]
    assert len(definitions) == 2 and all("m='32', ef_construction='200'" in d for d in definitions), definitions
    PgStore.open(PgUrl(pg_url)).close()


def test_other_settings_are_refused(pg_url):
    _store(pg_url).close()
    with pytest.raises(IndexMismatchError, match="chunk_tokens 200"):
        _store(pg_url, chunk_tokens=300)
    with pytest.raises(IndexMismatchError, match="model 'm'"):
        _store(pg_url, model="other")
    with pytest.raises(IndexMismatchError, match="QABOT_MODEL=m"):
        PgStore.open(PgUrl(pg_url), model="other")


def test_the_keyword_leg_weighs_a_rare_word_above_a_common_one(pg_url):
    """Without idf (ts_rank alone) a chunk holding the common word twice would beat the one holding the rare name."""
    from tests.test_store_contract import _add, _article

    with _store(pg_url) as store:
        common = [_article(f"c{i}", f"Die Regierung tagt, die Regierung entscheidet {i}.") for i in range(8)]
        _add(store, [*common, _article("rare", "Selenskyj spricht mit der Regierung.")])
        hits = store.keyword_search_words(["regierung", "selenskyj"], 3)
        assert store.chunk_rows([hits[0][0]])[hits[0][0]]["article_id"] == "rare"
        assert len(store.keyword_search_words(["regierung"], 20)) == 9
        assert store.keyword_search_words(["regierung", "regierung"], 20) == store.keyword_search_words(["regierung"], 20)
        _add(store, [_article("once", "Alaska liegt weit im Norden, sagt man."), _article("thrice", "Alaska, Alaska, Alaska liegt im Norden.")])
        ranked = [store.chunk_rows([c])[c]["article_id"] for c, _ in store.keyword_search_words(["alaska"], 5)]
        assert ranked == ["thrice", "once"], "more occurrences in a chunk of about the same length rank higher"
        long = "Alaska liegt im Norden. " + " ".join(f"Dort gibt es Berg {i} und Fluss {i}." for i in range(20))
        _add(store, [_article("long", long), _article("short", "Kurz: Alaska.")])
        ranked = [store.chunk_rows([c])[c]["article_id"] for c, _ in store.keyword_search_words(["alaska"], 5)]
        assert ranked.index("short") < ranked.index("once") < ranked.index("long"), "one occurrence weighs more in a shorter chunk"


@pytest.mark.parametrize("occurrences", [0, 1, 2, 3, 7, 20, 150])
def test_the_term_frequency_read_from_ts_rank_is_the_count_of_occurrences(pg_url, occurrences):
    from qabot.store.postgres.queries import term_frequency

    text = " ".join(["Alaska"] * occurrences + ["Norden", "liegt", "Norden"])
    sql = (f"with x as (select to_tsvector('simple', %s) as d, to_tsquery('simple', %s) as q) "
           f"select {term_frequency('x.d', 'x.q')} from x")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(sql, [text, "'alaska'"]).fetchone()[0] == occurrences
        assert conn.execute(sql, [f"Video-on-Demand {text}", "'video-on-demand'"]).fetchone()[0] == 1, "a phrase: once"


def test_the_hnsw_search_breadth_grows_with_the_hits_wanted():
    from qabot.store.postgres.queries import ef_search

    assert [ef_search(k) for k in (1, 10, 150, 250, 600)] == [400, 400, 400, 500, 1000]


def test_a_bulk_copy_builds_the_vector_indexes_at_the_end_and_a_writer_restores_them(pg_url):
    from tests.test_store_contract import ITEMS, _add

    with _store(pg_url) as store:
        store.drop_vector_indexes()
        _add(store, ITEMS)
        assert check_index(PgUrl(pg_url)).problems == ["index chunks_embedding is missing", "index sentences_embedding is missing"]
        assert len(store.search_vectors(np.ones(8, dtype=np.float32), 3)) == 3, "exact search meanwhile"
    _store(pg_url).close()  # the next writer makes what a killed copy left missing
    assert check_index(PgUrl(pg_url)).ok
    with psycopg.connect(pg_url) as conn:
        definitions = conn.execute("select indexdef from pg_indexes where indexname like '%%_embedding' order by 1").fetchall()
    assert [d for (d,) in definitions if "hnsw" in d and "m='32', ef_construction='200'" in d] == [d for (d,) in definitions]
    assert len(definitions) == 2, "rebuilt as the schema's migration 0002 makes them"


def test_words_in_a_large_share_of_a_large_index_leave_the_keyword_query():
    from qabot.store.postgres.queries import rare_words

    shares = {"wurde": 0.3, "corona": 0.02, "impfstoff": 0.004}
    assert rare_words(["wurde", "corona", "impfstoff", "selenskyj"], shares, 200_000) == ["impfstoff", "selenskyj"]
    assert rare_words(["wurde", "corona"], shares, 40_000) == ["corona"], "2% of 40k is 800 chunks: kept"
    assert rare_words(["wurde", "corona"], shares, 2_000) == ["wurde", "corona"], "a small index keeps every word"
    assert rare_words(["wurde"], {}, 0.0) == ["wurde"], "no statistics yet"


def test_two_writers_storing_one_article_at_once_store_it_once(pg_url):
    from tests.test_store_contract import _add, _article

    item = _article("same", "Putin landet in Alaska.", "Trump wartet.")
    stores = [_store(pg_url), _store(pg_url)]
    errors: list[BaseException] = []

    def write(store: PgStore) -> None:
        try:
            for _ in range(5):
                _add(store, [item])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert stores[0].counts() == {"articles": 1, "chunks": 2, "vectors": 2, "sentences": 2}
    for s in stores:
        s.close()


def test_shards_split_the_articles_by_id_the_same_everywhere():
    shards = [Shard.parse(f"{i}/3") for i in (1, 2, 3)]
    ids = [f"art-{n}" for n in range(300)]
    owners = [[s.holds(a) for s in shards].count(True) for a in ids]
    assert owners == [1] * 300
    assert 60 < sum(shards[0].holds(a) for a in ids) < 140
    for bad in ("0/2", "3/2", "x", "1/0", "1-2"):
        with pytest.raises(Exception, match="--shard"):
            Shard.parse(bad)


def test_two_indexers_on_disjoint_shards_at_once_index_everything_once(pg_url, tmp_path, hash_embedder):
    archive = write_archive(tmp_path / "a.jsonl", range(40), sentences=4)
    reports = {}

    def run(i: int) -> None:
        reports[i] = build_index(archive, pg_url, embedder=hash_embedder, batch_size=2, shard=Shard(i, 2))

    threads = [threading.Thread(target=run, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert reports[1].articles_indexed + reports[2].articles_indexed == 40
    assert reports[1].articles_read + reports[2].articles_read == 40
    report = check_index(PgUrl(pg_url))
    assert report.ok, report.problems
    assert report.counts["articles"] == 40
    again = build_index(archive, pg_url, embedder=hash_embedder)
    assert again.articles_indexed == 0 and again.articles_unchanged == 40
    pruned = build_index(write_archive(tmp_path / "b.jsonl", range(30), sentences=4), pg_url, embedder=hash_embedder,
                         prune=True, shard=Shard(1, 2))
    assert pruned.articles_removed == sum(Shard(1, 2).holds(f"art-{n}") for n in range(30, 40))


_CHILD = textwrap.dedent("""
    import sys
    from qabot.indexer import build_index
    from tests.fakes import HashEmbedder
    from tests.stop_at import install
    install(sys.argv[3])  # SIGKILL itself at that step (tests/stop_at.py)
    build_index(sys.argv[1], sys.argv[2], embedder=HashEmbedder(), batch_size=1)
""")


@pytest.mark.parametrize("stop", [spec("pg_add", "after", 1), spec("pg_add", "before", 3)])
def test_kill_9_while_indexing_leaves_whole_batches_and_a_rerun_completes(pg_url, tmp_path, hash_embedder, stop):
    archive = write_archive(tmp_path / "a.jsonl", range(120), sentences=6)
    child = subprocess.run([sys.executable, "-c", _CHILD, str(archive), pg_url, stop], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    url = PgUrl(pg_url)
    report = check_index(url)
    assert report.ok, report.problems
    assert 0 < report.counts["articles"] < 120
    with psycopg.connect(pg_url) as conn:  # whole articles: every one has all its chunks and sentences
        assert conn.execute("select count(*) from articles a where n_chunks != (select count(*) from chunks c "
                            "where c.article_id = a.id)").fetchone()[0] == 0
    rerun = build_index(archive, pg_url, embedder=hash_embedder)
    assert rerun.articles_unchanged == report.counts["articles"] and rerun.articles_total == 120
    assert check_index(url).ok


def test_check_reports_what_is_broken(pg_url, tmp_path, hash_embedder):
    build_index(write_archive(tmp_path / "a.jsonl", range(5), sentences=4), pg_url, embedder=hash_embedder)
    assert check_index(PgUrl(pg_url)).ok
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("delete from sentences where id = (select min(id) from sentences)")
        conn.execute("drop index chunks_fts_simple")
    problems = check_index(PgUrl(pg_url)).problems
    assert "1 articles have missing or extra sentence vectors" in problems
    assert "index chunks_fts_simple is missing" in problems


@pytest.mark.model
def test_the_real_model_answers_from_postgres_and_from_copies_both_ways(pg_server, pg_url, sample_index, e5, tmp_path):
    from qabot.answering.retriever import Retriever
    from qabot.store.copying import copy_index

    copied = copy_index(sample_index, PgUrl(pg_url))
    assert copied.articles == 1 and copied.chunks > 1 and copied.sentences > copied.chunks
    back = tmp_path / "back"
    copy_index(PgUrl(pg_url), back)
    answers = {}
    for where in (sample_index, pg_url, back):
        with Retriever.open(where, embedder=e5) as retriever:
            for question in ("When does Putin land in Alaska?", "Wann landet Putin in Alaska?"):
                answer = retriever.ask(question)
                answers.setdefault(question, []).append((answer.sentence, [p.text for p in answer.passages],
                                                         [round(p.score, 2) for p in answer.passages]))
    for question, found in answers.items():
        assert found[0][0] == LANDING_SENTENCE, question
        assert found[0] == found[1] == found[2], question
    assert check_index(back).ok and check_index(PgUrl(pg_url)).ok
    with pytest.raises(StoreError, match="empty database"):
        copy_index(sample_index, PgUrl(pg_url))
    with pytest.raises(StoreError, match="not empty"):
        copy_index(PgUrl(pg_url), back)
    assert np.isfinite(copied.seconds)


_READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from qabot.answering.retriever import Retriever
    from tests.fakes import HashEmbedder
    url, stop = sys.argv[1], Path(sys.argv[2])
    asked, failed, half, sizes = 0, [], 0, set()
    from qabot.config import Settings
    # no reranker (on by default): its loading would start the readers after the indexer has finished
    with Retriever.open(url, settings=Settings(reranker=None), embedder=HashEmbedder()) as retriever:
        questions = ["Wann streikt die Bahn?", "Was sagt der Kanzler zum Haushalt?", "Hochwasser in der Stadt"]
        while not stop.exists() or asked < 10:
            try:
                answer = retriever.search(questions[asked % 3], k=5)
                ids = sorted({p.article_id for p in answer})
                with retriever.store.pool.connection() as conn:  # every article seen is whole
                    half += conn.execute("select count(*) from articles a where a.id = any(%s) and a.n_chunks != "
                                         "(select count(*) from chunks c where c.article_id = a.id)", [ids]).fetchone()[0]
                sizes.add(retriever.store.counts()["articles"])
            except Exception as exc:
                failed.append(repr(exc))
            asked += 1
    print(json.dumps({"asked": asked, "failed": failed, "half": half, "sizes": sorted(sizes)}))
""")


def test_three_readers_keep_answering_while_an_indexer_writes(pg_url, tmp_path, hash_embedder):
    import json

    build_index(write_archive(tmp_path / "first.jsonl", range(20), sentences=4), pg_url, embedder=hash_embedder)
    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, "-c", _READER, pg_url, str(stop)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        report = build_index(write_archive(tmp_path / "more.jsonl", range(20, 220), sentences=8), pg_url,
                             embedder=hash_embedder, batch_size=1)
    finally:
        stop.touch()
    results = []
    for reader in readers:
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert report.articles_indexed == 200
    for result in results:
        assert result["failed"] == [] and result["half"] == 0
        assert result["asked"] >= 10
    assert max(len(r["sizes"]) for r in results) > 1, "the readers saw the index grow batch by batch"


def test_the_cli_indexes_asks_and_copies_with_a_postgres_url(pg_server, pg_url, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from qabot.frontends.cli import cli
    from tests.tiny_models import build_tiny_model

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("QABOT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("QABOT_MODEL", str(build_tiny_model(tmp_path / "tiny-model")))
    monkeypatch.setenv("QABOT_INDEX", pg_url)

    def run(*args: str):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert pg_server.password not in result.output
        return result

    indexed = run("index", "--sample", "--json")
    assert indexed.exit_code == 0, indexed.output
    summary = json.loads(indexed.output)
    assert summary["articles_indexed"] == 1 and summary["index"].startswith("postgresql://qabot:***@127.0.0.1:")
    assert "nothing to do" in run("index", "--sample", "--if-missing").output
    asked = json.loads(run("ask", "Wann landet Putin in Alaska?", "--json").output)
    assert asked["passages"]
    assert run("check").exit_code == 0 and json.loads(run("stats", "--json").output)["chunks"] == summary["chunks_total"]
    copied = run("copy", pg_url, str(tmp_path / "folder"), "--json")
    assert copied.exit_code == 0 and json.loads(copied.output)["articles"] == 1
    again = json.loads(run("ask", "Wann landet Putin in Alaska?", "--json", "--index", str(tmp_path / "folder")).output)
    assert [p["text"] for p in again["passages"]] == [p["text"] for p in asked["passages"]]
    bad = run("index", "--sample", "--shard", "3/2")
    assert bad.exit_code == 1 and bad.output.startswith("error: --shard '3/2'")
    rebuild = run("index", "--sample", "--rebuild")
    assert rebuild.exit_code == 1 and "--rebuild is for index folders" in rebuild.output
    removed = run("delete", asked["passages"][0]["article_id"], "--json")
    assert removed.exit_code == 0 and json.loads(removed.output)["articles_total"] == 0


@pytest.fixture(scope="module")
def standby(pg_server):
    """A streaming read replica of the session's server (pg_basebackup), as a deployment would add for readers;
    it cancels a read that holds up replay after 0.2 s (the default is 30 s)."""
    server = pg_server.start_standby(hot_standby_feedback="on", max_standby_streaming_delay="200ms")
    yield server
    server.stop()


def test_a_read_replica_answers_like_the_primary_and_sends_writers_to_the_primary(pg_server, standby, pg_url, tmp_path, hash_embedder):
    from qabot.answering.retriever import Retriever
    from qabot.indexer import delete_articles
    from qabot.store.backends import index_stats

    build_index(write_archive(tmp_path / "news.jsonl", range(30), sentences=4), pg_url, embedder=hash_embedder)
    pg_server.wait_for_standby(standby)
    replica = standby.url(pg_url.rsplit("/", 1)[1])
    questions = ["Wann streikt die Bahn?", "Was sagt der Kanzler zum Haushalt?", "Hochwasser in der Stadt"]
    with Retriever.open(pg_url, embedder=hash_embedder) as primary, Retriever.open(replica, embedder=hash_embedder) as copy:
        for question in questions:
            on_primary, on_replica = primary.ask(question), copy.ask(question)
            assert on_replica.passages and on_replica.sentence == on_primary.sentence
            assert [(p.chunk_id, round(p.score, 4)) for p in on_replica.passages] == \
                   [(p.chunk_id, round(p.score, 4)) for p in on_primary.passages]
        gone = on_primary.passages[0].article_id
        delete_articles(pg_url, [gone])
        pg_server.wait_for_standby(standby)
        assert copy.store.counts()["articles"] == 29
        assert gone not in {p.article_id for p in copy.ask(question).passages}
    assert check_index(PgUrl(replica)).ok and index_stats(PgUrl(replica))["articles"] == 29
    for write in (lambda: build_index(write_archive(tmp_path / "more.jsonl", range(30, 32)), replica, embedder=hash_embedder),
                  lambda: delete_articles(replica, ["0"])):
        with pytest.raises(StoreError, match="read-only replica") as raised:
            write()
        assert standby.password not in str(raised.value) and str(standby.port) in str(raised.value)


def test_a_read_the_replica_cancels_for_a_conflict_with_recovery_runs_once_more(pg_server, standby, pg_url, tmp_path, hash_embedder):
    report = build_index(write_archive(tmp_path / "news.jsonl", range(5)), pg_url, embedder=hash_embedder)
    pg_server.wait_for_standby(standby)
    tries = []

    def read(conn: psycopg.Connection) -> int:
        tries.append(time.monotonic())
        chunks = conn.execute("select count(*) from chunks").fetchone()[0]
        if len(tries) == 1:  # the primary takes a lock this read conflicts with; replaying it cancels the read
            with psycopg.connect(pg_url) as primary:
                primary.execute("lock table chunks in access exclusive mode")
            conn.execute("select pg_sleep(20)")
        return chunks

    with PgStore.open(PgUrl(standby.url(pg_url.rsplit("/", 1)[1]))) as replica:
        assert replica.pool.read(read) == report.chunks_total
    assert len(tries) == 2 and tries[1] - tries[0] < 10
