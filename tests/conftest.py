"""Shared fixtures: the real provisioned model, a tiny deterministic embedder, sample indexes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qabot.frontends.cli import sample_archive
from qabot.models.embedding import HashEmbedder, load_embedder
from qabot.indexer import build_index
from qabot.answering.retriever import Retriever

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

LANDING_SENTENCE = (
    "Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit (21.00 Uhr MESZ) mit dem Flugzeug in Alaska ankommen."
)


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """The real model cache, shared across runs (provisioning takes a while the first time)."""
    configured = os.environ.get("QABOT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qabot"


@pytest.fixture(scope="session")
def e5(model_cache_dir: Path):
    """The real default model, multilingual-e5-small, from the provisioned folder."""
    return load_embedder("multilingual-e5-small", cache_dir=model_cache_dir)


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, e5) -> Path:
    """The bundled sample archive indexed with the real model."""
    folder = tmp_path_factory.mktemp("sample") / "index"
    build_index(sample_archive(), folder, embedder=e5)
    return folder


@pytest.fixture(scope="session")
def sample_retriever(sample_index: Path, e5):
    from qabot.store.store import Store

    retriever = Retriever(Store.open(sample_index, model=e5.name), e5)
    yield retriever
    retriever.close()
