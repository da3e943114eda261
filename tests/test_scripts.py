"""The scripts run as an operator would run them (a subprocess, JSON out); the build
(Makefile, pyproject.toml) installs what the code imports and cleans only what it built."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.fakes import HashEmbedder

from .tiny_models import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = Path(__file__).parent / "data" / "archive"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-model")


@pytest.fixture
def env(tiny_model: Path, tmp_path: Path) -> dict[str, str]:
    """The caller's environment without QABOT_/TELEGRAM_ variables; the tiny real model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_") and k != "TELEGRAM_BOT_TOKEN"}
    env.update(QABOT_MODEL=str(tiny_model), QABOT_CACHE_DIR=str(tmp_path / "cache"))
    return env


def _run(module: str, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` as from the repository root (PYTHONPATH), in ``cwd``; it must succeed."""
    proc = subprocess.run([sys.executable, "-m", module, *args], check=False, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(ROOT)}, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_benchmark_script_encodes_chunks_and_sentences_and_sizes_the_index(tmp_path, env):
    archive = ARCHIVE / "seed"
    proc = _run("scripts.bench.benchmark", str(archive), "--skip-faiss", "--questions", "2", env={**env, "QABOT_BATCH_SIZE": "2"}, cwd=tmp_path)
    result = json.loads(proc.stdout)
    raw, index = result["raw_encode"], result["index"]
    assert raw["chunks"] == index["chunks"] > 0 and raw["sentences"] == index["sentences"] > 0
    assert raw["texts"] == raw["chunks"] + raw["sentences"] and raw["calls"] >= 1
    assert index["ratio_to_raw_encode"] > 0 and index["ratio_target"] == 1.10 and index["size_bytes"] > 0
    assert "warning" not in index and result["rerun"]["chunks_embedded"] == 0
    assert "raw encode" in proc.stderr and "sentences" in proc.stderr  # the one-line summary


class RecordingEmbedder(HashEmbedder):
    """The fake embedder, keeping the texts of every ``embed_passages`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def embed_passages(self, texts, **options):
        self.calls.append(list(texts))
        return super().embed_passages(texts, **options)


def test_benchmark_raw_encode_sees_exactly_the_indexers_calls(tmp_path):
    """Same texts (chunks and sentences), same calls: the ratio compares like with like."""
    from qabot import Settings
    from qabot.indexer import build_index
    from scripts.bench import benchmark
    archive = tmp_path / "archive.jsonl"
    rows = [{"id": f"a{i}", "title": f"Meldung {i}", "text": f"Der Stadtrat beschloss am Montag Punkt {i}. Kurz. "
             f"Die Kosten liegen bei {i} Millionen Euro, sagte die Sprecherin."} for i in range(80)]
    archive.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    settings = Settings.from_env({}, batch_size=1)  # 32 chunks a call: three calls for 80 one-chunk articles
    embedder = RecordingEmbedder()
    report = build_index(archive, tmp_path / "ix", embedder=embedder, chunk_tokens=settings.chunk_tokens,
                         chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size)
    calls, chunks, sentences = benchmark.indexer_batches(archive, embedder, settings)
    assert len(calls) == 3 and (chunks, sentences) == (80, 160)  # "Kurz." is too short to be a sentence
    assert (report.chunks_total, report.sentences_total) == (chunks, sentences)
    assert [sorted(c) for c in calls] == [sorted(c) for c in embedder.calls]


def test_bench_ask_times_the_question_embedding_over_many_questions(tmp_path, env):
    _run("qabot", "index", str(ARCHIVE / "seed"), "--index", str(tmp_path / "ix"), env=env, cwd=tmp_path)
    questions = tmp_path / "questions.txt"
    questions.write_text("Wann landet Putin in Alaska?\n\nWer trifft sich in Alaska?\n", encoding="utf-8")
    squad = tmp_path / "squad.json"
    qas = [{"id": f"q{i}", "question": f"Frage {i} zu Alaska?", "answers": []} for i in range(3)]
    squad.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "Text.", "qas": qas}]}]}), encoding="utf-8")
    proc = _run("scripts.bench.bench_ask", "--index", str(tmp_path / "ix"), "--questions-file", str(questions), "--squad", str(squad),
                env=env, cwd=tmp_path)
    result = json.loads(proc.stdout)
    assert result["questions"] == result["distinct_questions"] == result["calls"] == 5  # --repeat defaults to 1 here
    for name in ("ask_ms", "search_ms", "embed_ms"):
        assert 0 < result[name]["p50"] <= result[name]["p95"], name
    ratios = result["ratios"]
    assert ratios["ask_p50_over_embed_p50"] == pytest.approx(result["ask_ms"]["p50"] / result["embed_ms"]["p50"], abs=0.006)
    assert ratios["ask_p95_over_embed_p95"] == pytest.approx(result["ask_ms"]["p95"] / result["embed_ms"]["p95"], abs=0.006)
    assert result["targets"] == {"ask_p50_over_embed_p50": 4.0, "ask_p95_over_embed_p95": 8.0}
    assert isinstance(ratios["within_targets"], bool) and result["peak_rss_mb"] > 0
    assert "ask/embed p50" in proc.stderr
    fixed = json.loads(_run("scripts.bench.bench_ask", "--index", str(tmp_path / "ix"), "--repeat", "2", env=env, cwd=tmp_path).stdout)
    assert (fixed["questions"], fixed["calls"]) == (4, 8)


