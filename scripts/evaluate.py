#!/usr/bin/env python
"""Evaluate retrieval and answer sentences on SQuAD-format data (e.g. XQuAD), through qabot's public API.

    .venv/bin/python scripts/evaluate.py --de ../shared/eval/xquad-dev/xquad.de.json \\
        [--en ../shared/eval/xquad-dev/xquad.en.json] [--distractors ../shared/corpora/10kgnad-test.csv] \\
        [--distractor-limit 1000] [--limit 50] [--model ID] [--keep-index /tmp/eval-ix] [--output eval.json] \\
        [--per-question q.jsonl] [--store-url postgresql://user:password@host/db]

Every German paragraph becomes an article (id ``{title}#{paragraph index}``) in a temporary
index (or ``--keep-index DIR``, reused when it exists); ``--distractors`` mixes another archive
(only its first ``--distractor-limit`` articles, when given) into the same index. A kept index
remembers what it was built from (``eval-inputs.json`` in the folder: the German file, the
distractors and their limit, the model, the chunk settings); a run with other inputs is refused.
Each question (German, and the parallel English one with the same id) is asked with
``Retriever.ask`` (timed, embedding the question included) and ranked with
``Retriever.search(question, k=10)`` (the answer's own rerank pool) and ``k=50`` (for
recall@50), which reuse the question's vector.
Prints one JSON object: the settings, then per language, overall and per half, n, paragraph
recall@1/@5/@10/@50, MRR@10, answer-sentence hit@1 (a German gold answer appears in the
sentence, case and whitespace ignored), abstention rate and p50/p95 ``ask`` latency; the same
as a table on stderr. The halves are the team's tune/confirm split: "A" holds the questions of
the even-numbered articles of the SQuAD file (0-based index in ``data``), "B" the odd ones.
With ``--store-url`` the folder index is copied into PostgreSQL (``qabot copy``, no re-embedding)
and every question is asked there: the same figures for the PostgreSQL store.
Data files are read where they lie, never copied into the project.
With an LLM (``--llm-url``/``--llm-model`` or QABOT_LLM_*), each found answer is also refined
and every language reports ``llm``: reply faithfulness (the share of the LLM's sentences that
the citation check kept), how often the checked reply replaced the extractive one, and the
refine latency (the LLM call plus the check).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

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
from qabot.locations import PgUrl
from qabot.models.embedding import Embedder, embedder_for
from qabot.store import Store, is_index
from qabot.store.copying import copy_index
from qabot.store.opening import exists, open_reader

INPUTS_NAME = "eval-inputs.json"  # in a kept index folder: what it was built from

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling eval_metrics, also when loaded by path

from eval_metrics import (
    SEARCH_K,
    WIDE_K,
    Question,
    Result,
    distinct,
    gold_rank,
    read_squad,
    sentence_hit,
    summarise_language,
    table,
)

# Re-exported: the tests and the other evaluation scripts reach the metrics through this script.
from eval_metrics import Gold as Gold
from eval_metrics import mrr_at as mrr_at
from eval_metrics import percentile as percentile
from eval_metrics import recall_at as recall_at

# -- running ----------------------------------------------------------------------------


def load_questions(de: Path, en: Path | None, *, limit: int | None) -> tuple[list[Article], dict[str, list[Question]]]:
    """The paragraphs to index and the questions per language (first ``limit`` of each)."""
    articles, german = read_squad(json.loads(de.read_text(encoding="utf-8")))
    by_language = {"de": [Question(qid, "de", g.question, g.paragraph_id, g.answers, g.half) for qid, g in german.items()]}
    if en is not None:
        _, english = read_squad(json.loads(en.read_text(encoding="utf-8")))
        missing = [qid for qid in english if qid not in german]
        if missing:
            print(f"warning: {len(missing)} English question ids are not in {de}; skipped", file=sys.stderr)
        # The answer sentence comes from the German paragraphs, so it is scored on German answers.
        by_language["en"] = [
            Question(qid, "en", g.question, german[qid].paragraph_id, german[qid].answers, german[qid].half)
            for qid, g in english.items() if qid in german
        ]
    if limit is not None:
        by_language = {lang: qs[:limit] for lang, qs in by_language.items()}
    return articles, by_language


def _write_jsonl(articles: Iterable[Article], path: Path) -> Path:
    """``articles`` as a JSONL archive (scratch space only) that reads back with the same ids and hashes."""
    with path.open("w", encoding="utf-8") as out:
        for a in articles:
            record = {"id": a.id, "title": a.title, "date": a.date, "url": a.url, "source": a.source, "text": a.text}
            out.write(json.dumps({k: v for k, v in record.items() if v is not None}, ensure_ascii=False) + "\n")
    return path


def distractor_articles(distractors: Path, limit: int | None, *, on_problem: Callable[[Problem], None]) -> Iterator[Article]:
    """The distractor archive's articles, only the first ``limit`` (reading stops there) when given."""
    return islice(iter_articles(distractors, on_problem=on_problem), limit)


