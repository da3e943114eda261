"""Running the evaluation: index the dev set's paragraphs (and distractors) into a folder, optionally
copied into PostgreSQL, then ask every question through the public Retriever and score the answers.

``evaluate(args, index_dir)`` takes the command's options (:mod:`qabot.evaluation.command`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from qabot.answering.citations import split_claims
from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.documents import Answer, Article, Problem
from qabot.errors import StoreError
from qabot.evaluation.dev_set import Question, load_questions
from qabot.evaluation.metrics import SEARCH_K, WIDE_K, Result, distinct, gold_rank, sentence_hit, summarise_language
from qabot.indexer import IndexReport, build_index
from qabot.ingest.archive import iter_articles
from qabot.locations import PgUrl
from qabot.models.embedding import Embedder, embedder_for
from qabot.store.backends import exists, open_reader
from qabot.store.copying import copy_index

INPUTS_NAME = "eval-inputs.json"  # in a kept index folder: what it was built from


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
    if not exists(index_dir):
        return
    expected = {a.id for a in articles}
    if distractors is not None:
        expected.update(a.id for a in distractor_articles(distractors, distractor_limit, on_problem=lambda p: None))
    with open_reader(index_dir) as store:
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
    with open_reader(index_dir) as folder:
        wanted = folder.article_hashes()
    started = time.perf_counter()
    if exists(url):
        with open_reader(url) as held:
            if held.article_hashes() != wanted:
                raise StoreError(f"{url} holds another index than {index_dir}; give an empty database")
    else:
        copy_index(index_dir, url)
    return {"store": "postgresql", "copy_seconds": round(time.perf_counter() - started, 2)}


def ask_all(retriever: Retriever, questions: list[Question], *, k: int, wide_k: int | None = WIDE_K) -> list[Result]:
    """Ask every question (timed), then rank it with ``search(k=10)`` and ``search(k=wide_k)``
    (for recall@50; ``wide_k`` None or 0: not ranked, ``rank_50`` None)."""
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


def evaluate(args: argparse.Namespace, index_dir: Path, *, settings: Settings, embedder: Embedder | None = None) -> dict[str, Any]:
    """The report of one run: ``args`` are the command's options, ``settings`` the settings they give."""
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
        wide_k = WIDE_K if getattr(args, "recall_50", True) else None
        results = {lang: ask_all(retriever, qs, k=settings.top_k, wide_k=wide_k) for lang, qs in questions.items()}
        hybrid = retriever.hybrid
        models = retriever.models.to_dict()  # the optional seams actually loaded (null: unset or failed)
        # what ran, not what was asked for: "auto" is bf16 where the CPU does bf16, else fp32
        precision = {"embedder": getattr(embedder, "precision", None), "reranker": getattr(retriever.reranker, "precision", None)}
    report = {
        "settings": {
            "model": embedder.name, "models": models, "rerank_pool": settings.rerank_pool, "k": settings.top_k, "search_k": SEARCH_K, "wide_k": wide_k, "hybrid": hybrid,
            "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap,
            "batch_size": settings.batch_size, "device": settings.device, "precision": precision, "limit": args.limit,
            "halves": "A: questions of the even-numbered articles (0-based index in data), B: odd",
            "de": str(args.de), "en": str(args.en) if args.en else None,
            "distractors": str(args.distractors) if args.distractors else None,
            "distractor_limit": args.distractor_limit if args.distractors else None,
            "index_dir": str(args.keep_index) if args.keep_index else None, **index,
        },
        **{lang: summarise_language(rs, wide=bool(wide_k)) for lang, rs in results.items()},
    }
    if args.per_question:
        with args.per_question.open("w", encoding="utf-8") as out:
            for rs in results.values():
                for r in rs:
                    out.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
    return report