def test_build_synthetic_indexes_repeated_real_articles_that_open_with_the_real_model(tmp_path, env):
    target = tmp_path / "big"
    result = json.loads(_run("scripts.bench.build_synthetic", str(ARCHIVE / "seed"), "--chunks", "40", "--index", str(target),
                             env=env, cwd=tmp_path).stdout)
    report = result["report"]
    assert result["distinct_texts"] >= 1 and report["articles_indexed"] == result["articles"] > result["distinct_texts"]
    assert report["chunks_total"] >= 30 and report["sentences_total"] > report["chunks_total"]
    check = subprocess.run([sys.executable, "-m", "qabot", "check", "--index", str(target)], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    asked = json.loads(_run("scripts.bench.bench_ask", "--index", str(target), "--repeat", "1", env=env, cwd=tmp_path).stdout)
    assert asked["chunks"] == report["chunks_total"] and asked["calls"] == 4
    again = subprocess.run([sys.executable, "-m", "scripts.bench.build_synthetic", str(ARCHIVE / "seed"), "--index", str(target)],
                           capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, timeout=300)
    assert again.returncode == 2 and "exists" in again.stderr  # never indexes into an existing folder


def test_no_script_puts_anything_on_sys_path():
    """scripts/NAME.py import only qabot (installed); scripts.bench / scripts.research run with -m from the root."""
    found = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "scripts").rglob("*.py")
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "sys.path" in line]
    assert not found, found


# -- the build ---------------------------------------------------------------------------------------------

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _imported_top_level(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_default_path_into_shared_is_beside_the_repository():
    """A script's default data path (``Path(__file__).resolve().parents[N] / "shared" ...``) must land in
    ../shared wherever the script sits: moving scripts into scripts/bench/ left four of them pointing
    inside the repository."""
    pattern = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d)\] / \"shared")
    found = []
    for script in sorted((ROOT / "scripts").rglob("*.py")):
        for match in pattern.finditer(script.read_text(encoding="utf-8")):
            found.append(script)
            assert script.resolve().parents[int(match.group(1))] == ROOT.parent, f"{script.relative_to(ROOT)}: parents[{match.group(1)}]"
    assert len(found) >= 4  # eval_sentence_choice, ablate_contextual, bench_encode, bench_extraction


def test_every_third_party_package_qabot_imports_is_declared():
    declared = _requirement_names(PYPROJECT["project"]["dependencies"])
    distributions = packages_distributions()
    missing = set()
    for module in _imported_top_level(ROOT / "qabot") - set(sys.stdlib_module_names) - {"qabot"}:
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not owners & declared:
            missing.add(f"{module} ({', '.join(sorted(owners))})")
    assert not missing, f"imported by qabot but not in pyproject.toml's dependencies: {sorted(missing)}"


def test_declared_minimum_versions_have_what_the_code_uses():
    """sqlite-utils 4 brought Migrations and Database.atomic(), which qabot.store uses."""
    spec = next(r for r in PYPROJECT["project"]["dependencies"] if r.startswith("sqlite-utils"))
    minimum = re.search(r">=\s*(\d+)", spec)
    assert minimum and int(minimum.group(1)) >= 4, spec


