"""The quality gate: retrieval and answer sentences on the XQuAD dev set, with the real model, in `make test`.

All 120 German paragraphs of ../shared/eval/xquad-dev/xquad.de.json are indexed with
multilingual-e5-small (qabot.evaluation, as scripts/evaluate.py runs it: the public API: build_index, Retriever.ask and
Retriever.search), and the full question set is asked: 632 English questions (xquad.en.json)
and the 632 parallel German ones. Per language, paragraph recall@1 and answer-sentence hit@1
must reach THRESHOLDS; the table (overall and per half, A = even-numbered articles, B = odd)
is printed in the test output whether the gate passes or not. The same index, copied into a
real PostgreSQL server (the ``pg_url`` fixture), must answer the first PG_QUESTIONS questions of
each language within PG_SLACK of the folder's answers to them.
"""

from __future__ import annotations

import json
import os

import pytest

from qabot.evaluation import command
from qabot.evaluation.metrics import table

from .conftest import SHARED

XQUAD = SHARED / "eval" / "xquad-dev"

# Just under the measured figures of the default retriever, qabot-reranker included, in both precisions the
# gate can run ("auto": bf16 on a CPU with AMX or AVX512-BF16, else fp32), 2026-12-05 on 2 cores, overall (A / B):
#   bf16  EN R@1 0.924 (0.914 / 0.935), sentence 0.748 (0.739 / 0.759); DE 0.972 (0.966 / 0.977), 0.823 (0.809 / 0.837)
#   fp32  EN R@1 0.924 (0.914 / 0.935), sentence 0.745 (0.735 / 0.756); DE 0.972 (0.966 / 0.977), 0.821 (0.806 / 0.837)
# Six to seven questions of slack per metric below the lower of the two. Raise them with a change that measurably
# helps (and say so in its note); never lower them silently.
THRESHOLDS: dict[str, dict[str, float]] = {
    "en": {"recall@1": 0.915, "sentence_hit@1": 0.735},
    "de": {"recall@1": 0.96, "sentence_hit@1": 0.81},
}

pytestmark = pytest.mark.model


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
    assert shortfalls(report, THRESHOLDS) == ["en recall@1 0.8912 < threshold 0.9150", "en sentence_hit@1 0.7000 < threshold 0.7350",
                                              "de sentence_hit@1 0.8000 < threshold 0.8100"]
    assert shortfalls({"de": report["de"]}, THRESHOLDS)[0] == "en recall@1 missing < threshold 0.9150"


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, e5, model_cache_dir):
    """The full dev set on a folder index (kept for the PostgreSQL run): (report, per-question rows, index, inputs)."""
    de, en = XQUAD / "xquad.de.json", XQUAD / "xquad.en.json"
    # A gate that skipped would pass unseen: CI always has ../shared beside the repository.
    assert de.is_file() and en.is_file(), f"{XQUAD} is absent: the quality gate needs ../shared/eval beside the repository"
    tmp = tmp_path_factory.mktemp("gate")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in [n for n in os.environ if n.startswith("QABOT_")]:  # the defaults are gated, not a developer's settings
            monkeypatch.delenv(name)
        monkeypatch.chdir(tmp)  # and no ./.env
        out, rows = tmp / "eval.json", tmp / "questions.jsonl"
        inputs = ["--de", str(de), "--en", str(en), "--cache-dir", str(model_cache_dir), "--keep-index", str(tmp / "index")]
        code = command.main([*inputs, "--output", str(out), "--per-question", str(rows)], embedder=e5)
    assert code == 0
    per_question = [json.loads(line) for line in rows.read_text(encoding="utf-8").splitlines()]
    return json.loads(out.read_text(encoding="utf-8")), per_question, inputs


def test_dev_set_quality_meets_the_thresholds(folder_run, record_property):
    report = folder_run[0]
    settings = report["settings"]
    # printed at the end of the run by conftest.pytest_terminal_summary, pass or fail
    ran = settings["precision"]  # "auto": bf16 where the CPU does bf16 (AMX, AVX512-BF16), else fp32
    record_property("summary", f"\nquality gate (XQuAD dev, {settings['indexed_articles']} paragraphs, {settings['chunks']} chunks, "
                    f"{settings['sentences']} sentences, index built in {settings['index_build_seconds']} s; "
                    f"precision: e5 {ran['embedder']}, reranker {ran['reranker']}):\n"
                    + table(report))
    assert report["en"]["n"] == report["de"]["n"] == 632
    failed = shortfalls(report, THRESHOLDS)
    assert not failed, "quality gate: " + "; ".join(failed)


# The PostgreSQL store: the same index copied into a real server (`qabot copy`: the same vectors), the
# first PG_QUESTIONS questions of each language asked there, against the folder's answers to the same
# questions. Measured on the full set (2026-12-02, BM25 keyword leg): R@1 DE 0.9668 vs 0.9715, EN 0.9256
# vs 0.9241; sentence hits equal (0.793, 0.718). On the first 300: DE 0.943 vs 0.950 (2 questions), EN
# 0.917 vs 0.920, so the slack on this subset is 0.01 (the full set is within the 0.005).
PG_QUESTIONS = 300
PG_SLACK = 0.01


def test_dev_set_quality_on_postgres_matches_the_folder(folder_run, pg_url, e5, record_property, tmp_path, monkeypatch):
    _, per_question, inputs = folder_run
    for name in [n for n in os.environ if n.startswith("QABOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "eval-pg.json"
    code = command.main([*inputs, "--limit", str(PG_QUESTIONS), "--store-url", pg_url, "--output", str(out)],
                                   embedder=e5)
    assert code == 0
    on_pg = json.loads(out.read_text(encoding="utf-8"))
    assert on_pg["settings"]["store"] == "postgresql"
    record_property("summary", f"\nquality gate on PostgreSQL (the first {PG_QUESTIONS} questions of each language):\n"
                    + table(on_pg))
    for language in ("de", "en"):
        same = [r for r in per_question if r["language"] == language][:PG_QUESTIONS]
        folder = {"recall@1": sum(r["rank"] == 1 for r in same) / len(same), "sentence_hit@1": sum(r["hit"] for r in same) / len(same)}
        for metric, value in folder.items():
            assert on_pg[language][metric] >= value - PG_SLACK, f"{language} {metric}: PostgreSQL {on_pg[language][metric]:.4f}, folder {value:.4f}"
