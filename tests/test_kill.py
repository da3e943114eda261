"""SIGKILL a real `qabot index` subprocess at every named step of its run.

The subprocess is the real CLI with the HashEmbedder as its model (tests/fake_model_cli.py):
starting a dozen processes must not each pay for importing torch. It stops itself exactly at
the step a test names (tests/stop_at.py: before or after the N-th staging, batch, checkpoint,
prune, commit or clean-up), so every kill lands where it should on any machine.

After every kill: the live index opens, passes `qabot check`, and holds exactly the old
state or exactly the new one, the one the step says (readers never see a mix); a re-run then
completes and the index equals a clean build of the same archive (no duplicated and no missing
chunks). A reader polls the index in this process during each killed run, too.
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
from qabot.store.backends import check_index

from .archives import snapshot, write_archive
from .stop_at import spec

# `qabot` with the HashEmbedder: a dozen processes cannot each pay for importing torch
FAKE_MODEL_CLI = Path(__file__).with_name("fake_model_cli.py")
# (step, before/after, which call) -> what a kill there leaves: the old index with nothing staged,
# the old index with a staging generation to resume ("staged"), or the new index
KILL_POINTS = [
    (("begin", "before", 1), "old"),
    (("begin", "after", 1), "staged"),
    (("add", "after", 1), "staged"),
    (("checkpoint", "after", 2), "staged"),
    (("add", "before", 5), "staged"),
    (("add", "after", 9), "staged"),
    (("delete", "after", 1), "staged"),
    (("commit", "before", 1), "staged"),
    (("commit", "after", 1), "new"),
    (("cleanup", "before", 1), "new"),
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(
        QABOT_CHUNK_TOKENS="40", QABOT_BATCH_SIZE="1", QABOT_CHECKPOINT_SECONDS="0",
        QABOT_CACHE_DIR=str(tmp_path / "cache"), PYTHONUNBUFFERED="1",
    )
    return env


def _index(archive: Path, folder: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    command = [sys.executable, str(FAKE_MODEL_CLI), "--log-level", "INFO", "index", str(archive), "--index", str(folder), *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _run_to_end(archive: Path, folder: Path, env: dict[str, str], *extra: str) -> str:
    proc = _index(archive, folder, env, *extra)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def _stopped(archive: Path, folder: Path, env: dict[str, str], stop: str, *extra: str) -> tuple[int, str]:
    """Run `qabot index` until it stops itself at ``stop`` (a FAKE_STOP_AT value); its exit status and output."""
    proc = _index(archive, folder, {**env, "FAKE_STOP_AT": stop}, *extra)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


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
    """An old index, a bigger changed archive, and the clean build of it."""
    tmp = tmp_path_factory.mktemp("kill")
    env = _env(tmp)
    old_archive = write_archive(tmp / "old.jsonl", range(80))
    new_archive = write_archive(tmp / "new.jsonl", range(15, 175), changed=frozenset(range(30, 45)))
    base = tmp / "base"
    _run_to_end(old_archive, base, env)
    reference = tmp / "reference"
    _run_to_end(new_archive, reference, env, "--prune")
    # an uninterrupted update gives the clean build, in more than 9 batches (the last kill point)
    update = tmp / "update"
    shutil.copytree(base, update)
    out = _run_to_end(new_archive, update, env, "--prune")
    assert snapshot(update) == snapshot(reference), out[-2000:]
    return {"tmp": tmp, "env": env, "archive": new_archive, "base": base, "old": snapshot(base), "new": snapshot(reference)}


def _counts(state: dict) -> tuple[int, int]:
    return len(state["articles"]), len(state["chunks"])


@pytest.mark.parametrize(("point", "outcome"), KILL_POINTS, ids=["-".join(map(str, p)) for p, _ in KILL_POINTS])
def test_sigkill_at_every_step_leaves_old_or_new_and_a_rerun_completes(scene, point, outcome):
    folder = scene["tmp"] / "killed-{}-{}-{}".format(*point)
    shutil.copytree(scene["base"], folder)
    reader = _Reader(folder)
    reader.start()
    status, out = _stopped(scene["archive"], folder, scene["env"], spec(*point), "--prune")
    reader.stop()
    assert status == -signal.SIGKILL, f"not killed at {point}: {out[-2000:]}"

    report = check_index(folder)
    assert report.ok, (report.problems, out[-2000:])
    state = snapshot(folder)
    staged = (folder / "staging.json").exists()
    assert state == scene["new" if outcome == "new" else "old"], f"not the {outcome} index after a kill at {point}"
    assert staged == (outcome == "staged") or (outcome == "new" and point[0] == "commit"), (point, staged)
    assert not reader.errors, reader.errors[:3]
    assert reader.seen <= {_counts(scene["old"]), _counts(scene["new"])}, reader.seen

    out = _run_to_end(scene["archive"], folder, scene["env"], "--prune")
    assert ("resuming the interrupted run" in out) == (outcome == "staged"), out[-2000:]
    assert snapshot(folder) == scene["new"], out[-2000:]
    assert check_index(folder).ok
    assert not (folder / "staging.json").exists()


def test_repeated_kills_resume_each_other_and_finish(scene):
    """Kill, kill, kill while progress accumulates in the staging generation; then finish."""
    folder = scene["tmp"] / "chain"
    shutil.copytree(scene["base"], folder)
    resumed = 0
    for _ in range(4):
        status, out = _stopped(scene["archive"], folder, scene["env"], spec("add", "after", 3), "--prune")
        assert status == -signal.SIGKILL, out[-2000:]
        resumed += "resuming the interrupted run" in out
        assert check_index(folder).ok
        assert snapshot(folder) == scene["old"]
    out = _run_to_end(scene["archive"], folder, scene["env"], "--prune")
    assert snapshot(folder) == scene["new"]
    assert resumed == 3 and "resuming the interrupted run" in out, "each run after the first resumes the one before"


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(scene):
    folder = scene["tmp"] / "interrupted"
    shutil.copytree(scene["base"], folder)
    env = {**scene["env"], "QABOT_CHECKPOINT_SECONDS": "3600"}
    status, out = _stopped(scene["archive"], folder, env, spec("add", "after", 3, "INT"), "--prune")
    assert status == 130, out
    assert "run the same command again to resume" in out and "Traceback" not in out
    assert snapshot(folder) == scene["old"] and check_index(folder).ok
    out = _run_to_end(scene["archive"], folder, scene["env"], "--prune")
    assert "resuming the interrupted run" in out
    assert snapshot(folder) == scene["new"]