def test_the_lint_tools_make_test_runs_are_declared_and_configured():
    test_extra = _requirement_names(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert {"pytest", "ruff"} <= test_extra
    ruff = PYPROJECT["tool"]["ruff"]
    assert ruff["target-version"] == "py311" and ruff["lint"]["select"]
    recipe = _make("-n", "test")
    assert "ruff check qabot tests scripts" in recipe and recipe.index("ruff check") < recipe.index("pytest")


def _make(*args: str, **variables: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    overrides = [f"{k}={v}" for k, v in variables.items()]
    # -B: print every recipe as if nothing were built; -n: run none of them
    proc = subprocess.run(["make", "-B", "-n", *args, *overrides], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_installs_the_cpu_build_of_torch_and_a_gpu_user_can_override_it():
    recipe = _make("install")
    assert '"torch==2.13.0+cpu" --extra-index-url "https://download.pytorch.org/whl/cpu"' in recipe
    assert recipe.index("torch==") < recipe.index('-e ".[test]"')
    # asked first: an index that cannot be reached is left out, not retried for every package
    assert recipe.index('scripts/reachable.py "https://download.pytorch.org/whl/cpu"') < recipe.index("--extra-index-url")
    assert '-m pip install --quiet "torch==2.13.0+cpu"\n' in recipe.replace("; \\\n", "\n")
    gpu = _make("install", TORCH="torch==2.13.0", TORCH_INDEX="https://download.pytorch.org/whl/cu128")
    assert '"torch==2.13.0" --extra-index-url "https://download.pytorch.org/whl/cu128"' in gpu


def test_make_clean_removes_what_make_built_and_never_an_index_or_the_model_cache():
    recipe = _make("clean")
    assert ".venv" in recipe
    assert "index" not in recipe.replace("--index", ""), recipe
    assert ".cache" not in recipe and "qabot/models" not in recipe, recipe


def test_hnsw_recall_compares_the_schemas_hnsw_index_with_exact_search(tmp_path, env, pg_url):
    import psycopg

    from tests.archives import write_archive

    archive = write_archive(tmp_path / "news.jsonl", range(40), sentences=6)
    squad = tmp_path / "squad.json"
    qas = [{"id": f"q{i}", "question": f"Was geschah in Stadt {i}?", "answers": []} for i in range(5)]
    squad.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "Text.", "qas": qas}]}]}), encoding="utf-8")
    args = [str(archive), "--sentences", "120", "--held-out", "10", "--store-url", pg_url, "--squad", str(squad),
            "--cache", str(tmp_path / "vectors.npy"), "--k", "5", "10"]
    result = json.loads(_run("scripts.bench.hnsw_recall", *args, env=env, cwd=tmp_path).stdout)
    assert result["sentences"] == 120 and result["index_build_s"] >= 0 and (result["m"], result["ef_construction"]) == (32, 200)
    assert result["archive_sentences_as_questions"]["queries"] == 10 and result["squad_questions"]["queries"] == 5
    measured = result["squad_questions"]["at"]
    assert [(m["k"], m["ef_search"]) for m in measured] == [(5, 40), (5, 400), (10, 40), (10, 400)]
    assert all(m["recall_mean"] == 1.0 for m in measured), "120 vectors: the graph search is exact"
    assert len(list(tmp_path.glob("vectors-*.npy"))) == 1, "the vectors are kept for the next run"
    again = json.loads(_run("scripts.bench.hnsw_recall", *args, "--m", "8", "--ef", "20", env=env, cwd=tmp_path).stdout)
    assert again["m"] == 8 and [m["ef_search"] for m in again["squad_questions"]["at"]] == [20, 20]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select to_regclass('qabot_hnsw_recall')").fetchone()[0] is None, "the scratch table is dropped"


