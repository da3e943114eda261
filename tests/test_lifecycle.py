"""Index lifecycle: incremental updates, prune, delete, rebuild, generations, resume, check."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from qabot.errors import IndexMismatchError, StoreError
from qabot.frontends.cli import cli
from qabot.indexer import build_index, delete_articles
from qabot.store import Store, generations, read_manifest
from qabot.store.backends import check_index, index_stats
from tests.fakes import HashEmbedder

from .archives import snapshot, write_archive
from .fake_model_cli import use_hash_embedder


def _build(archive, folder, **kwargs):
    kwargs.setdefault("embedder", HashEmbedder())
    kwargs.setdefault("chunk_tokens", 60)
    return build_index(archive, folder, **kwargs)


def _generations(folder):
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("gen-"))


def test_an_unchanged_rerun_embeds_nothing_and_writes_nothing(tmp_path):
    archive = write_archive(tmp_path / "a.jsonl", range(20))
    first = _build(archive, tmp_path / "ix")
    manifest_before = (tmp_path / "ix" / "manifest.json").read_bytes()
    again = _build(archive, tmp_path / "ix")
    assert first.articles_indexed == 20 and first.chunks_embedded > 20
    assert again.chunks_embedded == 0 and again.articles_unchanged == 20
    assert (tmp_path / "ix" / "manifest.json").read_bytes() == manifest_before
    assert again.generation == first.generation
    assert check_index(tmp_path / "ix").ok


def test_a_changed_article_is_replaced_and_prune_removes_missing_ones(tmp_path):
    _build(write_archive(tmp_path / "a.jsonl", range(10)), tmp_path / "ix")
    report = _build(write_archive(tmp_path / "b.jsonl", range(2, 12), changed=frozenset({5})), tmp_path / "ix", prune=True)
    assert report.articles_indexed == 3  # 5 changed, 10 and 11 new
    assert report.articles_removed == 2  # 0 and 1 are gone from the archive
    reference = _build(write_archive(tmp_path / "b.jsonl", range(2, 12), changed=frozenset({5})), tmp_path / "ref")
    assert reference.articles_total == report.articles_total == 10
    assert snapshot(tmp_path / "ix") == snapshot(tmp_path / "ref")
    assert check_index(tmp_path / "ix").ok


def test_without_prune_missing_articles_stay(tmp_path):
    _build(write_archive(tmp_path / "a.jsonl", range(10)), tmp_path / "ix")
    report = _build(write_archive(tmp_path / "b.jsonl", range(5)), tmp_path / "ix")
    assert report.articles_removed == 0 and report.articles_total == 10


def test_delete_removes_articles_chunks_and_vectors(tmp_path):
    _build(write_archive(tmp_path / "a.jsonl", range(10)), tmp_path / "ix")
    before = snapshot(tmp_path / "ix")
    report = delete_articles(tmp_path / "ix", ["art-3", "art-7", "nope"])
    assert report.removed == ("art-3", "art-7") and report.unknown == ("nope",)
    after = snapshot(tmp_path / "ix")
    assert set(after["articles"]) == set(before["articles"]) - {"art-3", "art-7"}
    assert [c for c in before["chunks"] if c[0] not in {"art-3", "art-7"}] == after["chunks"]
    assert report.chunks_removed == len(before["chunks"]) - len(after["chunks"])
    assert check_index(tmp_path / "ix").ok


def test_changed_chunk_settings_are_refused_until_rebuild(tmp_path):
    archive = write_archive(tmp_path / "a.jsonl", range(10))
    _build(archive, tmp_path / "ix", chunk_tokens=60)
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        _build(archive, tmp_path / "ix", chunk_tokens=120)
    with pytest.raises(IndexMismatchError, match="model"):
        _build(archive, tmp_path / "ix", embedder=_OtherModel())
    report = _build(archive, tmp_path / "ix", chunk_tokens=120, rebuild=True)
    assert read_manifest(tmp_path / "ix").chunk_tokens == 120
    assert report.articles_indexed == 10
    assert snapshot(tmp_path / "ix") == snapshot(_fresh(tmp_path, archive, chunk_tokens=120))


class _OtherModel(HashEmbedder):
    name = "another-model"


def _fresh(tmp_path, archive, **kwargs):
    folder = tmp_path / "fresh"
    _build(archive, folder, **kwargs)
    return folder


def test_only_the_live_and_the_previous_generation_stay_on_disk(tmp_path):
    folder = tmp_path / "ix"
    for n in range(1, 5):
        _build(write_archive(tmp_path / "a.jsonl", range(n * 3)), folder)
    manifest = read_manifest(folder)
    assert _generations(folder) == sorted([manifest.generation, manifest.previous_generation])
    assert not (folder / "staging.json").exists()


def test_a_reader_keeps_its_generation_while_a_writer_swaps(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(5)), folder)
    reader = Store.open(folder)
    old = reader.counts()
    _build(write_archive(tmp_path / "a.jsonl", range(15)), folder)
    # the open reader still sees exactly the old state, consistently
    assert reader.counts() == old and not reader.id_problems()
    assert reader.search_vectors(HashEmbedder().embed_queries(["Regierung"])[0], 3)
    reader.close()
    with Store.open(folder) as fresh:
        assert fresh.counts()["articles"] == 15


def test_a_second_writer_is_refused_while_one_runs(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(3)), folder)
    with generations.writer_lock(folder), pytest.raises(StoreError, match="another qabot process"):
        _build(write_archive(tmp_path / "a.jsonl", range(6)), folder)
    _build(write_archive(tmp_path / "a.jsonl", range(6)), folder)


class _StopAfter(HashEmbedder):
    """Raises KeyboardInterrupt (as Ctrl-C would) on the n-th batch."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.calls, self.n = 0, n

    def embed_passages(self, texts, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return super().embed_passages(texts, **kwargs)


def test_ctrl_c_saves_progress_and_the_next_run_resumes(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(5)), folder)
    old = snapshot(folder)
    archive = write_archive(tmp_path / "b.jsonl", range(60), changed=frozenset({1, 2}))
    with pytest.raises(KeyboardInterrupt):
        _build(archive, folder, embedder=_StopAfter(4), batch_size=2, checkpoint_seconds=0)
    assert snapshot(folder) == old  # the live index is untouched
    assert (folder / "staging.json").exists()
    report = check_index(folder)
    assert report.ok and any("interrupted run" in n for n in report.notes)
    counting = _Counting()
    resumed = _build(archive, folder, embedder=counting, batch_size=2)
    assert resumed.resumed and 0 < counting.embedded < resumed.chunks_total + resumed.sentences_total
    assert snapshot(folder) == snapshot(_fresh(tmp_path, archive))
    assert check_index(folder).ok and not (folder / "staging.json").exists()


