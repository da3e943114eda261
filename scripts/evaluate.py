#!/usr/bin/env python
"""Evaluate retrieval and answer sentences on SQuAD-format data (e.g. XQuAD), through qabot's public API.

    .venv/bin/python scripts/evaluate.py --de ../shared/eval/xquad-dev/xquad.de.json \\
        [--en ../shared/eval/xquad-dev/xquad.en.json] [--distractors ../shared/corpora/10kgnad-test.csv] \\
        [--limit 50] [--model ID] [--keep-index /tmp/eval-ix] [--output eval.json] [--per-question q.jsonl]

Every German paragraph becomes an article (id ``{title}#{paragraph index}``) in a temporary
index (or ``--keep-index DIR``, reused when it exists); ``--distractors`` mixes another archive
into the same index. Each question (German, and the parallel English one with the same id) is
asked with ``Retriever.ask`` (timed) and ranked with ``Retriever.search(question, k=10)``.
Prints one JSON object: the settings, then per language n, paragraph recall@1/@5/@10, MRR@10,
answer-sentence hit@1 (a German gold answer appears in the sentence, case and whitespace
ignored), abstention rate and p50/p95 ``ask`` latency. Data files are read where they lie,
never copied. Each ``ask`` starts with an empty sentence-vector cache, so latency does not
depend on question order (``--warm-cache`` keeps it, as a long-running bot does).
With an LLM (``--llm-url``/``--llm-model`` or QABOT_LLM_*), each found answer is also refined
and every language reports ``llm``: reply faithfulness (the share of the LLM's sentences that
the citation check kept), how often the checked reply replaced the extractive one, and the
refine latency (the LLM call plus the check).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qabot import (
    Answer,
    Article,
    IndexReport,
    Problem,
    QabotError,
    Retriever,
    Settings,
    build_index,
)
from qabot.answering.citations import split_claims
from qabot.errors import StoreError
from qabot.ingest.archive import iter_articles
from qabot.models.embedding import Embedder, embedder_for
from qabot.store import Store, is_index

SEARCH_K = 10


@dataclass(frozen=True)
class Question:
    """One question: its id, language, text, gold paragraph id and (German) gold answers."""

    id: str
    language: str
    text: str
    paragraph_id: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    """What happened to one question (one line of ``--per-question``)."""

    id: str
    language: str
    question: str
    paragraph_id: str
    rank: int | None  # 1-based rank of the gold paragraph among distinct article ids, None if not in the top 10
    top_ids: tuple[str, ...]
    sentence: str | None
    answers: tuple[str, ...]
    hit: bool
    ask_ms: float
    reply_source: str | None = None  # with an LLM: "llm" or "extractive" (after refine)
    llm_kept: int = 0  # the LLM's sentences that passed the citation check
    llm_sentences: int = 0  # the LLM's sentences in all (0: no call, a failure, or "not in the archive")
    refine_ms: float | None = None


# -- pure functions ---------------------------------------------------------------------


def read_squad(data: dict[str, Any]) -> tuple[list[Article], dict[str, tuple[str, str, tuple[str, ...]]]]:
    """Articles (one per paragraph) and question id -> (question, paragraph id, answers) from SQuAD JSON."""
    articles: list[Article] = []
    questions: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for entry in data["data"]:
        for index, paragraph in enumerate(entry["paragraphs"]):
            paragraph_id = f"{entry['title']}#{index}"
            articles.append(Article(id=paragraph_id, title=entry["title"].replace("_", " "), text=paragraph["context"]))
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                questions[qa["id"]] = (qa["question"], paragraph_id, answers)
    return articles, questions


def distinct(ids: Iterable[str]) -> list[str]:
    """``ids`` without repeats, first occurrence kept (several chunks of one article rank apart)."""
    return list(dict.fromkeys(ids))


def gold_rank(ranked_ids: Sequence[str], gold: str) -> int | None:
    """1-based rank of ``gold`` among the distinct ids, or None when it is missing."""
    ids = distinct(ranked_ids)
    return ids.index(gold) + 1 if gold in ids else None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose gold paragraph ranked within the top ``k``."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def mrr_at(ranks: Sequence[int | None], k: int = SEARCH_K) -> float:
    """Mean reciprocal rank, counting ranks beyond ``k`` (or missing) as 0."""
    return sum(1 / r for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def sentence_hit(sentence: str | None, answers: Iterable[str]) -> bool:
    """True when any gold answer appears in ``sentence``, ignoring case and runs of whitespace."""
    if not sentence:
        return False
    found = _norm(sentence)
    return any(_norm(a) and _norm(a) in found for a in answers)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarise(results: Sequence[Result]) -> dict[str, Any]:
    """The metrics for one language's results."""
    ranks = [r.rank for r in results]
    latencies = [r.ask_ms for r in results]
    n = len(results)
    return {
        "n": n,
        "recall@1": round(recall_at(ranks, 1), 4),
        "recall@5": round(recall_at(ranks, 5), 4),
        "recall@10": round(recall_at(ranks, 10), 4),
        "mrr@10": round(mrr_at(ranks, SEARCH_K), 4),
        "sentence_hit@1": round(sum(r.hit for r in results) / n, 4) if n else 0.0,
        "abstention_rate": round(sum(r.sentence is None for r in results) / n, 4) if n else 0.0,
        "ask_ms_p50": round(statistics.median(latencies), 1) if latencies else 0.0,
        "ask_ms_p95": round(percentile(latencies, 0.95), 1),
        **({"llm": summarise_llm(results)} if any(r.reply_source is not None for r in results) else {}),
    }


