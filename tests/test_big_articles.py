"""Big articles: a size limit (a reported problem, not minutes of embedding), and a long article
whose indexing resumes from inside it after an interruption (checkpoints fall inside it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qabot.documents import Problem
from qabot.indexer import build_index
from qabot.store import Store, generations
from qabot.store.backends import check_index
from qabot.store.folder_run import FolderRun
from tests.fakes import HashEmbedder

from .archives import article_text, snapshot, write_archive

BATCH = 2  # chunks per embedding batch: an indexing batch holds BATCH * 32 = 64 chunks
CHUNK_TOKENS = 20


def _long_archive(path: Path) -> Path:
    """Three short articles around one of ~200 chunks (more than three batches)."""
    write_archive(path, [1, 2])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "long", "title": "Lang", "date": "2025-08-15", "text": article_text(99, 400)}) + "\n")
        fh.write(json.dumps({"id": "after", "title": "Danach", "date": "2025-08-16", "text": article_text(5)}) + "\n")
    return path


def _build(archive: Path, folder: Path, embedder: HashEmbedder | None = None, **options: object):
    return build_index(archive, folder, embedder=embedder or HashEmbedder(), chunk_tokens=CHUNK_TOKENS, batch_size=BATCH, **options)


class _StopAfter(HashEmbedder):
    """The HashEmbedder, interrupted (as Ctrl-C does) at its ``calls``-th batch."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.left = calls

    def embed_passages(self, texts, *, batch_size=32, show_progress=False) -> np.ndarray:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return super().embed_passages(texts, batch_size=batch_size, show_progress=show_progress)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], int]:
    root = tmp_path_factory.mktemp("big")
    archive = _long_archive(root / "archive.jsonl")
    report = _build(archive, root / "ix")
    with Store.open(root / "ix") as store:
        long_chunks = store.db.execute("select n_chunks from articles where id = 'long'").fetchone()[0]
    assert long_chunks > 3 * BATCH * 32
    return archive, snapshot(root / "ix"), report.chunks_embedded


def _short_chunks(want: dict[str, object]) -> int:
    """Chunks of the two short articles indexed before the long one (the first batch)."""
    return sum(1 for article_id, _, _ in want["chunks"] if article_id in {"art-1", "art-2"})


PART = BATCH * 32  # chunks per part of the long article


def test_ctrl_c_inside_a_long_article_keeps_its_stored_parts_and_the_next_run_goes_on(expected, tmp_path: Path) -> None:
    # Before: batches never split an article, so nothing of it was kept (a 20 MB one: Ctrl-C after 73 s left nothing).
    archive, want, total = expected
    folder = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):
        _build(archive, folder, _StopAfter(3))  # batch 1: the short articles; 2 and 3: the long one's first two parts
    resumed = _build(archive, folder)
    assert resumed.resumed
    assert resumed.chunks_embedded == total - _short_chunks(want) - 2 * PART
    assert resumed.articles_indexed == 2  # the long one (its rest) and the one after it
    assert snapshot(folder) == want
    assert check_index(folder).ok


def test_a_kill_after_a_lost_checkpoint_resumes_from_the_last_saved_chunk(expected, tmp_path: Path, monkeypatch) -> None:
    # SQLite commits every part; FAISS is saved at checkpoints: a kill loses the parts stored after the last one.
    archive, want, total = expected
    folder = tmp_path / "ix"
    real_checkpoint = generations.checkpoint
    saved: list[int] = []

    def first_two(store: Store) -> None:  # saved after the short articles and after the long one's first part
        if len(saved) < 2:
            saved.append(1)
            real_checkpoint(store)

    monkeypatch.setattr(generations, "checkpoint", first_two)
    def killed(run: FolderRun) -> None:  # killed: nothing saved at the end
        if run.staging is not None:
            run.staging.close()

    monkeypatch.setattr(FolderRun, "abort", killed)
    with pytest.raises(KeyboardInterrupt):
        _build(archive, folder, _StopAfter(4), checkpoint_seconds=0)  # parts 2 and 3 reach SQLite, not the FAISS file
    monkeypatch.undo()
    resumed = _build(archive, folder)
    assert resumed.resumed
    assert resumed.chunks_embedded == total - _short_chunks(want) - PART
    assert snapshot(folder) == want
    assert check_index(folder).ok


def test_an_interrupted_long_article_gone_from_the_archive_is_not_published_in_part(expected, tmp_path: Path) -> None:
    archive, _, _ = expected
    folder = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):
        _build(archive, folder, _StopAfter(3))
    smaller = write_archive(tmp_path / "smaller.jsonl", [1, 2])
    _build(smaller, folder)
    with Store.open(folder) as store:
        assert sorted(store.article_hashes()) == ["art-1", "art-2"] and store.partial_articles() == {}
    assert check_index(folder).ok


def test_an_article_over_the_size_limit_is_a_problem_naming_its_file_and_line(tmp_path: Path) -> None:
    archive = _long_archive(tmp_path / "archive.jsonl")
    problems: list[Problem] = []
    report = _build(archive, tmp_path / "ix", max_article_bytes=20_000, on_problem=problems.append)
    assert [str(p) for p in problems] == [
        f"{archive}:3: article 'long' is 0.0 MB, over the limit of 0.02 MB (QABOT_MAX_ARTICLE_BYTES); not indexed"
    ] or (len(problems) == 1 and problems[0].line == 3), problems
    assert problems[0].path.endswith("archive.jsonl") and "over the limit of 0.02 MB (QABOT_MAX_ARTICLE_BYTES)" in problems[0].reason
    assert report.articles_indexed == 3 and report.articles_skipped == 1
    with Store.open(tmp_path / "ix") as store:
        assert sorted(store.article_hashes()) == ["after", "art-1", "art-2"]
