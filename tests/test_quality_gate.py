"""The quality gate: retrieval and answer sentences on the XQuAD dev set, with the real model, in `make test`.

All 120 German paragraphs of ../shared/eval/xquad-dev/xquad.de.json are indexed with
multilingual-e5-small (scripts/evaluate.py, the public API: build_index, Retriever.ask and
Retriever.search), and the full question set is asked: 632 English questions (xquad.en.json)
and the 632 parallel German ones. Per language, paragraph recall@1 and answer-sentence hit@1
must reach THRESHOLDS; the table (overall and per half, A = even-numbered articles, B = odd)
is printed in the test output whether the gate passes or not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
XQUAD = SHARED / "eval" / "xquad-dev"

# Just under the measured figures (2026-12-02, fp32 on 2 cores: EN 0.9241 / 0.7184, DE 0.9715 /
# 0.7927): about six questions of slack per metric for float differences between CPUs. Raise
# them with a change that measurably helps (and say so in its note); never lower them silently.
THRESHOLDS: dict[str, dict[str, float]] = {
    "en": {"recall@1": 0.915, "sentence_hit@1": 0.71},
    "de": {"recall@1": 0.96, "sentence_hit@1": 0.78},
}

pytestmark = pytest.mark.model


def _evaluate_script() -> ModuleType:
    name = "qabot_evaluate_script"  # the name tests/test_evaluate.py loads it under: one module, not two
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "evaluate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def shortfalls(report: dict, thresholds: dict[str, dict[str, float]]) -> list[str]:
    """Each metric below its threshold, as ``LANG METRIC VALUE < THRESHOLD`` (a missing language counts)."""
    found = []
    for language, limits in thresholds.items():
        for metric, limit in limits.items():
            value = report.get(language, {}).get(metric)
            if value is None or value < limit:
                found.append(f"{language} {metric} {'missing' if value is None else f'{value:.4f}'} < threshold {limit:.4f}")
    return found


def test_shortfalls_name_the_metric_the_value_and_the_threshold():
    report = {"en": {"recall@1": 0.8912, "sentence_hit@1": 0.70}, "de": {"recall@1": 0.97, "sentence_hit@1": 0.80}}
    assert shortfalls(report, THRESHOLDS) == ["en recall@1 0.8912 < threshold 0.9150", "en sentence_hit@1 0.7000 < threshold 0.7100"]
    assert shortfalls({"de": report["de"]}, THRESHOLDS)[0] == "en recall@1 missing < threshold 0.9150"


def test_dev_set_quality_meets_the_thresholds(tmp_path, monkeypatch, capsys, e5, model_cache_dir):
    de, en = XQUAD / "xquad.de.json", XQUAD / "xquad.en.json"
    # A gate that skipped would pass unseen: CI always has ../shared beside the repository.
    assert de.is_file() and en.is_file(), f"{XQUAD} is absent: the quality gate needs ../shared/eval beside the repository"
    for name in [n for n in os.environ if n.startswith("QABOT_")]:  # the defaults are gated, not a developer's settings
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # and no ./.env
    out = tmp_path / "eval.json"
    argv = ["--de", str(de), "--en", str(en), "--cache-dir", str(model_cache_dir), "--output", str(out)]
    code = _evaluate_script().main(argv, embedder=e5)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(out.read_text(encoding="utf-8"))
    settings = report["settings"]
    with capsys.disabled():
        print(f"\nquality gate (XQuAD dev, {settings['indexed_articles']} paragraphs, {settings['chunks']} chunks, "
              f"{settings['sentences']} sentences, index built in {settings['index_build_seconds']} s):")
        print(_evaluate_script().table(report))
    assert report["en"]["n"] == report["de"]["n"] == 632
    failed = shortfalls(report, THRESHOLDS)
    assert not failed, "quality gate: " + "; ".join(failed)
