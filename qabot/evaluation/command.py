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
from pathlib import Path
from typing import Any

from qabot.config import Settings
from qabot.errors import QabotError
from qabot.evaluation.metrics import table
from qabot.evaluation.run import evaluate
from qabot.models.embedding import Embedder


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
    parser.add_argument("--no-recall-50", dest="recall_50", action="store_false",
                        help="skip the second search(k=50) that measures recall@50 (with --rerank-pool it "
                             "rescores 50 passages a question); the report gives recall@50 as null")
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
        settings = Settings.load(model=args.model, cache_dir=args.cache_dir, top_k=args.k,
                                 chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap,
                                 reranker=args.reranker, rerank_pool=args.rerank_pool, reader=args.reader,
                                 llm_url=args.llm_url, llm_model=args.llm_model, llm_timeout=args.llm_timeout)
        if args.keep_index is not None:
            report = evaluate(args, args.keep_index, settings=settings, embedder=embedder)
        else:
            with tempfile.TemporaryDirectory(prefix="qabot-eval-index-") as folder:
                report = evaluate(args, Path(folder) / "index", settings=settings, embedder=embedder)
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