def summarise_llm(results: Sequence[Result]) -> dict[str, Any]:
    """With an LLM: reply faithfulness (the share of its sentences the check kept), how often its
    checked reply replaced the extractive one, and what refine cost."""
    refined = [r for r in results if r.reply_source is not None]
    sentences = sum(r.llm_sentences for r in refined)
    costs = [r.refine_ms for r in refined if r.refine_ms is not None]
    return {
        "refined": len(refined),
        "llm_sentences": sentences,
        "faithfulness": round(sum(r.llm_kept for r in refined) / sentences, 4) if sentences else None,
        "reply_llm_rate": round(sum(r.reply_source == "llm" for r in refined) / len(refined), 4) if refined else 0.0,
        "refine_ms_p50": round(statistics.median(costs), 1) if costs else 0.0,
        "refine_ms_p95": round(percentile(costs, 0.95), 1),
    }


# -- running ----------------------------------------------------------------------------


def load_questions(de: Path, en: Path | None, *, limit: int | None) -> tuple[list[Article], dict[str, list[Question]]]:
    """The paragraphs to index and the questions per language (first ``limit`` of each)."""
    articles, german = read_squad(json.loads(de.read_text(encoding="utf-8")))
    by_language = {"de": [Question(qid, "de", text, pid, answers) for qid, (text, pid, answers) in german.items()]}
    if en is not None:
        _, english = read_squad(json.loads(en.read_text(encoding="utf-8")))
        missing = [qid for qid in english if qid not in german]
        if missing:
            print(f"warning: {len(missing)} English question ids are not in {de}; skipped", file=sys.stderr)
        # The answer sentence comes from the German paragraphs, so it is scored on German answers.
        by_language["en"] = [
            Question(qid, "en", text, german[qid][1], german[qid][2]) for qid, (text, _, _) in english.items() if qid in german
        ]
    if limit is not None:
        by_language = {lang: qs[:limit] for lang, qs in by_language.items()}
    return articles, by_language


def build(articles: list[Article], distractors: Path | None, index_dir: Path, *, embedder: Embedder, settings: Settings) -> dict[str, Any]:
    """Index the paragraphs (and distractors) into ``index_dir``; unchanged articles are skipped."""
    problems: list[Problem] = []

    def index(archive: Path) -> IndexReport:
        return build_index(
            archive, index_dir, embedder=embedder, chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap,
            batch_size=settings.batch_size, progress=sys.stderr.isatty(), on_problem=problems.append,
        )

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qabot-eval-") as scratch:
        archive = Path(scratch) / "paragraphs.jsonl"
        with archive.open("w", encoding="utf-8") as out:
            for a in articles:
                out.write(json.dumps({"id": a.id, "title": a.title, "text": a.text}, ensure_ascii=False) + "\n")
        reports = [index(archive)]
    if distractors is not None:
        reports.append(index(distractors))
    for problem in problems[:5]:
        print(f"warning: {problem}", file=sys.stderr)
    if len(problems) > 5:
        print(f"warning: ... and {len(problems) - 5} more input problems", file=sys.stderr)
    return {
        "paragraphs": len(articles),
        "indexed_articles": reports[-1].articles_total,
        "chunks": reports[-1].chunks_total,
        "articles_embedded_now": sum(r.articles_indexed for r in reports),
        "distractors_read": reports[1].articles_read if distractors is not None else 0,
        "input_problems": len(problems),
        "index_build_seconds": round(time.perf_counter() - started, 2),
    }