def build(articles: list[Article], distractors: Path | None, index_dir: Path, *, embedder: Embedder, settings: Settings,
          distractor_limit: int | None = None) -> dict[str, Any]:
    """Index the paragraphs (and distractors) into ``index_dir``; unchanged articles are skipped."""
    problems: list[Problem] = []

    def index(archive: Path) -> IndexReport:
        return build_index(
            archive, index_dir, embedder=embedder, chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap,
            batch_size=settings.batch_size, progress=sys.stderr.isatty(), on_problem=problems.append,
        )

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qabot-eval-") as scratch:
        reports = [index(_write_jsonl(articles, Path(scratch) / "paragraphs.jsonl"))]
        if distractors is not None and distractor_limit is None:
            reports.append(index(distractors))
        elif distractors is not None:  # build_index reads whole archives: the first N go through scratch space
            chosen = distractor_articles(distractors, distractor_limit, on_problem=problems.append)
            reports.append(index(_write_jsonl(chosen, Path(scratch) / "distractors.jsonl")))
    for problem in problems[:5]:
        print(f"warning: {problem}", file=sys.stderr)
    if len(problems) > 5:
        print(f"warning: ... and {len(problems) - 5} more input problems", file=sys.stderr)
    return {
        "paragraphs": len(articles),
        "indexed_articles": reports[-1].articles_total,
        "chunks": reports[-1].chunks_total,
        "articles_embedded_now": sum(r.articles_indexed for r in reports),
        "sentences": reports[-1].sentences_total,
        "chunks_embedded_now": sum(r.chunks_embedded for r in reports),
        "sentences_embedded_now": sum(r.sentences_embedded for r in reports),
        "distractors_read": reports[1].articles_read if distractors is not None else 0,
        "input_problems": len(problems),
        "index_build_seconds": round(time.perf_counter() - started, 2),
    }


def index_inputs(de: Path, distractors: Path | None, distractor_limit: int | None, *, model: str,
                 chunk_tokens: int, chunk_overlap: int) -> dict[str, Any]:
    """What an evaluation index is built from: what a kept index records and a reuse must match."""
    return {
        "de": str(de.resolve()),
        "distractors": str(distractors.resolve()) if distractors is not None else None,
        "distractor_limit": distractor_limit if distractors is not None else None,
        "model": model, "chunk_tokens": chunk_tokens, "chunk_overlap": chunk_overlap,
    }


