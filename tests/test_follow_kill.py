"""SIGKILL (and SIGTERM) a real `qabot follow` subprocess at many points of a round.

The subprocess is the real CLI with the fast HashEmbedder as its model (tests/fake_model_cli.py),
following a feed of 40 German pages served by tests/fake_site.py on 127.0.0.1, into an archive
and an index. Kills land after a chosen number of page requests (the server counts them), and
during the index update. After each kill a second run completes, and then: every page is in the
archive exactly once (one WARC response record per URL: nothing lost, nothing duplicated), no
part file is left, the index passes `qabot check` and holds the 40 articles.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from qabot.store import Store
from qabot.store.backends import check_index

from .fake_site import FakeSite, article
from .stop_at import spec

FAKE_MODEL_CLI = Path(__file__).with_name("fake_model_cli.py")
PAGES = 40
KILL_AFTER = [0, 1, 6, 17, 29, 39, "index"]  # page requests served before the kill ("index": after the last page)


@pytest.fixture(scope="module")
def site():
    with FakeSite() as fake:
        items = {f"/meldungen/{i}.html": article(i) for i in range(PAGES)}
        for path, item in items.items():
            fake.add_page(path, item, delay=0.02)
        fake.add_feed("/feed.xml", list(items), items=items)
        yield fake


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(QABOT_CACHE_DIR=str(tmp / "cache"), QABOT_FOLLOW_CONTACT="ops@example.org", QABOT_CHUNK_TOKENS="40",
               QABOT_CHECKPOINT_SECONDS="0", PYTHONUNBUFFERED="1")
    return env


def _start(site: FakeSite, tmp: Path, *extra: str, stop: str | None = None) -> subprocess.Popen:
    command = [sys.executable, str(FAKE_MODEL_CLI), "follow", site.url("/feed.xml"), "--archive", str(tmp / "archive"),
               "--index", str(tmp / "index"), "--delay", "0", *extra]
    env = _env(tmp) | ({"FAKE_STOP_AT": stop} if stop else {})
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _page_hits(site: FakeSite, since: int) -> int:
    return sum(p.startswith("/meldungen/") for p in site.paths_requested()[since:])


def _captures(archive: Path) -> Counter[str]:
    """Response records per URL over every WARC file of the archive (read strictly: a torn record fails)."""
    found: Counter[str] = Counter()
    for path in sorted((archive / "follow").glob("*.warc.gz")):
        data = gzip.decompress(path.read_bytes())  # the whole file must be sound gzip
        for record in ArchiveIterator(io.BytesIO(data)):
            if record.rec_type == "response":
                found[record.rec_headers.get_header("WARC-Target-URI")] += 1
    return found


def _assert_complete(site: FakeSite, tmp: Path) -> None:
    captures = _captures(tmp / "archive")
    assert set(captures) == {site.url(f"/meldungen/{i}.html") for i in range(PAGES)}
    assert set(captures.values()) == {1}, [u for u, n in captures.items() if n > 1]
    assert not list((tmp / "archive").rglob("*.part"))
    assert check_index(tmp / "index").ok
    with Store.open(tmp / "index") as store:
        assert store.counts()["articles"] == PAGES


@pytest.mark.parametrize("point", KILL_AFTER, ids=str)
def test_sigkill_at_any_point_loses_and_duplicates_nothing(site, tmp_path, point):
    since = len(site.requests)
    if point == "index":  # into the index update: the process kills itself after its first batch (tests/stop_at.py)
        proc = _start(site, tmp_path, "--once", stop=spec("add", "after", 1))
    else:
        proc = _start(site, tmp_path, "--once")
        deadline = time.monotonic() + 60
        while _page_hits(site, since) < point and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"finished before the kill: {out[-1500:]}"

    rerun = _start(site, tmp_path, "--once", "--json")
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out[-3000:]
    _assert_complete(site, tmp_path)
    # at most the page in flight was fetched twice
    fetched = Counter(p for p in site.paths_requested()[since:] if p.startswith("/meldungen/"))
    assert sum(n - 1 for n in fetched.values()) <= 1, fetched.most_common(3)


def test_sigterm_mid_round_publishes_what_was_archived_and_exits_0(site, tmp_path):
    since = len(site.requests)
    proc = _start(site, tmp_path, "--every", "1h")
    while _page_hits(site, since) < 10 and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out[-2000:]
    assert "stopping" in out and "(stopped)" in out and "Traceback" not in out
    archived = _captures(tmp_path / "archive")
    assert 9 <= len(archived) < PAGES and not list((tmp_path / "archive").rglob("*.part"))
    rerun = _start(site, tmp_path, "--once")
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out[-3000:]
    _assert_complete(site, tmp_path)


def test_the_loop_waits_between_rounds_and_stops_on_sigterm(site, tmp_path):
    proc = _start(site, tmp_path, "--every", "1s")
    deadline = time.monotonic() + 60
    lines: list[str] = []
    assert proc.stdout is not None
    while sum("follow round" in line for line in lines) < 3 and time.monotonic() < deadline:
        lines.append(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    rounds = [line for line in lines if "follow round" in line]
    assert len(rounds) == 3 and "40 new" in rounds[0] and "1 unchanged, 0 failed" in rounds[1], rounds
    _assert_complete(site, tmp_path)
