"""The reader seam: an extractive question-answering model finds the exact answer span.

``ReaderAnswer``            the best span over some texts, its score and the no-answer score
``Reader``                  the protocol the Retriever uses: ``name`` and ``read``
``QuestionAnsweringReader`` a transformers AutoModelForQuestionAnswering id or folder + its fast tokenizer
``load_reader`` / ``reader_for``  a model name / the settings -> a reader (the latter: None when unset
                            or broken, loaded once per process)

Scoring follows transformers' question-answering pipeline (and so txtai's Questions): each
window of ``max_length`` tokens (long texts overlap by ``stride``) gets a softmax over its
context tokens and [CLS] for the start and for the end; a span scores p(start) * p(end), at most
``max_answer_tokens`` long, and [CLS]-[CLS] is the window's no-answer score. Over all windows of
all texts the best span wins, and the no-answer score is the lowest of the windows' (one window
sure of an answer is enough). A SQuAD 2.0 model (deepset/xlm-roberta-base-squad2) was trained to
put its no-answer there, so ``no_answer > score`` means "not in these passages".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from qabot.errors import ModelError
from qabot.models.embedding import _quiet_weight_loading
from qabot.models.optional import Deadline, batched, load_once, resolve

if TYPE_CHECKING:
    from qabot.config import Settings

log = logging.getLogger(__name__)

MAX_LENGTH = 384  # tokens per window (question + text), as Haystack's ExtractiveReader
STRIDE = 128  # tokens shared by consecutive windows of a long text
MAX_ANSWER_TOKENS = 30
BATCH_SIZE = 8  # windows per forward pass


@dataclass(frozen=True)
class ReaderAnswer:
    """The reader's best answer: ``texts[text][start:end]``, with scores (0-1)."""

    text: int  # which of the texts read
    start: int  # character offsets into that text
    end: int
    answer: str
    score: float
    no_answer: float

    @property
    def abstains(self) -> bool:
        """True when the model is surer there is no answer than of its best span."""
        return self.no_answer > self.score


@runtime_checkable
class Reader(Protocol):
    """What the Retriever needs from a reader."""

    name: str

    def read(self, question: str, texts: Sequence[str], *, deadline: Deadline | None = None) -> ReaderAnswer | None:
        """The best span over ``texts`` (None when there is nothing to read)."""
        ...


class QuestionAnsweringReader:
    """A Hugging Face extractive QA model (a local folder, or a Hub id from the cache or the network)."""

    def __init__(
        self, model: str | Path, *, device: str = "cpu", precision: str = "fp32", max_length: int = MAX_LENGTH,
        stride: int = STRIDE, max_answer_tokens: int = MAX_ANSWER_TOKENS, batch_size: int = BATCH_SIZE,
    ) -> None:
        self.device, self.precision = device, precision
        self.max_length, self.stride = max_length, stride
        self.max_answer_tokens, self.batch_size = max_answer_tokens, batch_size
        self._tokenizer, self._model = _load_question_answering(model, device=device, precision=precision)
        local = Path(model).expanduser()
        self.name = local.name if local.is_dir() else str(model)

    def read(self, question: str, texts: Sequence[str], *, deadline: Deadline | None = None) -> ReaderAnswer | None:
        """The best span over all windows of ``texts``; the budget is checked before each batch."""
        import torch

        if not texts:
            return None
        encoded = self._tokenizer(
            [question] * len(texts), list(texts), truncation="only_second", max_length=self.max_length,
            stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
            return_tensors="pt",
        )
        owners = encoded.pop("overflow_to_sample_mapping").tolist()
        offsets = encoded.pop("offset_mapping").tolist()
        inputs = {k: v for k, v in encoded.items() if k in {"input_ids", "attention_mask", "token_type_ids"}}
        best: tuple[float, int, int, int] | None = None  # (score, text, start char, end char)
        no_answer = 1.0
        for rows in batched(range(len(owners)), self.batch_size):
            if deadline is not None:
                deadline.check(f"reader {self.name}")
            with torch.inference_mode():
                out = self._model(**{k: v[list(rows)].to(self.device) for k, v in inputs.items()})
            starts, ends = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
            for j, row in enumerate(rows):
                context = [s == 1 for s in encoded.sequence_ids(row)]
                found = _best_span(starts[j], ends[j], context, max_tokens=self.max_answer_tokens)
                no_answer = min(no_answer, found[0])
                if found[1] is not None and (best is None or found[1] > best[0]):
                    first, last = found[2], found[3]
                    best = (found[1], owners[row], offsets[row][first][0], offsets[row][last][1])
        if best is None:
            return None
        score, text, start, end = best
        return ReaderAnswer(text=text, start=start, end=end, answer=texts[text][start:end], score=score, no_answer=no_answer)

    def __repr__(self) -> str:
        return f"QuestionAnsweringReader(name={self.name!r}, device={self.device!r}, precision={self.precision!r})"


