"""qabot.evaluation (scripts/evaluate.py): the pure metric functions, and a whole run on a tiny SQuAD file with the fake embedder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qabot.evaluation import command, dev_set, metrics, run
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No QABOT_* variable or ./.env of the developer's may change the settings under test."""
    for name in [n for n in os.environ if n.startswith("QABOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _squad(questions: list[tuple[str, str]]) -> dict:
    """Two titles, three paragraphs; ``questions`` are (id, text) in the order of the paragraphs' qas."""
    paragraphs = [
        ("Rhein_Fluss", "Der Rhein ist 1233 Kilometer lang. Er mündet in die Nordsee bei Rotterdam."),
        ("Rhein_Fluss", "Basel liegt am Rheinknie. Die Stadt hat etwa 175000 Einwohner."),
        ("Kaffee", "Kaffee stammt ursprünglich aus Äthiopien. Die Bohnen werden geröstet und gemahlen."),
    ]
    answers = ["1233 Kilometer", "175000", "Äthiopien"]
    data: dict[str, dict] = {}
    for (title, context), (qid, text), answer in zip(paragraphs, questions, answers):
        entry = data.setdefault(title, {"title": title, "paragraphs": []})
        qas = [{"id": qid, "question": text, "answers": [{"text": answer, "answer_start": context.index(answer)}]}]
        entry["paragraphs"].append({"context": context, "qas": qas})
    return {"version": "1.1", "data": list(data.values())}


GERMAN = [("q1", "Wie lang ist der Rhein?"), ("q2", "Wie viele Einwohner hat Basel?"), ("q3", "Woher stammt Kaffee?")]
ENGLISH = [("q1", "How long is the Rhine?"), ("q2", "How many inhabitants does Basel have?"), ("q3", "Where does coffee come from?")]


def test_distinct_and_gold_rank_count_articles_not_chunks():
    ranked = ["a#0", "a#0", "b#1", "a#0", "c#2"]
    assert metrics.distinct(ranked) == ["a#0", "b#1", "c#2"]
    assert metrics.gold_rank(ranked, "b#1") == 2
    assert metrics.gold_rank(ranked, "c#2") == 3
    assert metrics.gold_rank(ranked, "zzz") is None


def test_recall_and_mrr_on_hand_made_ranks():
    ranks = [1, 2, None, 6, 11]
    assert metrics.paragraph_recall(ranks, 1) == pytest.approx(1 / 5)
    assert metrics.paragraph_recall(ranks, 5) == pytest.approx(2 / 5)
    assert metrics.paragraph_recall(ranks, 10) == pytest.approx(3 / 5)
    assert metrics.mrr_at(ranks, 10) == pytest.approx((1 + 1 / 2 + 1 / 6) / 5)
    assert metrics.mrr_at(ranks, 1) == pytest.approx(1 / 5)
    assert metrics.paragraph_recall([], 1) == 0.0 and metrics.mrr_at([]) == 0.0


def test_sentence_hit_ignores_case_and_whitespace():
    sentence = "Der Rhein ist 1233   Kilometer\nlang."
    assert metrics.sentence_hit(sentence, ["1233 kilometer"])
    assert metrics.sentence_hit(sentence, ["nope", "RHEIN IST"])
    assert not metrics.sentence_hit(sentence, ["1234 Kilometer"])
    assert not metrics.sentence_hit(None, ["Rhein"])
    assert not metrics.sentence_hit(sentence, ["", "  "])  # an empty gold answer never matches


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 21)]
    assert metrics.percentile(values, 0.5) == 10.0
    assert metrics.percentile(values, 0.95) == 19.0
    assert metrics.percentile([3.0], 0.95) == 3.0
    assert metrics.percentile([], 0.5) == 0.0


def test_read_squad_makes_one_article_per_paragraph():
    articles, questions = dev_set.read_squad(_squad(GERMAN))
    assert [a.id for a in articles] == ["Rhein_Fluss#0", "Rhein_Fluss#1", "Kaffee#0"]
    assert articles[0].title == "Rhein Fluss"
    assert questions["q2"] == dev_set.Gold("Wie viele Einwohner hat Basel?", "Rhein_Fluss#1", ("175000",), "A")
    # The halves follow the article's index in data: Rhein_Fluss (0) is A, Kaffee (1) is B.
    assert [questions[q].half for q in ("q1", "q2", "q3")] == ["A", "A", "B"]


def _result(rank: int | None, half: str, *, hit: bool = False, ms: float = 10.0) -> object:
    return metrics.Result(id="q", language="de", question="?", paragraph_id="p", rank=rank, rank_50=rank, top_ids=(),
                           sentence="s" if hit else None, answers=("x",), hit=hit, ask_ms=ms, half=half)