class _Counting(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def embed_passages(self, texts, **kwargs):
        self.embedded += len(texts)
        return super().embed_passages(texts, **kwargs)


def test_an_interrupted_run_with_other_settings_is_discarded_not_resumed(tmp_path):
    folder = tmp_path / "ix"
    archive = write_archive(tmp_path / "b.jsonl", range(40))
    _build(write_archive(tmp_path / "a.jsonl", range(3)), folder)
    with pytest.raises(KeyboardInterrupt):
        _build(archive, folder, embedder=_StopAfter(3), batch_size=2, checkpoint_seconds=0)
    assert json.loads((folder / "staging.json").read_text())["chunk_tokens"] == 60
    report = _build(archive, folder, chunk_tokens=90, rebuild=True)
    assert not report.resumed and report.chunks_embedded == report.chunks_total
    assert snapshot(folder) == snapshot(_fresh(tmp_path, archive, chunk_tokens=90))


def test_delete_refuses_to_drop_an_interrupted_run_which_then_still_resumes(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(5)), folder)
    archive = write_archive(tmp_path / "b.jsonl", range(40))
    with pytest.raises(KeyboardInterrupt):
        _build(archive, folder, embedder=_StopAfter(3), batch_size=2, checkpoint_seconds=0)
    staging = json.loads((folder / "staging.json").read_text())
    before = snapshot(folder)
    with pytest.raises(StoreError) as refused:
        delete_articles(folder, ["art-1"])
    message = str(refused.value)
    assert staging["generation"] in message and "interrupted" in message and "started 20" in message
    assert "running the same `qabot index` command again" in message
    assert (folder / "staging.json").exists() and (folder / staging["generation"]).is_dir()
    assert snapshot(folder) == before  # nothing deleted either
    resumed = _build(archive, folder)
    assert resumed.resumed and resumed.generation == staging["generation"]
    assert delete_articles(folder, ["art-1"]).removed == ("art-1",)