class _WordVectors:
    """A toy embedder for the ablation scripts' tests: each text's vector is given; unknown texts are orthogonal."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed_queries(self, texts: list[str]):
        import numpy as np

        rows = [np.array(self.vectors.get(t, [0.0, 0.0, 0.0, 1.0]), dtype=np.float32) for t in texts]
        return np.stack([r / np.linalg.norm(r) for r in rows])


def test_ablate_translation_adds_the_nearest_german_word_above_the_threshold_only():
    from scripts.research import ablate_translation as ablation
    model = _WordVectors({"wahl": [1, 0, 0, 0], "election": [0.95, 0.31, 0, 0], "kanzler": [0, 1, 0, 0],
                          "chancellor": [0, 0.7, 0, 0.714], "merkel": [0, 0, 1, 0]})
    translator = ablation.Translator(model, ["kanzler", "merkel", "wahl"])
    # "election" is near "wahl" (0.95), "chancellor" 0.7 from "kanzler"; "merkel" is an archive word as it is
    assert translator.expand("Which election did Merkel win as chancellor?", 0.9) == ["election", "merkel", "win", "chancellor", "wahl"]
    assert translator.expand("Which election did Merkel win as chancellor?", 0.5) == [
        "election", "merkel", "win", "chancellor", "wahl", "kanzler"]
    assert translator.expand("Which election did Merkel win as chancellor?", 0.99) == ["election", "merkel", "win", "chancellor"]


def test_ablate_translation_feedback_words_are_frequent_in_the_top_chunks_and_rare_in_the_archive():
    from scripts.research import ablate_translation as ablation
    counts = Counter({"kanzlerin": 2, "regierung": 90, "koalition": 5, "berlin": 50, "lobte": 60})
    texts = ["Die Kanzlerin lobte die Koalition in Berlin.", "Die Koalition der Regierung in Berlin.", "Kanzlerin Merkel"]
    # tf x idf over 100 chunks: kanzlerin 2*log(50), koalition 2*log(20), merkel (no count) log(100), berlin 2*log(2),
    # lobte log(100/60), regierung log(100/90); "die", "der", "in" are stopwords
    assert ablation.salient_terms(texts, {"merkel"}, counts, 100, 3) == ["kanzlerin", "koalition", "berlin"]
    assert ablation.salient_terms(texts, set(), counts, 100, 4) == ["kanzlerin", "koalition", "merkel", "berlin"]


def test_ablate_use_blends_a_passages_own_and_its_best_sentences_cosine():
    import numpy as np

    from scripts.research import ablate_use as ablation
    question = np.array([1.0, 0.0], dtype=np.float32)
    passages = np.array([[0.6, 0.8], [0.8, 0.6]], dtype=np.float32)
    sentences = [np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), np.zeros((0, 2), dtype=np.float32)]
    assert ablation.use_scores(question, passages, sentences, mode="passage").tolist() == pytest.approx([0.6, 0.8])
    # the first passage's best sentence (1.0) lifts it from 0.6 level with the second, which has no sentence and keeps its 0.8
    assert ablation.use_scores(question, passages, sentences, mode="passage+sentence").tolist() == pytest.approx([0.8, 0.8])
    with pytest.raises(ValueError, match="passage"):
        ablation.use_scores(question, passages, sentences, mode="sentence")


def test_ablate_use_scores_each_text_once_and_weights_the_scores():
    import numpy as np

    from scripts.research import ablate_use as ablation
    model = _WordVectors({"Wann landet Putin?": [1, 0, 0, 0], "Putin landet um 11 Uhr in Alaska.": [0.8, 0.6, 0, 0]})
    calls: list[list[str]] = []

    def encode(texts):
        calls.append(list(texts))
        return model.embed_queries(texts)

    scorer = ablation.UseScorer(encode, weight=0.5, mode="passage+sentence")
    passage = "Putin landet um 11 Uhr in Alaska."  # one sentence: passage and best sentence are the same text
    assert scorer.score("Wann landet Putin?", [passage, passage]).tolist() == pytest.approx([0.4, 0.4])
    assert scorer.score("Wann landet Putin?", [passage]).tolist() == pytest.approx([0.4])
    assert sorted(t for call in calls for t in call) == sorted(["Wann landet Putin?", passage])  # each text encoded once
    assert ablation.added(np.array([0.7, 0.6]), np.array([0.1, 0.3])).tolist() == pytest.approx([0.8, 0.9])


def test_eval_sentence_choice_abstention_reports_each_signal_per_half():
    import numpy as np

    from scripts.research import eval_sentence_choice as choice

    axes = {"P1": [1.0, 0.0, 0.0], "P2": [0.0, 1.0, 0.0], "P3": [0.0, 0.0, 1.0]}
    sentences = {p: [f"{p} s"] for p in axes}
    items = [{"language": language, "half": half, "question": f"{language}-{p}", "sentences": sentences[p], "paragraph": p}
             for language in ("en", "de") for p, half in (("P1", "A"), ("P2", "A"), ("P3", "B"))]
    # each question points at its own paragraph, and a little at the next one (its nearest wrong paragraph)
    following = {"P1": "P2", "P2": "P3", "P3": "P1"}
    questions = np.array([np.add(axes[it["paragraph"]], np.multiply(0.5, axes[following[it["paragraph"]]])) for it in items])

    class Embedder:
        def embed_passages(self, texts):
            return np.array([axes[t] for t in texts])

    class Backwards:  # the reranker prefers the wrong paragraph's sentence
        def score(self, question, texts):
            own = question.split("-")[1]
            return np.array([0.1 if t.startswith(own) else 0.9 for t in texts])

    vectors = {f"{p} s": np.array(v) for p, v in axes.items()}
    report = choice.abstention(items, questions, vectors, Embedder(), Backwards())
    for language in ("en", "de"):
        for half in ("all", "A", "B"):
            assert report[language][half] == {"bi_encoder_auc": 1.0, "reranker_auc": 0.0}, (language, half)
    assert choice.abstention(items, questions, vectors, Embedder(), None)["de"]["B"] == {"bi_encoder_auc": 1.0}


def _tiny_xquad(folder: Path) -> Path:
    """A two-language SQuAD pair like ../shared/eval/xquad-dev: 4 articles (halves A, B, A, B), one question each."""
    facts = [("Alpen", "Die Zugspitze ist 2962 Meter hoch.", "Wie hoch ist die Zugspitze?", "How high is the Zugspitze?"),
             ("Rhein", "Der Rhein ist 1233 Kilometer lang.", "Wie lang ist der Rhein?", "How long is the Rhine?"),
             ("Kaffee", "Kaffee wurde zuerst in Äthiopien getrunken.", "Wo wurde Kaffee zuerst getrunken?",
              "Where was coffee first drunk?"),
             ("Mond", "Der Mond ist 384400 Kilometer entfernt.", "Wie weit ist der Mond entfernt?", "How far is the moon?")]
    folder.mkdir(parents=True, exist_ok=True)
    for language, column in (("de", 2), ("en", 3)):
        data = [{"title": fact[0], "paragraphs": [{"context": fact[1], "qas": [
            {"id": fact[0], "question": fact[column], "answers": [{"text": fact[1], "answer_start": 0}]}]}]} for fact in facts]
        (folder / f"xquad.{language}.json").write_text(json.dumps({"data": data}), encoding="utf-8")
    return folder


def test_eval_abstention_asks_each_question_with_and_without_its_article(tmp_path, env):
    xquad = _tiny_xquad(tmp_path / "xquad")
    env = {**env, "QABOT_RERANKER": ""}  # the tiny model has no reranker: the relevance signal alone
    index = tmp_path / "index"
    _run("scripts.evaluate", "--de", str(xquad / "xquad.de.json"), "--en", str(xquad / "xquad.en.json"),
         "--keep-index", str(index), "--no-recall-50", env=env, cwd=tmp_path)
    _run("scripts.research.eval_abstention", "--index", str(index), "--xquad", str(xquad), "--keep", "1.0",
         "--work", str(tmp_path / "work"), "--output", str(tmp_path / "report.json"), env=env, cwd=tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "report.rows.jsonl").read_text().splitlines()]
    assert Counter((r["language"], r["case"]) for r in rows) == {(lang, case): 4 for lang in ("en", "de")
                                                                 for case in ("answers", "absent")}
    assert all(r["reranker"] is None for r in rows) and "reranker" not in report["de"]
    relevance = report["de"]["relevance"]
    assert relevance["kept_answerable_A"] == 1.0, "--keep 1.0: the threshold keeps every answerable question of A"
    assert 0.0 <= relevance["auc_all"] <= 1.0 and set(relevance) >= {"auc_A", "auc_B", "threshold_from_A", "answered_absent_B"}
    assert index.is_dir() and not (tmp_path / "work" / "without").exists(), "the copies are removed, the index kept"


def test_eval_abstention_threshold_keeps_the_asked_share():
    from scripts.research import eval_abstention as abstention

    values = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    assert abstention.threshold_keeping(values, 1.0) == 0.0
    assert abstention.threshold_keeping(values, 0.9) == pytest.approx(0.1)
    assert abstention.threshold_keeping(values, 0.25) == pytest.approx(0.7), "3 of 10 reach it: at least the share"
    rows = [{"language": "de", "half": h, "case": c, "relevance": v, "reranker": 1 - v}
            for h in ("A", "B") for c, v in (("answers", 0.9), ("answers", 0.8), ("absent", 0.85), ("absent", 0.1))]
    de = abstention.summarise(rows, keep=1.0)["de"]
    assert de["relevance"]["threshold_from_A"] == 0.8 and de["relevance"]["answered_absent_B"] == 0.5
    assert de["relevance"]["auc_B"] == 0.75 and de["reranker"]["auc_B"] == 0.25


def test_soup_adapters_merges_to_the_mean_of_the_merged_models(tmp_path, capsys):
    import numpy as np

    from qabot.models.reranker_build import merge, read_adapter, write_adapter
    from scripts.research import soup_adapters

    rng = np.random.default_rng(3)
    base = {"layer.0.q.weight": rng.normal(size=(6, 5)), "layer.1.q.weight": rng.normal(size=(6, 5)),
            "classifier.weight": rng.normal(size=(1, 6))}
    folders = []
    for i, (rank, alpha) in enumerate(((2, 4), (3, 3))):
        tensors = {f"layer.{j}.q.{ab}": rng.normal(size=(rank, 5) if ab == "lora_A" else (6, rank))
                   for j in (0, 1) for ab in ("lora_A", "lora_B")} | {"classifier.weight": rng.normal(size=(1, 6))}
        write_adapter(tensors, tmp_path / f"a{i}", rank=rank, alpha=alpha, max_length=96, prefixes=True)
        folders.append(tmp_path / f"a{i}")
    assert soup_adapters.main([*map(str, folders), "--out", str(tmp_path / "soup")]) == 0
    config, soup = read_adapter(tmp_path / "soup")
    assert (config["rank"], config["alpha"]) == (5, 5) and config["prefixes"] is True
    merged = [merge(base, tensors, scaling=c["alpha"] / c["rank"]) for c, tensors in map(read_adapter, folders)]
    souped = merge(base, soup, scaling=1.0)
    for name in base:
        np.testing.assert_allclose(souped[name], (merged[0][name] + merged[1][name]) / 2, atol=5e-3)
    assert not np.allclose(souped["layer.0.q.weight"], merged[0]["layer.0.q.weight"], atol=0.1)

    write_adapter({"layer.0.q.lora_A": np.ones((2, 5)), "layer.0.q.lora_B": np.ones((6, 2))}, tmp_path / "other",
                  rank=2, alpha=4, max_length=96, prefixes=True)
    assert soup_adapters.main([str(folders[0]), str(tmp_path / "other"), "--out", str(tmp_path / "bad")]) == 2
    assert "adapt different matrices" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_eval_passage_pool_scores_each_question_and_text_once():
    import numpy as np

    from scripts.research import eval_passage_pool as pool

    class Counting:
        name, precision = "counting", "fp32"

        def __init__(self) -> None:
            self.calls: list[tuple[str, list[str]]] = []

        def score(self, question, texts, *, deadline=None):
            self.calls.append((question, list(texts)))
            return np.array([len(t) / 10 for t in texts], dtype=np.float32)

    inner = Counting()
    cached = pool.CachedReranker(inner)
    assert cached.score("q", ["a", "bb", "a"]).tolist() == pytest.approx([0.1, 0.2, 0.1])
    assert cached.score("q", ["bb", "ccc"]).tolist() == pytest.approx([0.2, 0.3])  # only "ccc" is new
    assert cached.score("other", ["a"]).tolist() == pytest.approx([0.1])  # another question: scored again
    assert inner.calls == [("q", ["a", "bb"]), ("q", ["ccc"]), ("other", ["a"])]
    assert (cached.pairs, cached.name, cached.precision) == (4, "counting", "fp32")


def test_eval_passage_pool_names_a_missing_index(tmp_path, capsys):
    from scripts.research import eval_passage_pool as pool

    with pytest.raises(SystemExit) as exit_:
        pool.main(["--index", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "nowhere" in err and "--keep-index" in err


def test_reachable_answers_for_a_listening_host_and_names_the_reason_otherwise():
    import socket

    from scripts import reachable
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert reachable.unreachable(f"http://127.0.0.1:{port}/simple", timeout=5) is None
    closed = reachable.unreachable(f"http://127.0.0.1:{port}/simple", timeout=5)  # the listener is gone
    assert closed is not None and closed.startswith(f"127.0.0.1:{port}: ")
    assert reachable.unreachable("file:///opt/pypi/simple") is None  # local: pip reads it itself
    assert reachable.unreachable("https:///whl/cpu") == "https:///whl/cpu: no host in the URL"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "reachable.py"), f"http://127.0.0.1:{port}/"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith(f"cannot reach 127.0.0.1:{port}: "), done.stderr
