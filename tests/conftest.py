"""Shared fixtures: the real provisioned model, a tiny deterministic embedder, sample indexes; and how
`make test` spreads the tests over pytest-xdist workers."""

from __future__ import annotations

import fcntl
import json
import os

# Under pytest-xdist (`make test` runs one worker per core): one math thread per worker, for its
# subprocesses too. Workers that each start a thread per core fight over the cores (measured: two
# torch processes at two threads each ran ~5x slower each). Set before torch or FAISS is imported.
if (_workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT")) is not None:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(_workers))))

import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from qabot.answering.retriever import Retriever
from qabot.documents import Article
from qabot.frontends.cli import sample_archive
from qabot.indexer import build_index
from qabot.ingest.archive import iter_articles
from qabot.ingest.sentences import split_sentences
from qabot.models.embedding import load_embedder
from tests.fakes import HashEmbedder

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


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL 18 + pgvector on 127.0.0.1 for the session (tests/pg_server.py); stopped at the end.

    Not skipped when it cannot start: the test extra installs it, so a failure here is a broken install.
    """
    from tests import pg_server as pg

    if (why := pg.available()) is not None:
        pytest.fail(why)
    server = pg.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A new empty database on the session's server; dropped afterwards."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory and environment (no QABOT_* or bot token) in which the CLI's
    model is the fast HashEmbedder (click's CliRunner tests)."""
    from tests.fake_model_cli import use_hash_embedder

    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("QABOT_") or key == "TELEGRAM_BOT_TOKEN":
            monkeypatch.delenv(key)
    use_hash_embedder(monkeypatch)
    return tmp_path


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, e5) -> Path:
    """The bundled sample archive indexed with the real model."""
    folder = tmp_path_factory.mktemp("sample") / "index"
    build_index(sample_archive(), folder, embedder=e5)
    return folder


@pytest.fixture(scope="session")
def sample_retriever(sample_index: Path, e5):
    from qabot.store import Store

    retriever = Retriever(Store.open(sample_index, model=e5.name), e5)
    yield retriever
    retriever.close()


# The news fixture: every NEWS_STEP-th article of the 10kGNAD test split (read at run time,
# never copied into the repository: its licence forbids it), NEWS_COUNT of them, plus the sample.
# Each is cut to its whole sentences within NEWS_CHARS (the lead and a few paragraphs): ~2-3
# chunks an article, 30x the rerank pool, at half the embedding time of the full articles.
NEWS_CORPUS = SHARED / "corpora" / "10kgnad-test.csv"
NEWS_STEP = 6
NEWS_COUNT = 150
NEWS_CHARS = 1500


def news_articles() -> list[Article]:
    """The fixture's articles from the 10kGNAD test split, ids as the archive reader gives them
    (``10kgnad-test.csv:<line>``), so a test names an article by its line in the corpus."""
    if not NEWS_CORPUS.is_file():
        pytest.skip(f"{NEWS_CORPUS} is absent: the news fixture needs ../shared/corpora beside the repository")
    problems: list[object] = []
    articles = list(iter_articles(NEWS_CORPUS, on_problem=problems.append))
    assert not problems, problems
    chosen = articles[::NEWS_STEP][:NEWS_COUNT]
    assert len(chosen) == NEWS_COUNT
    return [replace(a, text=a.text[: _lead_end(a.text, NEWS_CHARS)]) for a in chosen]


def _lead_end(text: str, limit: int) -> int:
    """Where the last whole sentence within ``limit`` characters ends (at least one sentence)."""
    ends = [s.end for s in split_sentences(text)]
    return max((e for e in ends if e <= limit), default=ends[0] if ends else len(text))


@pytest.fixture(scope="session")
def news_index(tmp_path_factory: pytest.TempPathFactory, e5) -> Path:
    """150 real news articles and the sample article, indexed once per session with the real model.

    Far more chunks than the rerank pool, so the dense leg, the keyword leg and their fusion
    each have to do their job for the right article to come first.
    """
    # Under xdist the workers share one build: the first builds it (under a lock), the rest read it.
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else tmp_path_factory.getbasetemp()
    root = shared / "news"
    with (shared / "news.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "built").exists():
            shutil.rmtree(root, ignore_errors=True)  # a worker that failed half-way
            _build_news_index(root, e5)
            (root / "built").touch()
    return root / "index"


def _build_news_index(root: Path, e5) -> None:
    archive = root / "archive"
    archive.mkdir(parents=True)
    # JSONL keeps the reader's ids (the corpus line numbers) for the chosen articles.
    with (archive / "10kgnad.jsonl").open("w", encoding="utf-8") as out:
        for article in news_articles():
            out.write(json.dumps({"id": article.id, "title": article.title, "text": article.text}, ensure_ascii=False) + "\n")
    for seed in sample_archive().iterdir():
        if seed.suffix == ".txt":
            shutil.copy(seed, archive / seed.name)
    started = time.perf_counter()
    report = build_index(archive, root / "index", embedder=e5)
    print(f"\nnews_index: {report.articles_indexed} articles, {report.chunks_total} chunks in {time.perf_counter() - started:.1f}s")
    assert report.articles_indexed == NEWS_COUNT + 1


@pytest.fixture(scope="session")
def news_retriever(news_index: Path, e5):
    from qabot.store import Store

    retriever = Retriever(Store.open(news_index, model=e5.name), e5)
    yield retriever
    retriever.close()


# Order: the longest modules first (the quality gate, the modules sharing the news index, then the
# others over a minute; serial seconds on 2 cores, 2026-12-02: 340, ~200, 172, 99, 76, 71, 62), so
# under `make test` (pytest-xdist, `--dist loadfile --no-loadscope-reorder`: a module's tests stay
# on one worker, units handed out in this order) no long one runs alone at the end. Without xdist
# this is only the order.
FIRST = ("test_quality_gate", "news", "test_scripts", "test_kill", "test_embedding", "test_bad_corpus", "test_bot")
NEWS_FIXTURES = {"news_index", "news_retriever"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def module(item: pytest.Item) -> str:
        return Path(item.nodeid.split("::")[0]).stem

    news = {module(item) for item in items if NEWS_FIXTURES & set(getattr(item, "fixturenames", ()))}
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get("news" if module(item) in news else module(item), len(rank)))  # stable


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the tables tests recorded with ``record_property("summary", text)`` (the quality gate's):
    a worker's own output never reaches the terminal under xdist, its reports' properties do."""
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        for name, text in report.user_properties:
            if name == "summary":
                terminalreporter.write_line(str(text))