def test_an_index_run_with_other_settings_warns_when_it_discards_an_interrupted_run(tmp_path, caplog):
    folder = tmp_path / "ix"
    archive = write_archive(tmp_path / "b.jsonl", range(30))
    _build(write_archive(tmp_path / "a.jsonl", range(3)), folder)
    with pytest.raises(KeyboardInterrupt):
        _build(archive, folder, embedder=_StopAfter(3), batch_size=2, checkpoint_seconds=0)
    generation = json.loads((folder / "staging.json").read_text())["generation"]
    with caplog.at_level(logging.INFO, logger="qabot.store.generations"):
        _build(archive, folder, chunk_tokens=90, rebuild=True)
    discarded = [r for r in caplog.records if "discarding" in r.getMessage()]
    assert [r.levelno for r in discarded] == [logging.WARNING] and generation in discarded[0].getMessage()


def test_an_index_from_before_generations_is_read_and_migrated(tmp_path):
    folder = tmp_path / "ix"
    store = Store.create(folder, model="hash-test", dimension=256, chunk_tokens=60, chunk_overlap=1)
    store.close()
    assert (folder / "qabot.db").exists() and read_manifest(folder).generation == ""
    archive = write_archive(tmp_path / "a.jsonl", range(8))
    _build(archive, folder)
    assert read_manifest(folder).generation.startswith("gen-")
    _build(write_archive(tmp_path / "a.jsonl", range(9)), folder)
    assert not (folder / "qabot.db").exists()  # the flat files go once two generations are newer
    assert check_index(folder).ok


def test_readers_during_many_writes_always_see_a_whole_state(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(4)), folder)
    expected = {4: None}
    sizes = list(range(6, 30, 3))
    for n in sizes:
        expected[n] = None
    seen, errors, stop = set(), [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                with Store.open(folder) as store:
                    seen.add(store.counts()["articles"])
            except Exception as exc:  # noqa: BLE001 - any failure to open is a bug
                errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in sizes:
            _build(write_archive(tmp_path / "a.jsonl", range(n)), folder, batch_size=1)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert seen <= set(expected)


# -- qabot check / stats ------------------------------------------------------------------


@pytest.fixture
def built(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(6)), folder)
    return folder


def _live_db(folder):
    manifest = read_manifest(folder)
    return sqlite3.connect(folder / manifest.generation / "qabot.db")


def test_check_finds_a_chunk_without_a_vector(built):
    with _live_db(built) as db:
        db.execute("insert into chunks (article_id, idx, text, start, \"end\", n_tokens) values ('art-1', 99, 'x', 0, 1, 1)")
    report = check_index(built)
    assert not report.ok and any("chunks without a vector" in p for p in report.problems)


def test_check_finds_the_full_text_index_out_of_step(built):
    with _live_db(built) as db:
        db.execute("delete from chunks_fts_docsize where id = (select min(id) from chunks)")
    report = check_index(built)
    assert any("full-text index" in p for p in report.problems)


def test_check_finds_wrong_manifest_counts_and_article_chunk_counts(built):
    path = built / "manifest.json"
    data = json.loads(path.read_text())
    data["chunks"] += 1
    path.write_text(json.dumps(data))
    with _live_db(built) as db:
        db.execute("update articles set n_chunks = n_chunks + 1 where id = 'art-2'")
    problems = check_index(built).problems
    assert any("manifest counts" in p for p in problems)
    assert any("n_chunks" in p for p in problems)


