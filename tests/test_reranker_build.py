"""qabot's own reranker: the adapter's checksum, the merge (equal to the adapted model), the folder, the fallback.

A real LoRA adapter is made here with peft on the tiny BERT reranker (random, non-zero adapter
weights), saved in qabot's adapter format, merged by the production code into a CrossEncoder
folder and loaded by the production seam; its scores must equal the unmerged peft model's.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from qabot.answering.reranker_blend import best_indices, lead_with, rescore_best
from qabot.config import BUILTIN_RERANKER, Settings
from qabot.errors import ModelError
from qabot.models import reranker_build
from qabot.models.reranker import CrossEncoderReranker, reranker_for
from qabot.models.reranker_build import (
    ADAPTER_FILE,
    CONFIG_FILE,
    adapter_dir,
    build_reranker,
    is_reranker_installed,
    merge,
    read_adapter,
    save_adapter,
)
from tests.tiny_models import build_tiny_reranker

PAIRS = [("Wann landet Putin in Alaska?", "Putin soll um 11.00 Uhr Ortszeit in Alaska ankommen."),
         ("When does the summit begin?", "Der Gipfel beginnt um 11.30 Uhr."),
         ("Who won?", "Niemand hat gewonnen, sagte er am Abend in Anchorage vor Journalisten.")]


# -- the pure merge ---------------------------------------------------------------------------------


def test_merge_adds_the_scaled_low_rank_product_and_takes_the_head():
    rng = np.random.default_rng(0)
    base = {"l.weight": rng.normal(size=(4, 3)).astype(np.float32), "classifier.weight": np.zeros((1, 4), np.float32),
            "other.weight": np.ones((2, 2), np.float32)}
    a, b = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    head = np.full((1, 4), 0.5, np.float32)
    merged = merge(base, {"l.lora_A": a, "l.lora_B": b, "classifier.weight": head}, scaling=2.0)
    assert np.allclose(merged["l.weight"], base["l.weight"] + 2.0 * b @ a)
    assert np.array_equal(merged["classifier.weight"], head) and np.array_equal(merged["other.weight"], base["other.weight"])
    assert np.array_equal(base["classifier.weight"], np.zeros((1, 4))), "the base weights are not changed in place"
    with pytest.raises(ValueError, match="does not have"):
        merge(base, {"missing.lora_A": a, "missing.lora_B": b}, scaling=1.0)
    with pytest.raises(ValueError, match="adapter gives"):
        merge(base, {"l.lora_A": a.T.copy(), "l.lora_B": b[:3]}, scaling=1.0)


def test_rescore_best_keeps_only_what_the_reranker_read_and_lead_with_repoints_sentences():
    scores = np.array([0.5, 0.9, 0.7, 0.1], dtype=np.float32)
    assert best_indices(scores, 2) == [1, 2] and best_indices(scores, 0) == []
    out = rescore_best(scores, [1, 2], np.array([0.0, 1.0]), weight=0.5)
    assert np.allclose(out[[1, 2]], [0.45, 0.85]) and np.isneginf(out[[0, 3]]).all()
    assert int(np.argmax(out)) == 2, "the reranker turned the order of the two it read"
    with pytest.raises(ValueError, match="one reranker score per chosen candidate"):
        rescore_best(scores, [1, 2], np.array([1.0]))

    from qabot.answering.picking import Candidate
    from qabot.answering.ranking_steps import Ranked
    from tests.test_reranker import _passage

    ranked = Ranked((_passage(1, 0.9), _passage(2, 0.8), _passage(3, 0.7)),
                    (Candidate(0, 0, 1, "a"), Candidate(2, 0, 1, "c"), Candidate(1, 0, 1, "b")),
                    np.zeros(3, np.float32), 0.9, ())
    led = lead_with(ranked, 2)
    assert [p.chunk_id for p in led.passages] == [3, 1, 2]
    assert [(s.text, led.passages[s.passage_index].chunk_id) for s in led.sentences] == [("a", 1), ("c", 3), ("b", 2)]
    assert lead_with(ranked, 0) is ranked


# -- a real adapter, merged -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory):
    """(base CrossEncoder folder, adapter folder, the unmerged peft model, its tokenizer)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from sentence_transformers import CrossEncoder

    root = tmp_path_factory.mktemp("adapter")
    base = build_tiny_reranker(root / "tiny-base")
    ce = CrossEncoder(str(base), num_labels=1, device="cpu", local_files_only=True)
    torch.manual_seed(5)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=reranker_build.LORA_TARGETS,
                        modules_to_save=["pooler", "classifier"], init_lora_weights=False)
    model = get_peft_model(ce.model, config).eval()
    with torch.no_grad():  # a head unlike the base's, so that taking it over is tested too
        model.base_model.model.classifier.modules_to_save["default"].weight.mul_(-3.0)
    out = root / "adapter"
    save_adapter(model, out, rank=4, alpha=8, max_length=64, prefixes=True)
    (out / "MODEL_CARD.md").write_text("# test card\n", encoding="utf-8")
    return base, out, model, ce.tokenizer


