"""Reopening a rebuilt index between questions: backoff after a failure, and a change of model."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.frontends.cli import sample_archive
from qabot.frontends.reloading import IndexOpener, RetrieverHolder, same_model
from qabot.indexer import build_index
from qabot.store import MANIFEST_NAME, Store
from tests.fakes import HashEmbedder

LANDING = "Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit"


class NamedHash(HashEmbedder):
    """A hash "model" of another name and size: what a rebuild with another model looks like."""

    def __init__(self, name: str, dimension: int) -> None:
        super().__init__(dimension=dimension)
        self.name = name


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Answering:
    """A stand-in retriever: says who it is."""

    def __init__(self, name: str) -> None:
        self.name, self.closed = name, False

    def ask(self, question: str) -> str:
        return f"{self.name}: {question}"

    def close(self) -> None:
        self.closed = True


def rewrite_manifest(folder: Path, n: int) -> None:
    """What a rebuild does to the manifest: a new file moved into place."""
    (folder / "next").write_text("{" + " " * n + "}", encoding="utf-8")
    (folder / "next").replace(folder / MANIFEST_NAME)


async def ask(holder: RetrieverHolder, question: str = "q") -> str:
    async with holder.use() as retriever:
        return retriever.ask(question)


def test_a_failed_reopening_backs_off_logs_once_and_keeps_the_old_index_answering(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="qabot.frontends.reloading")
    (tmp_path / MANIFEST_NAME).write_text("{}", encoding="utf-8")
    calls: list[float] = []
    broken = True
    clock = Clock()

    def opener(folder: Path) -> Any:
        calls.append(clock.now)
        if broken:
            raise OSError("vectors.faiss: unreadable")
        return Answering("new")

    holder = RetrieverHolder(Answering("old"), index_dir=tmp_path, opener=opener, clock=clock)  # type: ignore[arg-type]

    async def scenario() -> None:
        nonlocal broken
        rewrite_manifest(tmp_path, 1)
        for _ in range(5):  # one try, then nothing until the backoff has passed
            assert await ask(holder) == "old: q"
        assert calls == [100.0]
        clock.now += 1.01
        assert await ask(holder) == "old: q" and await ask(holder) == "old: q"
        assert calls == [100.0, 101.01]  # 1 s, then 2 s, 4 s, ...
        clock.now += 1.5
        assert await ask(holder) == "old: q" and len(calls) == 2
        clock.now += 0.6
        assert await ask(holder) == "old: q" and len(calls) == 3
        for _ in range(12):  # the wait doubles up to five minutes
            clock.now += 301
            await ask(holder)
        assert holder._delay == 300.0
        rewrite_manifest(tmp_path, 2)  # a new manifest version: tried at once, logged again
        await ask(holder)
        assert len(calls) == 16
        broken = False
        clock.now += 1.01
        assert await ask(holder) == "new: q"

    asyncio.run(scenario())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # once per manifest version
    assert "cannot be reopened (vectors.faiss: unreadable)" in warnings[0].getMessage()
    assert not any(r.exc_info for r in warnings)  # the traceback only at DEBUG
    assert sum(bool(r.exc_info) for r in caplog.records if r.levelno == logging.DEBUG) == 16
    assert any("reopened the rebuilt index" in r.getMessage() for r in caplog.records)


def test_a_failed_reopening_does_not_stop_the_next_good_one(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("{}", encoding="utf-8")
    results: list[Any] = [OSError("half written"), Answering("fixed")]

    def opener(folder: Path) -> Any:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    holder = RetrieverHolder(Answering("old"), index_dir=tmp_path, opener=opener, clock=Clock())  # type: ignore[arg-type]

    async def scenario() -> None:
        rewrite_manifest(tmp_path, 1)
        assert await ask(holder) == "old: q"
        rewrite_manifest(tmp_path, 2)  # the rebuild finished: no need to wait out the backoff
        assert await ask(holder) == "fixed: q"

    asyncio.run(scenario())


@pytest.fixture
def index(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    build_index(sample_archive(), folder, embedder=NamedHash("hash-small", 64))
    return folder


@pytest.mark.model
def test_a_rebuild_with_another_model_is_reopened_with_that_model(index, e5, model_cache_dir):
    """The opener used to reuse the old embedder: IndexMismatchError on every question, forever."""
    first = Retriever(Store.open(index, model="hash-small"), NamedHash("hash-small", 64))
    settings = Settings.from_env({}, cache_dir=model_cache_dir)
    holder = RetrieverHolder(first, index_dir=index, opener=IndexOpener(settings, first.embedder), clock=Clock())

    async def scenario() -> None:
        async with holder.use() as retriever:
            assert retriever is first
        build_index(sample_archive(), index, embedder=e5, rebuild=True)
        async with holder.use() as retriever:  # the manifest's model, loaded from the settings' cache
            assert retriever is not first and retriever.embedder.name == e5.name
            assert retriever.embedder.dimension == e5.dimension
            assert retriever.ask("Wann landet Putin in Alaska?").sentence.startswith(LANDING)

    try:
        asyncio.run(scenario())
    finally:
        holder.close()
        first.close()


def test_a_rebuild_with_another_hash_model_is_reopened_by_the_holder(index):
    first = Retriever(Store.open(index, model="hash-small"), NamedHash("hash-small", 64))
    opener = IndexOpener(Settings.from_env({}), first.embedder, load=lambda model: NamedHash(model, 32))
    holder = RetrieverHolder(first, index_dir=index, opener=opener, clock=Clock())

    async def scenario() -> None:
        build_index(sample_archive(), index, embedder=NamedHash("hash-other", 32), rebuild=True)
        async with holder.use() as retriever:
            assert retriever is not first and retriever.embedder.name == "hash-other"
            assert retriever.ask("Wann landet Putin in Alaska?").sentence is not None

    try:
        asyncio.run(scenario())
    finally:
        holder.close()
        first.close()


def test_the_opener_keeps_the_model_while_the_manifest_names_it_and_loads_another_once(index, tmp_path):
    loaded: list[str] = []
    small = NamedHash("hash-small", 64)

    def load(model: str) -> NamedHash:
        loaded.append(model)
        return NamedHash(model, 32)

    opener = IndexOpener(Settings.from_env({}), small, load=load)
    with opener(index) as retriever:
        assert retriever.embedder is small and loaded == []
    build_index(sample_archive(), index, embedder=NamedHash("hash-other", 32), rebuild=True)
    for _ in range(2):
        with opener(index) as retriever:
            assert retriever.embedder.name == "hash-other" and retriever.ask("Wann landet Putin in Alaska?").sentence
    assert loaded == ["hash-other"]  # loaded once, then reused


def test_model_names_match_without_their_owner():
    assert same_model("intfloat/multilingual-e5-small", "multilingual-e5-small")
    assert not same_model("hash-test", "hash-small")


def test_a_missing_manifest_for_a_moment_reloads_nothing(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("{}", encoding="utf-8")
    opened: list[str] = []
    holder = RetrieverHolder(Answering("old"), index_dir=tmp_path,  # type: ignore[arg-type]
                             opener=lambda folder: opened.append("x") or Answering("new"))  # type: ignore[arg-type,func-returns-value]

    async def scenario() -> None:
        (tmp_path / MANIFEST_NAME).unlink()
        assert await ask(holder) == "old: q" and opened == []
        rewrite_manifest(tmp_path, 3)
        assert await ask(holder) == "new: q" and opened == ["x"]

    asyncio.run(scenario())
