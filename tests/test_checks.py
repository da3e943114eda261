"""`qabot check` finds a corrupt full-text index, whatever part of FTS5 is damaged."""

from __future__ import annotations

import sqlite3

import pytest

from qabot.indexer import build_index
from qabot.store import Store, read_manifest
from qabot.store.backends import check_index
from tests.fakes import HashEmbedder

from .archives import write_archive


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checks") / "ix"
    build_index(write_archive(folder.parent / "a.jsonl", range(30)), folder, embedder=HashEmbedder(), chunk_tokens=60)
    return folder


@pytest.fixture
def index(built, tmp_path):
    import shutil

    copy = tmp_path / "ix"
    shutil.copytree(built, copy)
    return copy


def _corrupt(folder, *statements: str) -> None:
    with sqlite3.connect(folder / read_manifest(folder).generation / "qabot.db") as db:
        for sql in statements:
            db.execute(sql)


def test_a_sound_index_passes(index):
    assert check_index(index).ok


@pytest.mark.parametrize(
    "statements",
    [
        pytest.param(["delete from chunks_fts_data where id > 10"], id="segments-deleted"),
        pytest.param(["update chunks_fts_data set block = x'00' where id = 10"], id="structure-overwritten"),
        pytest.param(["update chunks_fts_data set block = randomblob(length(block)) where id > 1"], id="segments-garbage"),
        pytest.param(["delete from chunks_fts_idx"], id="segment-index-deleted"),  # passes FTS5's own check
        pytest.param(["delete from chunks_fts_config"], id="config-deleted"),
        pytest.param(["delete from chunks_fts_docsize"], id="docsize-deleted"),
        pytest.param(
            ["drop trigger chunks_au", "update chunks set text = 'ganz anderer Text' where id = (select min(id) from chunks)"],
            id="content-changed-behind-its-back",
        ),
    ],
)
def test_a_corrupt_full_text_index_is_reported(index, statements):
    _corrupt(index, *statements)
    report = check_index(index)
    assert not report.ok
    assert any(p.startswith("full-text index") for p in report.problems), report.problems


def test_check_reads_no_vectors(index, monkeypatch):
    from qabot.store.vectors import VectorIndex

    def refuse(*args, **kwargs):
        raise AssertionError("qabot check loaded the vectors")

    monkeypatch.setattr(VectorIndex, "load", classmethod(refuse))
    assert check_index(index).ok
    with Store.open(index) as store:
        assert store.counts()["vectors"] == store.counts()["chunks"] and not store.vectors_loaded


def test_sqlite_running_out_of_memory_on_a_damaged_full_text_index_is_reported_not_raised(index, monkeypatch, caplog):
    # Random garbage in the segments makes SQLite fail with SQLITE_NOMEM now and then (a length
    # read from garbage): Python's sqlite3 raises MemoryError, which must count as damage.
    import sqlite_utils

    real = sqlite_utils.Database.execute

    def execute(self, sql, *args, **kwargs):
        if "integrity-check" in sql or " match " in sql:
            raise MemoryError
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(sqlite_utils.Database, "execute", execute)
    report = check_index(index)
    assert any(p.startswith("full-text index: SQLite ran out of memory") for p in report.problems), report.problems
    with Store.open(index) as store:
        assert store.keyword_search('"bundestag"', 5) == []
    assert "full-text search failed (MemoryError)" in caplog.text