def test_summaries_per_half_and_recall_at_50():
    results = [_result(1, "A", hit=True), _result(7, "A"), _result(30, "B", hit=True), _result(None, "B")]
    summary = metrics.summarise_language(results)
    assert (summary["n"], summary["recall@1"], summary["recall@10"], summary["recall@50"]) == (4, 0.25, 0.5, 0.75)
    assert summary["mrr@10"] == pytest.approx((1 + 1 / 7) / 4, abs=1e-4)
    a, b = summary["halves"]["A"], summary["halves"]["B"]
    assert (a["n"], a["recall@1"], a["recall@10"], a["sentence_hit@1"]) == (2, 0.5, 1.0, 0.5)
    assert (b["n"], b["recall@10"], b["recall@50"], b["abstention_rate"]) == (2, 0.0, 0.5, 0.5)
    text = metrics.table({"settings": {}, "de": summary})
    rows = text.splitlines()
    assert rows[0].startswith("| lang | half | n | R@1 |") and len(rows) == 2 + 3
    assert rows[2].startswith("| de | all | 4 | 0.250 |") and rows[4].startswith("| de | B | 2 |")


def test_input_differences_name_each_input():
    recorded = run.index_inputs(Path("a.json"), Path("news.csv"), 100, model="m", chunk_tokens=200, chunk_overlap=1)
    wanted = run.index_inputs(Path("a.json"), Path("news.csv"), 50, model="m", chunk_tokens=120, chunk_overlap=1)
    assert run.input_differences(recorded, recorded) == []
    assert run.input_differences(recorded, wanted) == ["distractor_limit 100 (this run: 50)", "chunk_tokens 200 (this run: 120)"]


def _write(tmp_path: Path) -> tuple[Path, Path]:
    de, en = tmp_path / "de.json", tmp_path / "en.json"
    de.write_text(json.dumps(_squad(GERMAN), ensure_ascii=False), encoding="utf-8")
    english = _squad(ENGLISH)  # English contexts would differ; only the questions are used
    en.write_text(json.dumps(english), encoding="utf-8")
    return de, en


