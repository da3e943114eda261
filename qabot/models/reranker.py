"""The reranker seam: a sentence-transformers CrossEncoder that scores (question, text) pairs.

``Reranker``             the protocol the Retriever uses: ``name`` and ``score``
``CrossEncoderReranker`` a CrossEncoder id or folder, batched, bf16 where the embedder would use it
``load_reranker``        a model name -> a CrossEncoderReranker (raises ModelError)
``load_builtin_reranker`` qabot's own (``qabot-reranker``, the default): LoRA-trained here, merged on first use
``reranker_for``         the one from settings, loaded once per process; None when unset or broken

Scores are the model's own activation (a sigmoid for one-logit models such as
BAAI/bge-reranker-v2-m3 or cross-encoder/mmarco-mMiniLMv2-L12-H384-v1): 0-1, higher is more
relevant. Their scale is the model's own, not the bi-encoder's cosine: see
:mod:`qabot.answering.reranker_blend` for how they are blended, and why abstention stays with the
bi-encoder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from qabot.errors import ModelError
from qabot.models.embedding import _quiet_weight_loading
from qabot.models.optional import Deadline, batched, load_once, resolve
from qabot.models.provision import default_model_dir, is_installed
from qabot.models.reranker_build import BUILTIN_RERANKER, SETTINGS_FILE, install_reranker, read_adapter

if TYPE_CHECKING:
    from qabot.config import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 16
MAX_LENGTH = 512  # tokens per (question, text) pair; longer texts are cut (passages are ~200)


@runtime_checkable
class Reranker(Protocol):
    """What the Retriever needs from a reranker."""

    name: str

    def score(self, question: str, texts: Sequence[str], *, deadline: Deadline | None = None) -> np.ndarray:
        """One relevance score per text, float32, in input order."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` (a local folder, or a Hub id from the cache or the network)."""

    def __init__(
        self, model: str | Path, *, device: str = "cpu", precision: str = "fp32", batch_size: int = BATCH_SIZE,
        max_length: int = MAX_LENGTH,
    ) -> None:
        self.precision = precision
        self.device = device
        self.batch_size = batch_size
        local = Path(model).expanduser()
        # qabot's own reranker says how it was trained: e5's prefixes or none, and its pair length
        own = _own_settings(local) if local.is_dir() else {}
        self.query_prefix, self.text_prefix = str(own.get("query_prefix", "")), str(own.get("text_prefix", ""))
        self._model = _load_cross_encoder(model, device=device, max_length=int(own.get("max_length", max_length)))
        if precision == "bf16":
            import torch

            self._model.to(torch.bfloat16)
        self.name = local.name if local.is_dir() else str(model)

    def score(self, question: str, texts: Sequence[str], *, deadline: Deadline | None = None) -> np.ndarray:
        """Scores for (question, text) pairs, in batches of ``batch_size``, longest first (less
        padding per batch); the budget is checked before each batch (SlowModelError)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros(len(texts), dtype=np.float32)
        for batch in batched(order, self.batch_size):
            if deadline is not None:
                deadline.check(f"reranker {self.name}")
            scores = self._model.predict(
                [(self.query_prefix + question, self.text_prefix + texts[i]) for i in batch], batch_size=len(batch), show_progress_bar=False,
                convert_to_tensor=True,
            )
            out[list(batch)] = scores.float().reshape(len(batch), -1)[:, 0].cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"CrossEncoderReranker(name={self.name!r}, device={self.device!r}, precision={self.precision!r})"


def load_reranker(model: str, *, device: str = "cpu", precision: str = "fp32") -> CrossEncoderReranker:
    """A CrossEncoderReranker for ``model``; ModelError with a one-line reason when it cannot be loaded."""
    return CrossEncoderReranker(model, device=device, precision=precision)


def reranker_for(settings: Settings) -> CrossEncoderReranker | None:
    """The reranker ``settings`` name (QABOT_RERANKER, on QABOT_RERANKER_DEVICE, else QABOT_DEVICE),
    loaded once per process; None when unset, or when it cannot be loaded (logged once)."""
    if not settings.reranker:
        return None
    device, precision = resolve(settings.reranker_device, settings.device, settings.precision)
    model = settings.reranker
    if model == BUILTIN_RERANKER:  # qabot's own: merged from the shipped adapter on first use
        cache = settings.model_cache_dir
        return load_once("reranker", ("reranker", model, str(cache), device, precision),
                         lambda: load_builtin_reranker(cache, device=device, precision=precision))
    return load_once("reranker", ("reranker", model, device, precision),
                     lambda: load_reranker(model, device=device, precision=precision))


def load_builtin_reranker(cache_dir: Path, *, device: str = "cpu", precision: str = "fp32") -> CrossEncoderReranker:
    """qabot's own reranker (see :mod:`qabot.models.reranker_build`), its folder merged under
    ``cache_dir`` first when missing or from another adapter; ModelError naming the repair."""
    read_adapter()  # a damaged adapter is named first: it is what `qabot model install` cannot mend
    if not is_installed(default_model_dir(cache_dir)):  # merged from e5: without it, `qabot model install` first
        raise ModelError(f"{BUILTIN_RERANKER} needs multilingual-e5-small in {cache_dir}: run `qabot model install` "
                         "(or set QABOT_RERANKER= to answer without a reranker)")
    reranker = CrossEncoderReranker(install_reranker(cache_dir), device=device, precision=precision)
    reranker.name = BUILTIN_RERANKER
    return reranker


def _own_settings(folder: Path) -> dict[str, Any]:
    """The prefixes and pair length a qabot-trained folder records (``qabot-reranker.json``); {} for others."""
    try:
        found = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _load_cross_encoder(model: str | Path, *, device: str, max_length: int) -> Any:
    """Load a CrossEncoder without touching the network when it is on disk."""
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as exc:
        raise ModelError(f"sentence-transformers is not installed ({exc})") from exc
    local = Path(model).expanduser()
    if local.is_dir():
        attempts = [{"local_files_only": True}]
    elif str(model).startswith((".", "/", "~")) or local.exists():
        raise ModelError(f"cannot load reranker {str(model)!r}: no such folder")
    else:  # a Hub id: the local HF cache first, then a download
        attempts = [{"local_files_only": True}, {"local_files_only": False}]
    error: Exception | None = None
    with _quiet_weight_loading():
        for kwargs in attempts:
            try:
                return CrossEncoder(str(local if local.is_dir() else model), device=device, max_length=max_length, **kwargs)
            except Exception as exc:  # noqa: BLE001 - ST/transformers/hub raise many types
                error = exc
    reason = " ".join(str(error).split())[:300]
    raise ModelError(f"cannot load reranker {str(model)!r}: {reason} (a sentence-transformers CrossEncoder id or folder)") from error