def check_kept_index(index_dir: Path, articles: list[Article], distractors: Path | None) -> None:
    """Before adding to a kept index, refuse one holding articles this run does not index.

    They would skew the numbers, and the folder might be a real index given by mistake.
    """
    if not is_index(index_dir):
        return
    expected = {a.id for a in articles}
    if distractors is not None:
        expected.update(a.id for a in iter_articles(distractors, on_problem=lambda p: None))
    with Store.open(index_dir, check=False) as store:
        extra = set(store.article_hashes()) - expected
    if extra:
        raise StoreError(f"the index at {index_dir} holds {len(extra)} articles not in this run's "
                         f"inputs (e.g. {min(extra)!r}); use another --keep-index folder")


def fresh(r: Retriever) -> Retriever:
    """The same retriever (store, model, options) with an empty sentence-vector cache."""
    return Retriever(r.store, r.embedder, top_k=r.top_k, hybrid=r.hybrid, rerank=r.rerank, sentence_weight=r.sentence_weight,
                     min_score=r.min_score, reranker=r.reranker, rerank_pool=r.rerank_pool, reader=r.reader,
                     seam_seconds=r.seam_seconds)


def ask_all(retriever: Retriever, questions: list[Question], *, k: int, warm: bool = False) -> list[Result]:
    """Ask every question (timed; on a fresh cache unless ``warm``), then rank it with ``search(k=10)``."""
    from tqdm import tqdm

    results = []
    language = questions[0].language if questions else "-"
    tty = sys.stderr.isatty()
    for done, q in enumerate(tqdm(questions, desc=f"asking ({language})", disable=not tty)):
        if not tty and done and done % 100 == 0:  # a background run still shows signs of life
            print(f"asked {done}/{len(questions)} ({language})", file=sys.stderr, flush=True)
        asker = retriever if warm else fresh(retriever)  # not closed: it shares the store
        started = time.perf_counter()
        answer = asker.ask(q.text, k=k)
        elapsed = 1000 * (time.perf_counter() - started)
        ranked = distinct(p.article_id for p in asker.search(q.text, k=SEARCH_K))
        llm = _refined(retriever, answer) if retriever.llm is not None and answer.found else {}
        results.append(Result(
            id=q.id, language=q.language, question=q.text, paragraph_id=q.paragraph_id,
            rank=gold_rank(ranked, q.paragraph_id), top_ids=tuple(ranked[:5]), sentence=answer.sentence,
            answers=q.answers, hit=sentence_hit(answer.sentence, q.answers), ask_ms=round(elapsed, 2), **llm,
        ))
    return results


def _refined(retriever: Retriever, answer: Answer) -> dict[str, Any]:
    """The LLM step on one answer (timed): where the reply came from and how many sentences survived."""
    started = time.perf_counter()
    refined = retriever.refine(answer)
    kept = len(split_claims(refined.llm_reply)) if refined.llm_reply else 0
    return {"reply_source": refined.reply_source, "llm_kept": kept, "llm_sentences": kept + len(refined.unsupported),
            "refine_ms": round(1000 * (time.perf_counter() - started), 2)}


