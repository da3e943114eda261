"""Embedders: text in, L2-normalised float32 vectors out.

``Embedder``                  the protocol the indexer and the search use
``SentenceTransformerEmbedder`` a sentence-transformers model with query/passage prompts
``load_embedder``             a model name -> an Embedder (installs the default model offline)

The text a model sees is explicit: ``query_prompt + text`` for questions and
``passage_prompt + text`` for indexed chunks (e5 models need ``query: ``/``passage: ``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from qabot.errors import ModelError
from qabot.models.allocator import release_free_memory
from qabot.models.precision import _transformer_in_bf16, bf16_supported, resolve_precision
from qabot.models.provision import (
    DEFAULT_MODEL,
    default_model_dir,
    install_model,
    is_installed,
)

if TYPE_CHECKING:
    from qabot.config import Settings

logger = logging.getLogger(__name__)

# The name of the tests' fake embedder (tests/fakes.py). load_embedder refuses it: settings
# (QABOT_MODEL, --model) reach real models only; tests construct the fake themselves.
HASH_MODEL = "hash-test"
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"intfloat/{DEFAULT_MODEL}"}
SLICE_BATCHES = 16  # batches per encode call; freed memory goes back to the system between calls


@runtime_checkable
class Embedder(Protocol):
    """What the indexer and the search need from an embedding model."""

    name: str  # recorded in the index manifest, e.g. "multilingual-e5-small"
    dimension: int
    max_seq_length: int  # in the model's own tokens

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dimension), L2-normalised: one row per question."""
        ...

    def embed_passages(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """float32 (n, dimension), L2-normalised: one row per passage."""
        ...

    def count_tokens(self, text: str) -> int:
        """Model tokens of ``text`` encoded as a passage (prompt and special tokens included)."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model; questions and passages get their own prompt.

    ``model`` is a local folder or a Hugging Face model id (tried from the local cache
    first, so an already-downloaded model works offline). Torch runs on ``device``.
    ``precision`` is one of :data:`~qabot.models.precision.PRECISIONS`; :attr:`precision` says what actually runs
    ("fp32" or "bf16", see :func:`resolve_precision`). Queries and passages both use it.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        name: str | None = None,
        query_prompt: str = "query: ",
        passage_prompt: str = "passage: ",
        device: str = "cpu",
        precision: str = "auto",
    ) -> None:
        self.precision = resolve_precision(precision, bf16_ok=bf16_supported(device))
        self._model = _load_sentence_transformer(model, device=device)
        if self.precision == "bf16":
            _transformer_in_bf16(self._model)
        self.name = name or (Path(model).name if Path(model).is_dir() else str(model))
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension  # renamed in sentence-transformers 6
        dimension = get_dim()
        if not dimension:
            raise ModelError(f"embedding model {model}: cannot tell its embedding dimension")
        self.dimension = int(dimension)
        self.max_seq_length = int(self._model.max_seq_length or 512)
        # A tokenizer of its own for counting: the indexer counts tokens in its chunking thread
        # while encode() runs, and the shared one changes its padding/truncation state per call.
        self._counter: Any = _independent_tokenizer(self._model.tokenizer)

    @property
    def sentence_transformer(self) -> Any:
        """The underlying ``SentenceTransformer`` (in :attr:`precision`), for benchmarks."""
        return self._model

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode ``query_prompt + text`` for each text; float32 (n, dim), L2-normalised."""
        return self._encode([self.query_prompt + t for t in texts], batch_size=32, progress=False)

    def embed_passages(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Encode ``passage_prompt + text`` for each text, in batches; float32 (n, dim)."""
        return self._encode(
            [self.passage_prompt + t for t in texts], batch_size=batch_size, progress=show_progress
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``passage_prompt + text`` with <s> and </s>, not truncated."""
        # verbose=False: counting long texts is the point, not a mistake worth a warning
        return len(self._counter.encode(self.passage_prompt + text, add_special_tokens=True).ids)

    def _encode(self, texts: list[str], *, batch_size: int, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Longest first, as sentence-transformers batches (less padding), in slices of whole
        # batches with the freed memory handed back between them: one encode of the indexer's
        # ~5k texts otherwise grows the heap by holes torch leaves (qabot.models.allocator).
        order = np.argsort([-len(t) for t in texts], kind="stable")
        step = batch_size * SLICE_BATCHES
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit="text")
        for lo in range(0, len(texts), step):
            part = order[lo : lo + step]
            # the prompt is already in the text, and prompt="" stops a model's
            # default_prompt_name from adding a second one
            vectors[part] = self._model.encode(
                [texts[i] for i in part],
                prompt="",
                batch_size=batch_size,
                show_progress_bar=False,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
            release_free_memory()
            if bar is not None:
                bar.update(len(part))
        if bar is not None:
            bar.close()
        return vectors

    def __repr__(self) -> str:
        return (f"SentenceTransformerEmbedder(name={self.name!r}, dimension={self.dimension}, "
                f"precision={self.precision!r})")


def load_embedder(
    model: str,
    *,
    cache_dir: Path,
    query_prompt: str | None = None,
    passage_prompt: str | None = None,
    device: str = "cpu",
    precision: str = "auto",
) -> Embedder:
    """An Embedder for ``model``.

    ``"multilingual-e5-small"`` (or ``"intfloat/multilingual-e5-small"``): the folder built
    offline under ``cache_dir/models``, installed first if missing. Anything else: a
    sentence-transformers model id or local folder. ``"hash-test"``, the name of the tests'
    fake embedder (tests/fakes.py), is refused: tests construct that one directly.
    Prompts default to ``"query: "``/``"passage: "`` for e5 models, else ``""``.
    ``precision``: "auto" (bf16 where the hardware has it, else fp32), "fp32" or "bf16".
    Raises ModelError with a one-line reason when the model cannot be had.
    """
    if model.strip() == HASH_MODEL:
        raise ModelError(f"{HASH_MODEL!r} is the test fake HashEmbedder, not a model: set a real model "
                         f"(default {DEFAULT_MODEL!r}, or a sentence-transformers id or folder)")
    default_qp, default_pp = default_prompts(model)
    qp = query_prompt if query_prompt is not None else default_qp
    pp = passage_prompt if passage_prompt is not None else default_pp
    if model in _DEFAULT_ALIASES:
        folder = default_model_dir(Path(cache_dir))
        if not is_installed(folder):
            logger.info("model %s is not installed in %s: installing it (offline)", model, folder)
            install_model(folder)
        return SentenceTransformerEmbedder(
            folder, name=DEFAULT_MODEL, query_prompt=qp, passage_prompt=pp, device=device,
            precision=precision,
        )
    return SentenceTransformerEmbedder(
        model, query_prompt=qp, passage_prompt=pp, device=device, precision=precision
    )


def _independent_tokenizer(tokenizer: Any) -> Any:
    """A separate Rust ``tokenizers.Tokenizer`` with the same vocabulary and rules, no padding
    and no truncation: safe to use from another thread while the model encodes.

    It shares the model (the vocabulary: ~290 MB for e5's 250k-piece Unigram) with
    ``tokenizer`` instead of parsing a second copy; only the padding and truncation state,
    which the model's encode changes on every call, is its own.
    """
    from tokenizers import Tokenizer

    backend = tokenizer.backend_tokenizer
    counter = Tokenizer(backend.model)
    counter.normalizer = backend.normalizer
    counter.pre_tokenizer = backend.pre_tokenizer
    counter.post_processor = backend.post_processor
    counter.decoder = backend.decoder
    counter.add_special_tokens(list(backend.get_added_tokens_decoder().values()))
    counter.no_padding()
    counter.no_truncation()
    return counter


def embedder_for(settings: Settings, model: str | None = None) -> Embedder:
    """:func:`load_embedder` with everything ``settings`` say: model (unless ``model`` is
    given), cache, prompts, device and precision. The one place those settings meet."""
    return load_embedder(
        model or settings.model, cache_dir=settings.model_cache_dir, query_prompt=settings.query_prompt,
        passage_prompt=settings.passage_prompt, device=settings.device, precision=settings.precision,
    )


def default_prompts(model: str) -> tuple[str, str]:
    """(query prompt, passage prompt) for a model name: e5 models were trained with
    ``query: ``/``passage: `` and score worse without them; other models get none."""
    return ("query: ", "passage: ") if "e5" in model.lower() else ("", "")


def _load_sentence_transformer(model: str | Path, *, device: str) -> Any:
    """Load a SentenceTransformer without touching the network when it is on disk."""
    local = Path(model).expanduser()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelError(f"sentence-transformers is not installed ({exc}); "
                         "run `pip install sentence-transformers`") from exc
    if local.is_dir():  # a local folder never reaches for the Hub
        attempts = [{"local_files_only": True}]
    else:  # a Hub id: the local HF cache first, then a download
        attempts = [{"local_files_only": True}, {"local_files_only": False}]
    error: Exception | None = None
    with _quiet_weight_loading():
        for kwargs in attempts:
            try:
                return SentenceTransformer(str(local if local.is_dir() else model), device=device, **kwargs)
            except Exception as exc:  # noqa: BLE001 - ST/transformers/hub raise many types
                error = exc
    reason = " ".join(str(error).split())[:300]
    hint = ("check the folder is a sentence-transformers model" if local.is_dir() else
            "check the name, the network, or use a local folder or 'multilingual-e5-small'")
    raise ModelError(f"cannot load embedding model {str(model)!r}: {reason} ({hint})") from error


@contextmanager
def _quiet_weight_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bar: every `qabot ask` would print it."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
