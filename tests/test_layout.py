"""The package's architecture, checked: imports point down only, modules stay small.

Layers, top to bottom (a module may import its own layer's package and any layer below)::

    frontends, evaluation        cli, terminal chat, Telegram bot; the dev-set evaluation (scripts/evaluate.py)
    indexer, answering, follow,  the two pipelines, the follower (which archives; the CLI indexes),
    training                     and the reranker's training data (scripts/train_reranker.py)
    ingest, models, store        files -> chunks; the model seams; the index folder
    config, documents, lexicon   the shared vocabulary
    errors, links                the exception tree; text-fragment links (pure)

Within one layer only the same subpackage may be imported (answering does not import the
indexer; store does not import ingest), so each part can be read and tested on its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "qabot"

LAYERS = {
    "errors": 0,
    # pure (imports nothing of qabot): shared vocabulary that documents itself uses (Answer.to_dict)
    "links": 0, "locations": 0,
    "config": 1, "documents": 1, "lexicon": 1, "data": 1,
    "ingest": 2, "models": 2, "store": 2,
    "indexer": 3, "answering": 3, "follow": 3, "training": 3,
    "frontends": 4,
    # the dev-set evaluation: imports the pipelines like a front end; only scripts/ and tests/ import it
    "evaluation": 4,
}
MAX_LINES = 420  # "under ~400 lines": a little slack, but no 4,300-line cli.py


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _part(path: Path) -> str | None:
    """The top-level part of the package a file belongs to (None for qabot/__init__ and __main__)."""
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return None if rel.stem in {"__init__", "__main__"} else rel.stem
    return rel.parts[0]


def _imported_parts(path: Path) -> list[tuple[int, str]]:
    """(line, part) for every import of another part of qabot in ``path``, nested imports included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                pytest.fail(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: relative import; use absolute qabot.… imports")
            if node.module == "qabot":
                names = [f"qabot.{alias.name}" for alias in node.names]
            elif node.module and node.module.startswith("qabot."):
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("qabot.")]
        for name in names:
            found.append((node.lineno, name.split(".")[1]))
    return found


def test_every_part_has_a_layer() -> None:
    parts = {_part(p) for p in _modules()} - {None}
    assert parts <= set(LAYERS), f"new top-level modules need a layer in tests/test_layout.py: {parts - set(LAYERS)}"


def test_imports_point_down_only() -> None:
    wrong = []
    for path in _modules():
        part = _part(path)
        if part is None:  # the public API and python -m qabot sit on top of everything
            continue
        for line, imported in _imported_parts(path):
            if imported not in LAYERS:
                continue  # "from qabot import Settings" style names are checked by the public API test
            if imported == part:
                continue
            if LAYERS[imported] >= LAYERS[part]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {part} (layer {LAYERS[part]}) imports {imported} (layer {LAYERS[imported]})")
    assert not wrong, "imports must point down only:\n" + "\n".join(wrong)


def test_nothing_below_the_front_ends_imports_the_package_root() -> None:
    """`from qabot import X` inside the package would import everything (and upward)."""
    wrong = []
    for path in _modules():
        if _part(path) is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "qabot":
                for alias in node.names:
                    if alias.name not in LAYERS:
                        wrong.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: from qabot import {alias.name}")
            if isinstance(node, ast.Import) and any(a.name == "qabot" for a in node.names):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: import qabot")
    assert not wrong, "\n".join(wrong)


def test_modules_stay_small() -> None:
    big = {str(p.relative_to(PACKAGE.parent)): n for p in _modules() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"split these modules (over {MAX_LINES} lines): {big}"


def test_every_module_has_a_docstring() -> None:
    missing = [str(p.relative_to(PACKAGE.parent)) for p in _modules()
               if p.read_text(encoding="utf-8").strip() and ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert not missing, f"modules without a docstring: {missing}"


def _environment_reads(path: Path) -> list[str]:
    """Code (not docstrings) in ``path`` that reads the environment or .env."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in {("os", "environ"), ("os", "getenv"), ("Settings", "load")}:
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dotenv"):
            found.append(f"{node.lineno}: from {node.module} import ...")
    return found


def test_only_the_edges_read_the_environment() -> None:
    """Settings are read once, in config (from a mapping) and the front ends; nothing below
    reads os.environ, except where it mirrors a third-party library's own lookup."""
    allowed = {"config", "frontends"}
    mirrors = {"qabot/ingest/chunking.py"}  # tiktoken's own cache variables, to find its cached file
    mirrors |= {"qabot/evaluation/command.py"}  # an entry point (scripts/evaluate.py): Settings.load, as a front end does
    wrong = []
    for path in _modules():
        rel = str(path.relative_to(PACKAGE.parent))
        if _part(path) in allowed or rel in mirrors:
            continue
        wrong.extend(f"{rel}:{where}" for where in _environment_reads(path))
    assert not wrong, "\n".join(wrong)


# The store's own modules behind the backend seam: above the store, an index is reached through
# qabot.store.backends (a location -> its Backend) and typed with qabot.store.interface, so no module
# there knows (or asks) which backend holds it.
BEHIND_THE_SEAM = ("qabot.store.store", "qabot.store.folder", "qabot.store.folder_run", "qabot.store.generations",
                   "qabot.store.checks", "qabot.store.postgres")
BACKEND_CLASSES = {"Store", "PgStore", "FolderBackend", "PgBackend"}


def test_nothing_above_the_store_knows_which_backend_it_has() -> None:
    wrong = []
    for path in _modules():
        if _part(path) is None or LAYERS.get(_part(path), 0) <= LAYERS["store"]:
            continue  # the store itself, and what lies below it (parsing a location is not choosing a backend)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith(BEHIND_THE_SEAM):
                    wrong.append(f"{where}: from {node.module} import ...")
                elif node.module.startswith("qabot.store") and BACKEND_CLASSES & {a.name for a in node.names}:
                    wrong.append(f"{where}: imports a backend's class from {node.module}")
            elif isinstance(node, ast.Import) and any(a.name.startswith(BEHIND_THE_SEAM) for a in node.names):
                wrong.append(f"{where}: import {node.names[0].name}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
                  and len(node.args) == 2 and "PgUrl" in ast.dump(node.args[1])):
                wrong.append(f"{where}: isinstance(..., PgUrl) asks which backend holds an index")
    assert not wrong, "use qabot.store.backends.backend_for(location) and the Backend interface:\n" + "\n".join(wrong)
