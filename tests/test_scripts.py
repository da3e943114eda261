"""The operator scripts run as an operator would run them (a subprocess, JSON out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = Path(__file__).parent / "data" / "archive"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_") and k != "TELEGRAM_BOT_TOKEN"}
    env["QABOT_MODEL"] = "hash-test"
    return env


def test_build_index_script_updates_incrementally(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "build_index.py"), str(ARCHIVE), "--index", str(tmp_path / "ix"), "--json"]
    first = subprocess.run(command, check=False, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["articles_indexed"] > 0 and summary["errors"]
    again = subprocess.run(command, check=False, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120)
    second = json.loads(again.stdout)
    assert (second["articles_indexed"], second["chunks_embedded"]) == (0, 0)
    assert second["articles_unchanged"] == summary["articles_indexed"]


def test_build_index_script_can_fail_on_problems(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "build_index.py"), str(ARCHIVE / "bad"), "--index", str(tmp_path / "ix"), "--fail-on-problems"]
    proc = subprocess.run(command, check=False, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "empty.txt" in proc.stderr


def test_build_index_script_reports_a_missing_archive_in_one_line(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "build_index.py"), str(tmp_path / "nope"), "--index", str(tmp_path / "ix")]
    proc = subprocess.run(command, check=False, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "nope" in proc.stderr