def input_differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Each input that differs, as ``name RECORDED (this run: WANTED)``."""
    return [f"{key} {json.dumps(recorded.get(key))} (this run: {json.dumps(value)})"
            for key, value in wanted.items() if recorded.get(key) != value]


def check_kept_index(index_dir: Path, articles: list[Article], distractors: Path | None, *,
                     distractor_limit: int | None = None, inputs: dict[str, Any] | None = None) -> None:
    """Before adding to a kept index, refuse one built from other inputs, or holding articles this run
    does not index: they would skew the numbers, and the folder might be a real index given by mistake."""
    recorded_path = index_dir / INPUTS_NAME
    if inputs is not None and recorded_path.is_file():
        diffs = input_differences(json.loads(recorded_path.read_text(encoding="utf-8")), inputs)
        if diffs:
            raise StoreError(f"the index at {index_dir} was built from other inputs: {'; '.join(diffs)}; "
                             "use another --keep-index folder or the same inputs")
    if not is_index(index_dir):
        return
    expected = {a.id for a in articles}
    if distractors is not None:
        expected.update(a.id for a in distractor_articles(distractors, distractor_limit, on_problem=lambda p: None))
    with Store.open(index_dir, check=False) as store:
        extra = set(store.article_hashes()) - expected
    if extra:
        raise StoreError(f"the index at {index_dir} holds {len(extra)} articles not in this run's "
                         f"inputs (e.g. {min(extra)!r}); use another --keep-index folder")


def record_inputs(index_dir: Path, inputs: dict[str, Any]) -> None:
    """Write what the kept index is built from (before building: an interrupted build is covered too)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    (index_dir / INPUTS_NAME).write_text(json.dumps(inputs, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class QuestionOnce:
    """An embedder that remembers the last question's vector, so the ``search`` that follows an
    ``ask`` of the same question does not embed it again (half the model time of a run).
    ``forget`` before each timed ``ask``: its latency always includes embedding the question."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._last: tuple[str, np.ndarray] | None = None

    def __getattr__(self, name: str) -> Any:  # name, dimension, embed_passages, count_tokens, ...
        return getattr(self.embedder, name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 1 and self._last is not None and self._last[0] == texts[0]:
            return self._last[1].copy()
        vectors = self.embedder.embed_queries(texts)
        self._last = (texts[0], vectors.copy()) if len(texts) == 1 else None
        return vectors

    def forget(self) -> None:
        self._last = None


def in_postgres(index_dir: Path, url: PgUrl) -> dict[str, Any]:
    """Copy the folder index into the database at ``url`` unless it holds the same articles already."""
    with Store.open(index_dir) as folder:
        wanted = folder.article_hashes()
    started = time.perf_counter()
    if exists(url):
        with open_reader(url) as held:
            if held.article_hashes() != wanted:  # type: ignore[attr-defined]
                raise StoreError(f"{url} holds another index than {index_dir}; give an empty database")
    else:
        copy_index(index_dir, url)
    return {"store": "postgresql", "copy_seconds": round(time.perf_counter() - started, 2)}


def ask_all(retriever: Retriever, questions: list[Question], *, k: int, wide_k: int | None = WIDE_K) -> list[Result]:
    """Ask every question (timed), then rank it with ``search(k=10)`` and ``search(k=wide_k)``
    (for recall@50; ``wide_k`` None: not ranked, ``rank_50`` None)."""
    from tqdm import tqdm

    results = []
    language = questions[0].language if questions else "-"
    tty = sys.stderr.isatty()
    for done, q in enumerate(tqdm(questions, desc=f"asking ({language})", disable=not tty)):
        if not tty and done and done % 100 == 0:  # a background run still shows signs of life
            print(f"asked {done}/{len(questions)} ({language})", file=sys.stderr, flush=True)
        if isinstance(retriever.embedder, QuestionOnce):
            retriever.embedder.forget()
        started = time.perf_counter()
        answer = retriever.ask(q.text, k=k)
        elapsed = 1000 * (time.perf_counter() - started)
        ranked = distinct(p.article_id for p in retriever.search(q.text, k=SEARCH_K))
        wide = distinct(p.article_id for p in retriever.search(q.text, k=wide_k)) if wide_k else []
        llm = _refined(retriever, answer) if retriever.llm is not None and answer.found else {}
        results.append(Result(
            id=q.id, language=q.language, question=q.text, paragraph_id=q.paragraph_id,
            rank=gold_rank(ranked, q.paragraph_id), rank_50=gold_rank(wide, q.paragraph_id), top_ids=tuple(ranked[:5]), sentence=answer.sentence,
            answers=q.answers, hit=sentence_hit(answer.sentence, q.answers), ask_ms=round(elapsed, 2), half=q.half, **llm,
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
    inputs = index_inputs(args.de, args.distractors, args.distractor_limit, model=embedder.name,
                          chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap)
    check_kept_index(index_dir, articles, args.distractors, distractor_limit=args.distractor_limit, inputs=inputs)
    if args.keep_index is not None:
        record_inputs(index_dir, inputs)
    index = build(articles, args.distractors, index_dir, embedder=embedder, settings=settings,
                  distractor_limit=args.distractor_limit)
    where: Path | PgUrl = index_dir
    if args.store_url is not None:  # the same index, copied into PostgreSQL (vectors and all): questions are asked there
        where = PgUrl(args.store_url)
        index |= in_postgres(index_dir, where)
    with Retriever.open(where, settings=settings, embedder=QuestionOnce(embedder)) as retriever:
        if any(questions.values()):  # warm-up: the first call pays for lazy initialisation
            retriever.ask(next(qs for qs in questions.values() if qs)[0].text)
        results = {lang: ask_all(retriever, qs, k=settings.top_k) for lang, qs in questions.items()}
        hybrid = retriever.hybrid
        models = retriever.models.to_dict()  # the optional seams actually loaded (null: unset or failed)
    report = {
        "settings": {
            "model": embedder.name, "models": models, "rerank_pool": settings.rerank_pool, "k": settings.top_k, "search_k": SEARCH_K, "hybrid": hybrid,
            "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap,
            "batch_size": settings.batch_size, "device": settings.device, "limit": args.limit,
            "halves": "A: questions of the even-numbered articles (0-based index in data), B: odd",
            "de": str(args.de), "en": str(args.en) if args.en else None,
            "distractors": str(args.distractors) if args.distractors else None,
            "distractor_limit": args.distractor_limit if args.distractors else None,
            "index_dir": str(args.keep_index) if args.keep_index else None, **index,
        },
        **{lang: summarise_language(rs) for lang, rs in results.items()},
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
    parser.add_argument("--distractor-limit", type=int, metavar="N", help="only the first N articles of --distractors")
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
    parser.add_argument("--keep-index", type=Path, help="build the index here and reuse it next time")
    parser.add_argument("--store-url", metavar="URL", help="ask from a PostgreSQL copy of the index (an empty database, "
                        "or one holding this index's copy from an earlier run): postgresql://user:password@host/db")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--per-question", type=Path, help="write one JSON line per question here")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.distractor_limit is not None and (args.distractor_limit < 1 or args.distractors is None):
        parser.error("--distractor-limit needs --distractors and must be at least 1")
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
    print(table(report), file=sys.stderr)
    write_report(report, args.output)
    return 0


def write_report(report: dict[str, Any], output: Path | None) -> None:
    """``report`` as indented JSON on stdout, and into ``output`` when given (this and the ablation scripts)."""
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if output:
        output.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
