"""``manifest.json``: what an index was built with, how big it is, and which generation is live.

The manifest is the commit point of every write: :func:`write_manifest` renames a new one into
place (see :mod:`qabot.store.files`), and readers open whatever generation it names. The file
names of an index folder are defined here too, so every module spells them alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from qabot.errors import StoreError
from qabot.store.files import atomic_write_bytes, fsync_path

# 2: sentence vectors stored with the chunks (an index of format 1 is upgraded by its next `qabot index`).
FORMAT_VERSION = 2
DB_NAME = "qabot.db"
FAISS_NAME = "vectors.faiss"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What an index was built with, and how big it is."""

    model: str
    dimension: int
    chunk_tokens: int
    chunk_overlap: int
    tokenizer: str = "cl100k_base"
    format_version: int = FORMAT_VERSION
    articles: int = 0
    chunks: int = 0
    vectors: int = 0
    sentences: int = 0
    created_at: str = ""
    updated_at: str = ""
    generation: str = ""  # sub-folder holding the data; "" = beside the manifest
    previous_generation: str = ""  # kept on disk for readers that opened it before the swap
    # file name -> SHA-256 of the generation's files as published (qabot.store.integrity); {} = not recorded
    checksums: dict[str, str] = field(default_factory=dict)

    def settings_differ(self, *, model: str, chunk_tokens: int, chunk_overlap: int) -> list[str]:
        """Human-readable differences between this manifest and the requested settings."""
        diffs = []
        if model != self.model:
            diffs.append(f"model {self.model!r} (requested {model!r})")
        if chunk_tokens != self.chunk_tokens:
            diffs.append(f"chunk_tokens {self.chunk_tokens} (requested {chunk_tokens})")
        if chunk_overlap != self.chunk_overlap:
            diffs.append(f"chunk_overlap {self.chunk_overlap} (requested {chunk_overlap})")
        return diffs


def now_iso() -> str:
    """The current UTC time as the manifest and the articles table store it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def is_index(folder: Path) -> bool:
    """True when ``folder`` holds a manifest (i.e. an index was built there)."""
    return (Path(folder) / MANIFEST_NAME).is_file()


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the index at ``folder``; StoreError, saying what to do, when there is none usable."""
    path = Path(folder) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"no index at {folder} (no {MANIFEST_NAME}); build one with `qabot index PATH --index {folder}`") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable manifest: {exc}") from None
    except RecursionError:
        raise StoreError(f"{path}: unreadable manifest: nested too deeply") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: unreadable manifest: a JSON {type(data).__name__}, not an object")
    known = {k: v for k, v in data.items() if k in Manifest.__dataclass_fields__}
    try:
        manifest = Manifest(**known)
    except TypeError as exc:
        raise StoreError(f"{path}: incomplete manifest: {exc}") from None
    if problems := _field_problems(manifest):
        raise StoreError(f"{path}: damaged manifest: {'; '.join(problems)}")
    if manifest.format_version > FORMAT_VERSION:
        raise StoreError(
            f"{path}: index format {manifest.format_version} is newer than this qabot understands ({FORMAT_VERSION}); upgrade qabot"
        )
    return manifest


_TYPES = {"model": str, "dimension": int, "chunk_tokens": int, "chunk_overlap": int, "tokenizer": str, "format_version": int,
          "articles": int, "chunks": int, "vectors": int, "sentences": int, "created_at": str, "updated_at": str,
          "generation": str, "previous_generation": str, "checksums": dict}
_GENERATION = re.compile(r"^(gen-\d{6,})?$")


def _field_problems(manifest: Manifest) -> list[str]:
    """What in a parsed manifest cannot be what qabot wrote (a damaged or hand-edited file)."""
    problems = []
    for name, kind in _TYPES.items():
        value = getattr(manifest, name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{name} is {value!r}, not {kind.__name__}")
        elif kind is int and value < 0:
            problems.append(f"{name} is negative ({value})")
    if isinstance(manifest.dimension, int) and manifest.dimension <= 0:
        problems.append(f"dimension is {manifest.dimension}")
    for name in ("generation", "previous_generation"):  # a folder name beside the manifest, nothing else
        value = getattr(manifest, name)
        if isinstance(value, str) and not _GENERATION.match(value):
            problems.append(f"{name} is {value!r}, not a generation folder name")
    if isinstance(manifest.checksums, dict) and not all(
        isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in manifest.checksums.items()
    ):
        problems.append("checksums are not SHA-256 digests")
    return problems


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Atomically replace ``folder/manifest.json``: the commit point of a generation."""
    atomic_write_bytes(Path(folder) / MANIFEST_NAME, json.dumps(asdict(manifest), indent=2).encode("utf-8"))
    fsync_path(Path(folder))


__all__ = [
    "DB_NAME", "FAISS_NAME", "FORMAT_VERSION", "MANIFEST_NAME", "Manifest", "is_index", "now_iso",
    "read_manifest", "write_manifest",
]


def same_model(a: str, b: str) -> bool:
    """Model names match, ignoring an ``intfloat/`` style owner prefix."""
    return a == b or a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]
