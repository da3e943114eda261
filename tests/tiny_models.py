"""Tiny real model folders for every model seam, built offline in seconds.

``build_tiny_model``     a sentence-transformers embedder: one BERT layer, 32 dimensions, given
                         as ``QABOT_MODEL=<folder>`` by the tests that run qabot as a user does
                         (the CLI, ``python -m qabot``, the scripts)
``build_tiny_reranker``  a sentence-transformers CrossEncoder: one BERT layer, one logit
``build_e5_reranker``    a CrossEncoder with multilingual-e5-small's weights and a fresh one-logit
                         head: the size of cross-encoder/mmarco-mMiniLMv2-L12-H384-v1 (12 layers,
                         384 wide), so its latency is what a small real reranker costs
``build_tiny_reader``    a transformers question-answering model (BertForQuestionAnswering)
``build_e5_reader``      a question-answering model with multilingual-e5-small's weights and a fresh head

Real models, loaded by the production code path from a folder like any other, only small, with
seeded random weights and one WordPiece vocabulary trained on the test archives
(:func:`wordpiece_tokenizer`): their scores mean nothing, their vectors are deterministic, so two
builds of one archive are equal. The reader can be built to always or never abstain (its [CLS]
logits pushed up or down), so abstention is tested with a real model too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
HIDDEN = 32  # every tiny model's width


def _training_texts() -> list[str]:
    from qabot.frontends.cli import sample_archive

    files = [*sorted(sample_archive().glob("*.txt")), *sorted((DATA / "archive").rglob("*.*"))]
    texts = [path.read_text(encoding="utf-8", errors="replace") for path in files if path.is_file()]
    return [*texts, "When does Putin land in Alaska? Wann landet Putin in Alaska? Regierung Nachricht Zeitung"]


def build_tiny_model(folder: Path) -> Path:
    """Write the tiny model to ``folder`` (once: an existing complete folder is reused)."""
    if (folder / "modules.json").is_file():
        return folder
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    tokenizer = wordpiece_tokenizer()
    transformer_dir = folder.parent / f"{folder.name}-transformer"
    tokenizer.save_pretrained(transformer_dir)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(transformer_dir)
    transformer = Transformer(str(transformer_dir), max_seq_length=512)
    model = SentenceTransformer(modules=[transformer, Pooling(HIDDEN, "mean"), Normalize()], device="cpu")
    model.save(str(folder))
    return folder


def wordpiece_tokenizer() -> Any:
    """A WordPiece tokenizer trained on the test archives, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
    from tokenizers import models as tokenizer_models
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(tokenizer_models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(_training_texts(), trainers.WordPieceTrainer(vocab_size=2000, special_tokens=SPECIAL_TOKENS))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=512,
    )


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
    tokenizer = wordpiece_tokenizer()
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

    tokenizer = wordpiece_tokenizer()
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