def test_main_prints_sane_metrics_for_both_languages(tmp_path, capsys):
    de, en = _write(tmp_path)
    out, per_question = tmp_path / "eval.json", tmp_path / "q.jsonl"
    argv = ["--de", str(de), "--en", str(en), "--cache-dir", str(tmp_path / "cache"),
            "--output", str(out), "--per-question", str(per_question)]
    assert command.main(argv, embedder=HashEmbedder()) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report == json.loads(out.read_text(encoding="utf-8"))
    assert report["settings"]["model"] == "hash-test" and report["settings"]["search_k"] == 10
    assert report["settings"]["precision"] == {"embedder": None, "reranker": None}  # the fake has none; no e5, no reranker
    assert "| de | A | 2 |" in captured.err and "| en | B | 1 |" in captured.err  # the table, on stderr
    assert report["settings"]["indexed_articles"] == 3 and report["settings"]["paragraphs"] == 3
    for language in ("de", "en"):
        metrics = report[language]
        assert metrics["n"] == 3
        for key in ("recall@1", "recall@5", "recall@10", "recall@50", "mrr@10", "sentence_hit@1", "abstention_rate"):
            assert 0.0 <= metrics[key] <= 1.0, key
        assert metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] <= metrics["recall@50"]
        assert metrics["halves"]["A"]["n"] == 2 and metrics["halves"]["B"]["n"] == 1
        assert metrics["recall@1"] <= metrics["mrr@10"] <= metrics["recall@10"]
        assert 0.0 <= metrics["ask_ms_p50"] <= metrics["ask_ms_p95"]
    # Three paragraphs only: every gold paragraph is in the top 5; the German words match exactly.
    assert report["de"]["recall@5"] == 1.0 and report["de"]["recall@1"] > 0
    rows = [json.loads(line) for line in per_question.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6 and {r["language"] for r in rows} == {"de", "en"}
    assert {"id", "rank", "sentence", "hit", "ask_ms", "paragraph_id", "half"} <= set(rows[0])
    assert {r["id"]: r["half"] for r in rows} == {"q1": "A", "q2": "A", "q3": "B"}


class CountingEmbedder(HashEmbedder):
    """The fake embedder, counting the passages and questions it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.passages = 0
        self.queries: list[str] = []

    def embed_passages(self, texts, **options):
        self.passages += len(texts)
        return super().embed_passages(texts, **options)

    def embed_queries(self, texts):
        self.queries += texts
        return super().embed_queries(texts)


def test_each_question_is_embedded_once_for_ask_and_search_and_each_ask_embeds_it(tmp_path, capsys):
    de, _ = _write(tmp_path)
    embedder = CountingEmbedder()
    assert command.main(["--de", str(de)], embedder=embedder) == 0
    capsys.readouterr()
    # The warm-up ask, then per question one embedding, shared by its (timed) ask and its search.
    assert embedder.queries == [GERMAN[0][1], *(text for _, text in GERMAN)]


NEWS = ("Sport;'Der FC Basel gewann am Samstag mit zwei zu null.'\nWirtschaft;'Der Kaffeepreis stieg erneut.'\n"
        "Kultur;'Das Theater in Basel zeigt ein neues Stück.'\n")


def test_limit_and_kept_index_are_reused(tmp_path, capsys):
    de, _ = _write(tmp_path)
    news = tmp_path / "news.csv"
    news.write_text(NEWS, encoding="utf-8")
    argv = ["--de", str(de), "--limit", "2", "--keep-index", str(tmp_path / "ix"),
            "--distractors", str(news), "--distractor-limit", "2"]
    embedder = CountingEmbedder()
    assert command.main(argv, embedder=embedder) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["de"]["n"] == 2 and "en" not in first
    assert first["settings"]["articles_embedded_now"] == 3 + 2 and first["settings"]["indexed_articles"] == 5
    assert first["settings"]["sentences"] == first["settings"]["sentences_embedded_now"] > 0
    assert first["settings"]["distractors_read"] == 2 and first["settings"]["distractor_limit"] == 2
    recorded = json.loads((tmp_path / "ix" / run.INPUTS_NAME).read_text(encoding="utf-8"))
    assert recorded["distractor_limit"] == 2 and recorded["de"] == str(de.resolve()) and recorded["model"] == "hash-test"
    embedded = embedder.passages
    assert command.main(argv, embedder=embedder) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["settings"]["articles_embedded_now"] == 0 and second["settings"]["chunks_embedded_now"] == 0
    assert second["settings"]["sentences_embedded_now"] == 0 and second["settings"]["sentences"] == first["settings"]["sentences"]
    assert embedder.passages == embedded  # nothing re-embedded, sentences included
    assert second["de"]["recall@5"] == first["de"]["recall@5"]


@pytest.mark.parametrize(("change", "named"), [
    (["--distractor-limit", "3"], "distractor_limit 2 (this run: 3)"),
    (["--chunk-tokens", "120"], "chunk_tokens"),
])
def test_a_kept_index_built_from_other_inputs_is_refused_in_one_line(tmp_path, capsys, change, named):
    de, _ = _write(tmp_path)
    news = tmp_path / "news.csv"
    news.write_text(NEWS, encoding="utf-8")
    base = ["--de", str(de), "--keep-index", str(tmp_path / "ix"), "--distractors", str(news)]
    assert command.main([*base, "--distractor-limit", "2"], embedder=HashEmbedder()) == 0
    capsys.readouterr()
    argv = [*base, *change] if "--distractor-limit" in change else [*base, "--distractor-limit", "2", *change]
    assert command.main(argv, embedder=HashEmbedder()) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: ") and "built from other inputs" in captured.err and named in captured.err


def test_distractor_limit_needs_distractors(tmp_path):
    de, _ = _write(tmp_path)
    with pytest.raises(SystemExit):
        command.main(["--de", str(de), "--distractor-limit", "2"], embedder=HashEmbedder())


def test_the_evaluation_never_touches_the_sentence_cache():
    source = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "qabot" / "evaluation").glob("*.py"))
    assert "_cache" not in source and "--warm-cache" not in source


def test_distractors_join_the_same_index(tmp_path, capsys):
    de, _ = _write(tmp_path)
    news = tmp_path / "news.csv"
    news.write_text("Sport;'Der FC Basel gewann am Samstag mit zwei zu null.'\nWirtschaft;'Der Kaffeepreis stieg erneut.'\n",
                    encoding="utf-8")
    assert command.main(["--de", str(de), "--distractors", str(news)], embedder=HashEmbedder()) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["indexed_articles"] == 5 and report["settings"]["distractors_read"] == 2
    assert report["de"]["n"] == 3


def test_a_kept_index_with_other_articles_is_refused(tmp_path, capsys):
    de, _ = _write(tmp_path)
    news = tmp_path / "news.csv"
    news.write_text("Sport;'Der FC Basel gewann am Samstag mit zwei zu null.'\n", encoding="utf-8")
    base = ["--de", str(de), "--keep-index", str(tmp_path / "ix")]
    assert command.main([*base, "--distractors", str(news)], embedder=HashEmbedder()) == 0
    capsys.readouterr()
    (tmp_path / "ix" / run.INPUTS_NAME).unlink()  # as a kept index from before the inputs were recorded
    assert command.main(base, embedder=HashEmbedder()) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "not in this run's inputs" in captured.err


def test_missing_input_is_one_error_line(tmp_path, capsys):
    assert command.main(["--de", str(tmp_path / "nope.json")], embedder=HashEmbedder()) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.json" in err


def _copying_llm(messages: list[dict]) -> str:
    """A fake LLM: the first sentence of passage [1], copied (kept by any check), then the same
    sentence citing [9], a passage that does not exist (removed by any check)."""
    from qabot.ingest.sentences import split_sentences

    first_block = messages[-1]["content"].split("Passages:\n\n", 1)[1].split("\n\n")[0]
    sentence = split_sentences(first_block.split("\n", 1)[1])[0].text
    return f"{sentence} [1] {sentence} [9]"


def test_an_llm_adds_reply_faithfulness(tmp_path, capsys, monkeypatch):
    from tests.fake_openai import KEY, FakeOpenAI

    de, en = _write(tmp_path)
    monkeypatch.setenv("QABOT_LLM_API_KEY", KEY)
    with FakeOpenAI(responder=_copying_llm) as llm:
        argv = ["--de", str(de), "--en", str(en), "--cache-dir", str(tmp_path / "cache"),
                "--llm-url", llm.base_url, "--llm-model", "fake-model", "--llm-timeout", "5"]
        assert command.main(argv, embedder=HashEmbedder()) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["settings"]["models"]["llm"] == "fake-model" and KEY not in out
    refined = 0
    for language in ("de", "en"):
        metrics = report[language]["llm"]
        # The HashEmbedder cannot judge a paraphrase, so the fake copies a passage sentence: what is
        # measured here is the counting (one of two sentences kept), not the meaning check.
        assert metrics["refined"] == report[language]["n"] - round(report[language]["abstention_rate"] * 3)
        assert metrics["llm_sentences"] == 2 * metrics["refined"] and metrics["faithfulness"] == 0.5
        assert metrics["reply_llm_rate"] == 1.0 and 0 < metrics["refine_ms_p50"] <= metrics["refine_ms_p95"]
        refined += metrics["refined"]
    assert refined > 0 and len(llm.requests) == refined
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in llm.requests)


def test_no_recall_50_skips_the_wide_search_and_reports_it_unmeasured(tmp_path, capsys):
    de, _ = _write(tmp_path)
    assert command.main(["--de", str(de), "--cache-dir", str(tmp_path / "cache"), "--no-recall-50"], embedder=HashEmbedder()) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["settings"]["wide_k"] is None
    assert report["de"]["recall@50"] is None and report["de"]["halves"]["A"]["recall@50"] is None
    assert report["de"]["recall@10"] is not None
    row = next(line for line in out.err.splitlines() if line.startswith("| de | all |"))
    assert row.split("|")[7].strip() == "-"  # the R@50 cell: not measured, not 0.000


def test_without_an_llm_there_is_no_llm_report(tmp_path, capsys):
    de, _ = _write(tmp_path)
    assert command.main(["--de", str(de), "--cache-dir", str(tmp_path / "cache")], embedder=HashEmbedder()) == 0
    report = json.loads(capsys.readouterr().out)
    assert "llm" not in report["de"] and report["settings"]["models"]["llm"] is None


class _RecordingRetriever:
    """Stands in for a Retriever in ask_all: answers every question from one article, records each search's k."""

    embedder = None
    llm = None

    def __init__(self) -> None:
        self.searches: list[int] = []

    def ask(self, text: str, *, k: int):
        from types import SimpleNamespace

        return SimpleNamespace(sentence="Der Rhein ist 1233 Kilometer lang.", found=True)

    def search(self, text: str, *, k: int):
        from types import SimpleNamespace

        self.searches.append(k)
        return [SimpleNamespace(article_id="Rhein_Fluss#0")]


def test_ask_all_ranks_wide_for_recall_at_50_unless_told_not_to():
    question = dev_set.Question(id="q1", language="de", text=GERMAN[0][1], paragraph_id="Rhein_Fluss#0", answers=("1233 Kilometer",))
    retriever = _RecordingRetriever()
    [result] = run.ask_all(retriever, [question], k=5)
    assert retriever.searches == [10, 50] and (result.rank, result.rank_50, result.hit) == (1, 1, True)
    retriever = _RecordingRetriever()
    [result] = run.ask_all(retriever, [question], k=5, wide_k=None)
    assert retriever.searches == [10] and (result.rank, result.rank_50) == (1, None)