def _best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, context: Sequence[bool], *, max_tokens: int,
) -> tuple[float, float | None, int, int]:
    """(no-answer score, best span score or None, first token, last token) of one window.

    Softmax over the context tokens and [CLS] (position 0), as transformers' pipeline does.
    """
    allowed = np.array(context, dtype=bool)
    allowed[0] = True  # [CLS]: where a SQuAD 2.0 model puts "no answer"
    p_start, p_end = _softmax(start_logits, allowed), _softmax(end_logits, allowed)
    null = float(p_start[0] * p_end[0])
    mask = np.array(context, dtype=bool)
    if not mask.any():
        return null, None, 0, 0
    pairs = np.triu(np.outer(np.where(mask, p_start, 0.0), np.where(mask, p_end, 0.0)))
    pairs = np.tril(pairs, max_tokens - 1)  # spans of at most max_tokens tokens
    first, last = np.unravel_index(int(np.argmax(pairs)), pairs.shape)
    return null, float(pairs[first, last]), int(first), int(last)


def _softmax(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    values = np.where(allowed, logits.astype(np.float64), -np.inf)
    values = np.exp(values - values[allowed].max())
    return values / values.sum()


def load_reader(model: str, *, device: str = "cpu", precision: str = "fp32") -> QuestionAnsweringReader:
    """A QuestionAnsweringReader for ``model``; ModelError with a one-line reason when it cannot be loaded."""
    return QuestionAnsweringReader(model, device=device, precision=precision)


def reader_for(settings: Settings) -> QuestionAnsweringReader | None:
    """The reader ``settings`` name (QABOT_READER, on QABOT_READER_DEVICE, else QABOT_DEVICE),
    loaded once per process; None when unset, or when it cannot be loaded (logged once)."""
    if not settings.reader:
        return None
    device, precision = resolve(settings.reader_device, settings.device, settings.precision)
    model = settings.reader
    return load_once("reader", ("reader", model, device, precision),
                     lambda: load_reader(model, device=device, precision=precision))


def _load_question_answering(model: str | Path, *, device: str, precision: str) -> tuple[Any, Any]:
    """(fast tokenizer, model in eval mode on ``device``), without the network when on disk."""
    try:
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    except ImportError as exc:
        raise ModelError(f"transformers is not installed ({exc})") from exc
    local = Path(model).expanduser()
    if local.is_dir():
        attempts = [True]
    elif str(model).startswith((".", "/", "~")) or local.exists():
        raise ModelError(f"cannot load reader {str(model)!r}: no such folder")
    else:  # a Hub id: the local HF cache first, then a download
        attempts = [True, False]
    name = str(local if local.is_dir() else model)
    error: Exception | None = None
    with _quiet_weight_loading():
        for local_only in attempts:
            try:
                tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
                qa = AutoModelForQuestionAnswering.from_pretrained(name, local_files_only=local_only)
                break
            except Exception as exc:  # noqa: BLE001 - transformers/hub raise many types
                error = exc
        else:
            reason = " ".join(str(error).split())[:300]
            raise ModelError(f"cannot load reader {str(model)!r}: {reason} (a question-answering model id or folder)") from error
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"cannot load reader {str(model)!r}: it needs a fast tokenizer (tokenizer.json) for answer offsets")
    qa = qa.to(device).eval()
    if precision == "bf16":
        qa = qa.to(torch.bfloat16)
    return tokenizer, qa