def test_the_merged_folder_scores_as_the_unmerged_adapted_model(adapted, tmp_path: Path):
    import torch

    base, adapter, model, tokenizer = adapted
    folder = build_reranker(base, tmp_path / "merged", adapter=adapter)
    config, _ = read_adapter(adapter)
    assert is_reranker_installed(folder, adapter_sha256=config["adapter_sha256"])
    assert (folder / "README.md").read_text(encoding="utf-8") == "# test card\n"
    merged = CrossEncoderReranker(folder)
    assert (merged.query_prefix, merged.text_prefix) == ("query: ", "passage: ")
    questions = [f"query: {q}" for q, _ in PAIRS]
    texts = [f"passage: {t}" for _, t in PAIRS]
    with torch.no_grad():
        enc = tokenizer(questions, texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        expected = torch.sigmoid(model(**enc).logits.float().reshape(-1)).numpy()
    got = np.concatenate([merged.score(q, [t]) for q, t in PAIRS])
    assert np.allclose(got, expected, atol=1e-4), (got, expected)
    assert len(set(np.round(got, 4))) == len(PAIRS), "the scores differ between pairs"
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    assert build_reranker(base, folder, adapter=adapter) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime, "an installed merge is not built again"


def test_a_damaged_or_missing_adapter_is_refused_naming_the_repair(adapted, tmp_path: Path):
    base, adapter, _, _ = adapted
    damaged = tmp_path / "damaged"
    shutil.copytree(adapter, damaged)
    raw = bytearray((damaged / ADAPTER_FILE).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (damaged / ADAPTER_FILE).write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=r"damaged .*qabot model install"):
        build_reranker(base, tmp_path / "out", adapter=damaged)
    (damaged / ADAPTER_FILE).unlink()
    with pytest.raises(ModelError, match="cannot be read"):
        build_reranker(base, tmp_path / "out", adapter=damaged)
    assert not (tmp_path / "out").exists(), "nothing is left behind"


def test_the_builtin_reranker_with_a_damaged_adapter_falls_back_logged_once(adapted, tmp_path: Path, monkeypatch,
                                                                           caplog: pytest.LogCaptureFixture):
    from qabot.models.optional import forget_loaded

    _, adapter, _, _ = adapted
    damaged = tmp_path / "shipped"
    shutil.copytree(adapter, damaged)
    config = json.loads((damaged / CONFIG_FILE).read_text(encoding="utf-8"))
    config["adapter_sha256"] = "0" * 64
    (damaged / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setattr(reranker_build, "adapter_dir", lambda: damaged)
    caplog.set_level(logging.WARNING)
    forget_loaded()
    settings = Settings(reranker=BUILTIN_RERANKER, cache_dir=tmp_path / "cache")
    try:
        assert reranker_for(settings) is None and reranker_for(settings) is None
    finally:
        forget_loaded()
    lines = [r.getMessage() for r in caplog.records if "reranker" in r.getMessage()]
    assert len(lines) == 1 and "damaged" in lines[0] and "qabot model install" in lines[0]


def test_the_shipped_adapter_is_intact_and_has_a_card():
    config, tensors = read_adapter()
    assert config["base"] == "multilingual-e5-small" and config["rank"] > 0
    assert any(k.endswith(".lora_A") for k in tensors) and "classifier.weight" in tensors
    assert (adapter_dir() / ADAPTER_FILE).stat().st_size < 8 * 2**20, "a few MB"
    card = (adapter_dir() / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert config["adapter_sha256"] in card and "scripts/train_reranker.py" in card


def test_settings_name_the_builtin_reranker_and_turn_it_off_with_an_empty_value():
    assert Settings.from_env({"QABOT_RERANKER": "qabot-reranker"}).reranker == BUILTIN_RERANKER
    for off in ("", " ", "none", "OFF"):
        assert Settings.from_env({"QABOT_RERANKER": off}).reranker is None, off
    assert Settings.from_env({"QABOT_RERANKER": "/srv/models/bge"}).reranker == "/srv/models/bge"
    assert Settings.from_env({"QABOT_RERANK_SENTENCES": "0"}).rerank_sentences == 0