def test_check_reports_a_missing_generation_folder(built):
    import shutil

    shutil.rmtree(built / read_manifest(built).generation)
    report = check_index(built)
    assert not report.ok and "missing" in report.problems[0]


def test_check_and_stats_from_the_cli(built, monkeypatch):
    use_hash_embedder(monkeypatch)
    ok = CliRunner().invoke(cli, ["check", "--index", str(built), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    stats = json.loads(CliRunner().invoke(cli, ["stats", "--index", str(built), "--json"]).output)
    assert {"articles", "chunks", "vectors"} <= set(stats)
    assert stats["articles"] == 6 and stats["chunks"] == stats["vectors"] > 6
    assert stats["first_date"] <= stats["last_date"] and stats["bytes_on_disk"] > 0
    assert stats == {**index_stats(built)}
    with _live_db(built) as db:
        db.execute("delete from chunks where id = (select max(id) from chunks)")
    bad = CliRunner().invoke(cli, ["check", "--index", str(built)])
    assert bad.exit_code == 1 and "vectors without a chunk" in bad.output


def test_delete_and_prune_from_the_cli(tmp_path, monkeypatch):
    use_hash_embedder(monkeypatch)
    monkeypatch.setenv("QABOT_CHUNK_TOKENS", "60")
    folder = tmp_path / "ix"
    archive = write_archive(tmp_path / "a.jsonl", range(8))
    assert CliRunner().invoke(cli, ["index", str(archive), "--index", str(folder)]).exit_code == 0
    result = CliRunner().invoke(cli, ["delete", "art-1", "art-404", "--index", str(folder)])
    assert result.exit_code == 1
    assert "removed 1 article" in result.output and "not in the index: art-404" in result.output
    smaller = write_archive(tmp_path / "b.jsonl", range(4))
    result = CliRunner().invoke(cli, ["index", str(smaller), "--prune", "--json", "--index", str(folder)])
    data = json.loads(result.output)
    assert data["articles_removed"] == 4 and data["articles_total"] == 4  # art-4..7 pruned, art-1 back
    changed = CliRunner().invoke(cli, ["index", str(smaller), "--index", str(folder)], env={"QABOT_CHUNK_TOKENS": "90"})
    assert changed.exit_code == 1 and "--rebuild" in changed.output


def test_vectors_and_rows_stay_in_step_through_every_operation(tmp_path):
    folder = tmp_path / "ix"
    _build(write_archive(tmp_path / "a.jsonl", range(10)), folder)
    _build(write_archive(tmp_path / "a.jsonl", range(5, 15), changed=frozenset({6, 7})), folder, prune=True)
    delete_articles(folder, ["art-9"])
    with Store.open(folder) as store:
        ids = store.chunk_ids()
        vectors = store.vectors_for(ids.tolist())
        texts = [store.chunk_rows([int(i)])[int(i)]["text"] for i in ids]
    expected = HashEmbedder().embed_passages(texts)
    assert np.allclose(vectors, expected, atol=1e-5)  # each vector sits under its own chunk's id
    with Store.open(folder) as store:
        assert not store.sentence_problems()
        stored, sentence_vectors = store.sentences_in(ids.tolist())
        chunks = store.chunk_rows(ids.tolist())
    texts = [chunks[s.chunk_id]["text"][s.start - chunks[s.chunk_id]["start"] : s.end - chunks[s.chunk_id]["start"]] for s in stored]
    assert len(stored) > len(ids)
    assert np.allclose(sentence_vectors, HashEmbedder().embed_passages(texts), atol=2e-3)  # float16 on disk


def test_progress_shows_articles_of_the_total_chunks_and_rate(tmp_path, capsys):
    _build(write_archive(tmp_path / "a.jsonl", range(30)), tmp_path / "ix", progress=True)
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert bar.startswith("indexing: 100%") and "30/30" in bar
    assert "chunks=" in bar and "chunks_per_s=" in bar