def evaluate(args: argparse.Namespace, index_dir: Path, *, embedder: Embedder | None = None) -> dict[str, Any]:
    settings = Settings.load(model=args.model, cache_dir=args.cache_dir, top_k=args.k,
                             chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap,
                             reranker=args.reranker, rerank_pool=args.rerank_pool, reader=args.reader,
                             llm_url=args.llm_url, llm_model=args.llm_model, llm_timeout=args.llm_timeout)
    articles, questions = load_questions(args.de, args.en, limit=args.limit)
    embedder = embedder if embedder is not None else embedder_for(settings)
    check_kept_index(index_dir, articles, args.distractors)
    index = build(articles, args.distractors, index_dir, embedder=embedder, settings=settings)
    with Retriever.open(index_dir, settings=settings, embedder=embedder) as retriever:
        if any(questions.values()):  # warm-up: the first call pays for lazy initialisation
            retriever.ask(next(qs for qs in questions.values() if qs)[0].text)
        results = {lang: ask_all(retriever, qs, k=settings.top_k, warm=args.warm_cache) for lang, qs in questions.items()}
        hybrid = retriever.hybrid
        models = retriever.models.to_dict()  # the optional seams actually loaded (null: unset or failed)
    report = {
        "settings": {
            "model": embedder.name, "models": models, "rerank_pool": settings.rerank_pool, "k": settings.top_k, "search_k": SEARCH_K, "hybrid": hybrid,
            "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap,
            "batch_size": settings.batch_size, "device": settings.device, "limit": args.limit,
            "sentence_cache": "warm" if args.warm_cache else "cold",
            "de": str(args.de), "en": str(args.en) if args.en else None,
            "distractors": str(args.distractors) if args.distractors else None,
            "index_dir": str(args.keep_index) if args.keep_index else None, **index,
        },
        **{lang: summarise(rs) for lang, rs in results.items()},
    }
    if args.per_question:
        with args.per_question.open("w", encoding="utf-8") as out:
            for rs in results.values():
                for r in rs:
                    out.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
    return report


def main(argv: list[str] | None = None, *, embedder: Embedder | None = None) -> int:
    """Run the evaluation; ``embedder`` (from Python, e.g. a test's fake) replaces ``--model``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--de", type=Path, required=True, help="German SQuAD-format file (paragraphs and questions)")
    parser.add_argument("--en", type=Path, help="English SQuAD-format file with the same question ids")
    parser.add_argument("--distractors", type=Path, help="an archive (file or folder) mixed into the same index")
    parser.add_argument("--limit", type=int, help="only the first N questions per language")
    parser.add_argument("--model", help="embedding model id or folder (default: QABOT_MODEL or multilingual-e5-small)")
    parser.add_argument("--cache-dir", type=Path, help="model cache (default: QABOT_CACHE_DIR or ~/.cache/qabot)")
    parser.add_argument("--k", type=int, help="passages per answer (default: QABOT_TOP_K)")
    parser.add_argument("--reranker", help="CrossEncoder id or folder (default: QABOT_RERANKER, else none)")
    parser.add_argument("--rerank-pool", type=int, help="candidates the reranker rescores (default: QABOT_RERANK_POOL)")
    parser.add_argument("--reader", help="question-answering model id or folder (default: QABOT_READER, else none)")
    parser.add_argument("--llm-url", help="OpenAI-compatible base URL (default: QABOT_LLM_URL, else no LLM)")
    parser.add_argument("--llm-model", help="the LLM's model name (default: QABOT_LLM_MODEL); the key: QABOT_LLM_API_KEY")
    parser.add_argument("--llm-timeout", type=float, help="seconds per LLM call (default: QABOT_LLM_TIMEOUT)")
    parser.add_argument("--chunk-tokens", type=int, help="chunk size (default: QABOT_CHUNK_TOKENS)")
    parser.add_argument("--chunk-overlap", type=int, help="chunk overlap in sentences (default: QABOT_CHUNK_OVERLAP)")
    parser.add_argument("--warm-cache", action="store_true", help="keep the sentence cache across questions")
    parser.add_argument("--keep-index", type=Path, help="build the index here and reuse it next time")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--per-question", type=Path, help="write one JSON line per question here")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.keep_index is not None:
            report = evaluate(args, args.keep_index, embedder=embedder)
        else:
            with tempfile.TemporaryDirectory(prefix="qabot-eval-index-") as folder:
                report = evaluate(args, Path(folder) / "index", embedder=embedder)
    except (QabotError, OSError, ValueError, KeyError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
