"""qabot's own reranker: a LoRA adapter shipped in the package, merged into a CrossEncoder folder offline.

The adapter (``qabot/adapters/reranker/adapter.safetensors``, a few MB, trained by
``scripts/train_reranker.py``; its card is MODEL_CARD.md beside it) holds, for every adapted
linear layer of multilingual-e5-small, the low-rank pair ``{module}.lora_A`` (rank x in) and
``{module}.lora_B`` (out x rank), plus the whole pooler and one-logit head. ``reranker.json``
beside it gives the rank, alpha, the pair length, whether e5's prefixes are used, and the
adapter's sha256. Merging is pure arithmetic, ``W + alpha / rank * B @ A`` (:func:`merge`);
:func:`install_reranker` does it into ``cache/models/qabot-reranker`` (a sentence-transformers
CrossEncoder folder), checksummed, built beside the target and renamed into place.

``BUILTIN_RERANKER``   the name that selects it (QABOT_RERANKER's default)
``merge``              base weights + adapter -> merged weights (pure)
``install_reranker``   build the folder once (idempotent; ModelError naming the repair)
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from qabot.config import BUILTIN_RERANKER
from qabot.errors import ModelError
from qabot.models.provision import default_model_dir, install_model

logger = logging.getLogger(__name__)

ADAPTER_FILE = "adapter.safetensors"
CONFIG_FILE = "reranker.json"
CARD_FILE = "MODEL_CARD.md"
MANIFEST = "qabot-model.json"  # in the merged folder, written last
SETTINGS_FILE = "qabot-reranker.json"  # in the merged folder: prefixes and pair length for CrossEncoderReranker
FORMAT_VERSION = 1
# Every layer's attention (query, key, value, output) and feed-forward (intermediate, output) matrices.
LORA_TARGETS = (r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
                r"|intermediate\.dense|output\.dense)")
REPAIR = ("reinstall qabot (`pip install --force-reinstall .` in its checkout, or `git checkout qabot/adapters/reranker`), "
          "then run `qabot model install`")


def adapter_dir() -> Path:
    """Where the package keeps the adapter, its config and card (``qabot/adapters/reranker``)."""
    return Path(str(importlib.resources.files("qabot") / "adapters" / "reranker"))


def default_reranker_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "models" / BUILTIN_RERANKER


def adapter_from_peft(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """qabot's adapter tensors from a peft model's state dict: ``{module}.lora_A``/``lora_B`` and
    the head (``bert.pooler.dense.*``, ``classifier.*``) under their plain model names."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        name = key.removeprefix("base_model.model.")
        array = value.detach().float().cpu().numpy()
        if ".lora_A.default.weight" in name:
            out[name.replace(".lora_A.default.weight", ".lora_A")] = array
        elif ".lora_B.default.weight" in name:
            out[name.replace(".lora_B.default.weight", ".lora_B")] = array
        elif ".modules_to_save.default." in name:
            out[name.replace(".modules_to_save.default.", ".")] = array
    return out


def merge(base: Mapping[str, np.ndarray], adapter: Mapping[str, np.ndarray], *, scaling: float) -> dict[str, np.ndarray]:
    """``base`` with each adapted weight replaced by ``W + scaling * B @ A`` and the head's tensors
    taken from ``adapter``. Raises ValueError when the adapter names a weight ``base`` lacks or
    shapes disagree (an adapter for another model)."""
    merged = {k: np.asarray(v, dtype=np.float32) for k, v in base.items()}
    for name, value in adapter.items():
        if name.endswith(".lora_B"):
            continue
        if name.endswith(".lora_A"):
            module = name.removesuffix(".lora_A")
            weight = f"{module}.weight"
            b = adapter.get(f"{module}.lora_B")
            if weight not in merged or b is None:
                raise ValueError(f"the adapter adapts {module}, which the base model does not have")
            a, b = np.asarray(value, np.float32), np.asarray(b, np.float32)
            if a.ndim != 2 or b.ndim != 2 or b.shape[1] != a.shape[0] or (b.shape[0], a.shape[1]) != merged[weight].shape:
                raise ValueError(f"{module}: adapter gives {b.shape} x {a.shape}, the base model has {merged[weight].shape}")
            merged[weight] = merged[weight] + scaling * (b @ a)
        else:
            if name in merged and merged[name].shape != value.shape:
                raise ValueError(f"{name}: adapter gives {value.shape}, the model has {merged[name].shape}")
            merged[name] = np.asarray(value, dtype=np.float32)
    return merged


