"""The operator scripts run as an operator would run them (a subprocess, JSON out); the build
(Makefile, pyproject.toml) installs what the code imports and cleans only what it built."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from .tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = Path(__file__).parent / "data" / "archive"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-model")


@pytest.fixture
def env(tiny_model: Path, tmp_path: Path) -> dict[str, str]:
    """The caller's environment without QABOT_/TELEGRAM_ variables; the tiny real model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_") and k != "TELEGRAM_BOT_TOKEN"}
    env.update(QABOT_MODEL=str(tiny_model), QABOT_CACHE_DIR=str(tmp_path / "cache"))
    return env


def test_build_index_script_updates_incrementally(tmp_path, env):
    command = [sys.executable, str(ROOT / "scripts" / "build_index.py"), str(ARCHIVE), "--index", str(tmp_path / "ix"), "--json"]
    first = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["articles_indexed"] > 0 and summary["errors"]
    again = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    second = json.loads(again.stdout)
    assert (second["articles_indexed"], second["chunks_embedded"]) == (0, 0)
    assert second["articles_unchanged"] == summary["articles_indexed"]


def test_build_index_script_can_fail_on_problems(tmp_path, env):
    command = [sys.executable, str(ROOT / "scripts" / "build_index.py"), str(ARCHIVE / "bad"), "--index", str(tmp_path / "ix"), "--fail-on-problems"]
    proc = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "empty.txt" in proc.stderr


def test_build_index_script_reports_a_missing_archive_in_one_line(tmp_path, env):
    command = [sys.executable, str(ROOT / "scripts" / "build_index.py"), str(tmp_path / "nope"), "--index", str(tmp_path / "ix")]
    proc = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "nope" in proc.stderr


# -- the build ---------------------------------------------------------------------------------------------

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _imported_top_level(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_third_party_package_qabot_imports_is_declared():
    declared = _requirement_names(PYPROJECT["project"]["dependencies"])
    distributions = packages_distributions()
    missing = set()
    for module in _imported_top_level(ROOT / "qabot") - set(sys.stdlib_module_names) - {"qabot"}:
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not owners & declared:
            missing.add(f"{module} ({', '.join(sorted(owners))})")
    assert not missing, f"imported by qabot but not in pyproject.toml's dependencies: {sorted(missing)}"


def test_declared_minimum_versions_have_what_the_code_uses():
    """sqlite-utils 4 brought Migrations and Database.atomic(), which qabot.store uses."""
    spec = next(r for r in PYPROJECT["project"]["dependencies"] if r.startswith("sqlite-utils"))
    minimum = re.search(r">=\s*(\d+)", spec)
    assert minimum and int(minimum.group(1)) >= 4, spec


def test_the_lint_tools_make_test_runs_are_declared_and_configured():
    test_extra = _requirement_names(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert {"pytest", "ruff"} <= test_extra
    ruff = PYPROJECT["tool"]["ruff"]
    assert ruff["target-version"] == "py311" and ruff["lint"]["select"]
    recipe = _make("-n", "test")
    assert "ruff check qabot tests scripts" in recipe and recipe.index("ruff check") < recipe.index("pytest")


def _make(*args: str, **variables: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    overrides = [f"{k}={v}" for k, v in variables.items()]
    # -B: print every recipe as if nothing were built; -n: run none of them
    proc = subprocess.run(["make", "-B", "-n", *args, *overrides], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_installs_the_cpu_build_of_torch_and_a_gpu_user_can_override_it():
    recipe = _make("install")
    assert '"torch==2.13.0+cpu" --extra-index-url "https://download.pytorch.org/whl/cpu"' in recipe
    assert recipe.index("torch==") < recipe.index('-e ".[test]"')
    gpu = _make("install", TORCH="torch==2.13.0", TORCH_INDEX="https://download.pytorch.org/whl/cu128")
    assert '"torch==2.13.0" --extra-index-url "https://download.pytorch.org/whl/cu128"' in gpu


def test_make_clean_removes_what_make_built_and_never_an_index_or_the_model_cache():
    recipe = _make("clean")
    assert ".venv" in recipe
    assert "index" not in recipe.replace("--index", ""), recipe
    assert ".cache" not in recipe and "qabot/models" not in recipe, recipe
