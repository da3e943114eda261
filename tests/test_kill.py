"""SIGKILL a real `qabot index` subprocess at many points across its run.

The subprocess is the real CLI with the HashEmbedder as its model (tests/fake_model_cli.py):
starting a dozen processes must not each pay for importing torch.

After every kill: the live index opens, passes `qabot check`, and holds exactly the old
state or exactly the new one (readers never see a mix); a re-run then completes and the
index equals a clean build of the same archive (no duplicated and no missing chunks).
A reader polls the index in this process during each killed run, too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qabot.store import Store
from qabot.store.checks import check_index

from .archives import snapshot, write_archive

KILL_POINTS = 12
# `qabot` with the HashEmbedder: a dozen processes cannot each pay for importing torch
FAKE_MODEL_CLI = Path(__file__).with_name("fake_model_cli.py")
OUTCOMES: dict[int, str] = {}  # kill point -> what the kill left: "old", "staged" (mid-run) or "new"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(
        QABOT_CHUNK_TOKENS="40", QABOT_BATCH_SIZE="1", QABOT_CHECKPOINT_SECONDS="0",
        QABOT_CACHE_DIR=str(tmp_path / "cache"), PYTHONUNBUFFERED="1",
        # ~ the time the HashEmbedder itself took per text before it cached words (most kills landed
        # mid-run then; without it 5 of 12 did in one CI run): kills need a run that is mostly embedding
        FAKE_MODEL_SECONDS_PER_TEXT="0.002",
    )
    return env


def _index(archive: Path, folder: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    command = [sys.executable, str(FAKE_MODEL_CLI), "--log-level", "INFO", "index", str(archive), "--index", str(folder), *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _run_to_end(archive: Path, folder: Path, env: dict[str, str], *extra: str) -> tuple[float, str]:
    started = time.perf_counter()
    proc = _index(archive, folder, env, *extra)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return time.perf_counter() - started, out


class _Reader(threading.Thread):
    """Opens the live index over and over; records the article counts it saw and any failure."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder, self.seen, self.errors = folder, set(), []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                with Store.open(self.folder) as store:
                    counts = store.counts()
                    self.seen.add((counts["articles"], counts["chunks"]))
            except Exception as exc:  # noqa: BLE001 - any failure to open is what this test looks for
                self.errors.append(repr(exc))
            time.sleep(0.005)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An old index, a bigger changed archive, the clean build of it, and how long a run takes."""
    tmp = tmp_path_factory.mktemp("kill")
    env = _env(tmp)
    old_archive = write_archive(tmp / "old.jsonl", range(80))
    new_archive = write_archive(tmp / "new.jsonl", range(15, 175), changed=frozenset(range(30, 45)))
    base = tmp / "base"
    _run_to_end(old_archive, base, env)
    reference = tmp / "reference"
    _run_to_end(new_archive, reference, env, "--prune")
    # how long an uninterrupted update takes, from the process start
    timing = tmp / "timing"
    shutil.copytree(base, timing)
    seconds, _ = _run_to_end(new_archive, timing, env, "--prune")
    assert snapshot(timing) == snapshot(reference)
    return {"tmp": tmp, "env": env, "archive": new_archive, "base": base, "seconds": seconds,
            "old": snapshot(base), "new": snapshot(reference)}


def _counts(state: dict) -> tuple[int, int]:
    return len(state["articles"]), len(state["chunks"])


@pytest.mark.parametrize("point", range(KILL_POINTS))
def test_sigkill_at_any_point_leaves_old_or_new_and_a_rerun_completes(scene, point):
    folder = scene["tmp"] / f"killed-{point}"
    shutil.copytree(scene["base"], folder)
    # spread the kill points over the whole run, from interpreter start-up to the swap
    delay = scene["seconds"] * (0.1 + 0.85 * point / (KILL_POINTS - 1))
    reader = _Reader(folder)
    reader.start()
    proc = _index(scene["archive"], folder, scene["env"], "--prune")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    reader.stop()

    report = check_index(folder)
    assert report.ok, (report.problems, out[-2000:])
    state = snapshot(folder)
    OUTCOMES[point] = ("staged" if (folder / "staging.json").exists() else "new" if state == scene["new"] else "old")
    assert state in (scene["old"], scene["new"]), f"a mix after a kill at {delay:.2f}s"
    assert not reader.errors, reader.errors[:3]
    assert reader.seen <= {_counts(scene["old"]), _counts(scene["new"])}, reader.seen

    _, out = _run_to_end(scene["archive"], folder, scene["env"], "--prune")
    assert snapshot(folder) == scene["new"], out[-2000:]
    assert check_index(folder).ok
    assert not (folder / "staging.json").exists()


def test_repeated_kills_resume_each_other_and_finish(scene):
    """Kill, kill, kill while progress accumulates in the staging generation; then finish."""
    folder = scene["tmp"] / "chain"
    shutil.copytree(scene["base"], folder)
    resumed = 0
    for _ in range(4):
        proc = _index(scene["archive"], folder, scene["env"], "--prune")
        time.sleep(scene["seconds"] * 0.45)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        resumed += "resuming the interrupted run" in out
        assert check_index(folder).ok
        assert snapshot(folder) in (scene["old"], scene["new"])
    _, out = _run_to_end(scene["archive"], folder, scene["env"], "--prune")
    assert snapshot(folder) == scene["new"]
    assert resumed >= 1, "no run resumed the staging generation of a killed one"


def test_the_kill_points_covered_the_run():
    """Most kills must land mid-run (a staging generation left behind), not all before or after."""
    if len(OUTCOMES) < KILL_POINTS:
        pytest.skip("runs only after all kill points")
    assert sum(o == "staged" for o in OUTCOMES.values()) >= KILL_POINTS // 2, OUTCOMES


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(scene):
    folder = scene["tmp"] / "interrupted"
    shutil.copytree(scene["base"], folder)
    proc = _index(scene["archive"], folder, {**scene["env"], "QABOT_CHECKPOINT_SECONDS": "3600"}, "--prune")
    deadline = time.monotonic() + 60
    while not (folder / "staging.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(scene["seconds"] * 0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out and "Traceback" not in out
    assert snapshot(folder) == scene["old"] and check_index(folder).ok
    _, out = _run_to_end(scene["archive"], folder, scene["env"], "--prune")
    assert "resuming the interrupted run" in out
    assert snapshot(folder) == scene["new"]