def read_adapter(folder: Path | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(config, tensors) of the shipped adapter, its sha256 checked; ModelError naming the repair."""
    from safetensors.numpy import load

    folder = folder if folder is not None else adapter_dir()
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        raw = (folder / ADAPTER_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        raise ModelError(f"the built-in reranker's adapter cannot be read ({exc}); {REPAIR}") from exc
    if not isinstance(config, dict) or hashlib.sha256(raw).hexdigest() != config.get("adapter_sha256"):
        raise ModelError(f"the built-in reranker's adapter {folder / ADAPTER_FILE} is damaged (its sha256 does not match "
                         f"{CONFIG_FILE}); {REPAIR}")
    try:
        tensors = load(raw)
    except Exception as exc:
        raise ModelError(f"the built-in reranker's adapter {folder / ADAPTER_FILE} cannot be parsed ({exc}); {REPAIR}") from exc
    return config, tensors


def is_reranker_installed(folder: Path, *, adapter_sha256: str) -> bool:
    """True when ``folder`` is a complete merge of the adapter with that sha256."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or manifest.get("adapter_sha256") != adapter_sha256:
        return False
    files = manifest.get("files", {})
    return bool(files) and all((folder / n).is_file() and (folder / n).stat().st_size == s for n, s in files.items())


def install_reranker(cache_dir: Path, *, force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """The built-in reranker's folder under ``cache_dir/models``, merged from multilingual-e5-small
    (built first when missing) and the shipped adapter; idempotent. ModelError naming the repair."""
    return build_reranker(default_model_dir(cache_dir), default_reranker_dir(cache_dir), force=force, log=log,
                          base_installer=install_model)


def build_reranker(base: Path, folder: Path, *, adapter: Path | None = None, force: bool = False,
                   log: Callable[[str], None] | None = None,
                   base_installer: Callable[[Path], Path] | None = None) -> Path:
    """Merge the e5 folder ``base`` with the adapter in ``adapter`` (default: the shipped one) into a
    CrossEncoder folder at ``folder``; a no-op when it holds that merge already. Built beside the
    target and renamed into place. ModelError (naming the repair) when the adapter is missing or
    damaged or the merge fails."""
    say = log or logger.info
    config, tensors = read_adapter(adapter)
    folder = Path(folder)
    if is_reranker_installed(folder, adapter_sha256=config["adapter_sha256"]) and not force:
        return folder
    started = time.monotonic()
    if base_installer is not None:
        base = base_installer(base)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.build-", dir=folder.parent))
    try:
        _write_merged(base, tmp, config, tensors, card=(adapter or adapter_dir()) / CARD_FILE)
        if is_reranker_installed(folder, adapter_sha256=config["adapter_sha256"]) and not force:
            return folder  # another process finished the same merge first: theirs is as good
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"could not build the built-in reranker at {folder}: {exc}; {REPAIR}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"installed {BUILTIN_RERANKER} (multilingual-e5-small + adapter {config['adapter_sha256'][:12]}) at {folder} "
        f"in {time.monotonic() - started:.1f}s")
    return folder


def _write_merged(base: Path, tmp: Path, config: Mapping[str, Any], tensors: Mapping[str, np.ndarray], *, card: Path) -> None:
    import torch

    from qabot.models.embedding import _quiet_weight_loading

    with _quiet_weight_loading():
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(str(base), num_labels=1, device="cpu", local_files_only=True,
                             max_length=int(config.get("max_length", 512)))
    state = {k: v.detach().float().numpy() for k, v in model.model.state_dict().items()}
    merged = merge(state, tensors, scaling=float(config["alpha"]) / float(config["rank"]))
    model.model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in merged.items()})
    model.save(str(tmp))
    settings = {"query_prefix": "query: " if config.get("prefixes") else "",
                "text_prefix": "passage: " if config.get("prefixes") else "",
                "max_length": int(config.get("max_length", 512))}
    (tmp / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    if card.is_file():
        shutil.copyfile(card, tmp / "README.md")
    files = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
    manifest = {"model": BUILTIN_RERANKER, "format": FORMAT_VERSION, "adapter_sha256": config["adapter_sha256"],
                "base": "multilingual-e5-small", "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for p in [tmp, *tmp.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def save_adapter(peft_model: Any, out: Path, *, rank: int, alpha: int, max_length: int, prefixes: bool,
                 targets: str = LORA_TARGETS) -> dict[str, Any]:
    """Write a trained peft model's adapter (float16) and ``reranker.json`` into ``out``; return the config."""
    return write_adapter(adapter_from_peft(peft_model.state_dict()), out, rank=rank, alpha=alpha,
                         max_length=max_length, prefixes=prefixes, targets=targets)


def write_adapter(tensors: Mapping[str, np.ndarray], out: Path, *, rank: int, alpha: int, max_length: int,
                  prefixes: bool, targets: str = LORA_TARGETS) -> dict[str, Any]:
    """Write adapter tensors (as float16) and ``reranker.json`` into ``out``; return the config."""
    from safetensors.numpy import save

    tensors = {k: np.asarray(v).astype(np.float16) for k, v in sorted(tensors.items())}
    raw = save(tensors, metadata={"format": "qabot-lora", "rank": str(rank), "alpha": str(alpha)})
    out.mkdir(parents=True, exist_ok=True)
    (out / ADAPTER_FILE).write_bytes(raw)
    config = {"base": "multilingual-e5-small", "rank": rank, "alpha": alpha, "max_length": max_length,
              "prefixes": prefixes, "targets": targets, "adapter_sha256": hashlib.sha256(raw).hexdigest()}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config
