"""A tiny real sentence-transformers model folder, built offline in a few seconds.

Tests that run qabot the way a user does (the CLI, ``python -m qabot``, the scripts) give it
``QABOT_MODEL=<this folder>``: a real model, loaded by the production code path like any
other local folder, only small (one BERT layer, 32 dimensions, random but seeded weights,
a WordPiece vocabulary trained on the test archives). Its answers are not meaningful; its
vectors are deterministic, so two builds of one archive are equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DIMENSION = 32


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
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=DIMENSION, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(transformer_dir)
    transformer = Transformer(str(transformer_dir), max_seq_length=512)
    model = SentenceTransformer(modules=[transformer, Pooling(DIMENSION, "mean"), Normalize()], device="cpu")
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
