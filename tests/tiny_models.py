"""Tiny real model folders for the optional seams, built offline in seconds.

``build_tiny_reranker``  a sentence-transformers CrossEncoder: one BERT layer, one logit
``build_e5_reranker``    a CrossEncoder with multilingual-e5-small's weights and a fresh one-logit
                         head: the size of cross-encoder/mmarco-mMiniLMv2-L12-H384-v1 (12 layers,
                         384 wide), so its latency is what a small real reranker costs
``build_tiny_reader``    a transformers question-answering model (BertForQuestionAnswering)
``build_e5_reader``      a question-answering model with multilingual-e5-small's weights and a fresh head

Like :mod:`tests.tiny_model` (the tiny embedder): real models, loaded by the production code
path from a folder, with seeded random weights, so their scores mean nothing. The reader can be
built to always or never abstain (its [CLS] logits pushed up or down), so abstention is tested
with a real model too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tiny_model import wordpiece_tokenizer

HIDDEN = 32


def _tokenizer() -> Any:
    """The tiny embedder's WordPiece tokenizer (one vocabulary for every tiny model)."""
    return wordpiece_tokenizer()


def _config(vocab_size: int, **extra: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=512, **extra)


def build_tiny_reranker(folder: Path) -> Path:
    """A CrossEncoder folder (one-logit BertForSequenceClassification), saved by sentence-transformers."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertForSequenceClassification

    raw = folder.parent / f"{folder.name}-raw"
    tokenizer = _tokenizer()
    tokenizer.save_pretrained(raw)
    torch.manual_seed(1)
    model = BertForSequenceClassification(_config(len(tokenizer), num_labels=1))
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0)  # a wide head: scores that differ between texts
    model.save_pretrained(raw)
    CrossEncoder(str(raw), device="cpu", local_files_only=True).save(str(folder))
    return folder


def build_e5_reranker(folder: Path, e5_folder: Path) -> Path:
    """A CrossEncoder folder: multilingual-e5-small's transformer with a fresh one-logit head."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(2)
    model = CrossEncoder(str(e5_folder), num_labels=1, device="cpu", local_files_only=True)
    with torch.no_grad():
        model.model.classifier.weight.normal_(0.0, 1.0)  # the fresh head starts at zero: scores would all be 0.5
    model.save(str(folder))
    return folder


def build_tiny_reader(folder: Path, *, abstain: bool | None = None) -> Path:
    """A question-answering folder (BertForQuestionAnswering + fast tokenizer).

    ``abstain``: None, seeded random logits; True, the [CLS] position always wins (the model
    says "no answer"); False, [CLS] always loses (it always answers).
    """
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import BertForQuestionAnswering

    tokenizer = _tokenizer()
    torch.manual_seed(3)
    model = BertForQuestionAnswering(_config(len(tokenizer)))
    if abstain is not None:
        with torch.no_grad():
            # The first position is [CLS] (the no-answer position): give its position embedding a
            # huge first dimension and make both logits read that dimension, up or down.
            model.bert.embeddings.position_embeddings.weight[0, 0] = 50.0
            model.qa_outputs.weight.zero_()
            model.qa_outputs.bias.zero_()
            model.qa_outputs.weight[:, 0] = 5.0 if abstain else -5.0
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def build_e5_reader(folder: Path, e5_folder: Path) -> Path:
    """A question-answering folder: multilingual-e5-small's transformer and tokenizer with a fresh
    span head (12 layers, 384 wide: ~2.5x smaller than deepset/xlm-roberta-base-squad2)."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.manual_seed(4)
    AutoTokenizer.from_pretrained(str(e5_folder), local_files_only=True).save_pretrained(folder)
    AutoModelForQuestionAnswering.from_pretrained(str(e5_folder), local_files_only=True).save_pretrained(folder)
    return folder
