#!/usr/bin/env python
"""The keyword leg alone, on indexes of the same paragraphs: which full-text search finds the gold paragraph.

    .venv/bin/python -m scripts.research.keyword_leg --squad ../shared/eval/xquad-dev/xquad.de.json \\
        --squad ../shared/eval/xquad-dev/xquad.en.json --index /tmp/eval-ix --index postgresql://user:pw@host/db

Each index must hold the SQuAD file's paragraphs under evaluate.py's ids (``{title}#{index}``):
``scripts/evaluate.py --keep-index DIR`` builds one, ``--store-url URL`` copies it into PostgreSQL.
Every question's words (qabot's own ``terms``) go to the store's keyword search alone (the folder:
SQLite FTS5 + bm25; PostgreSQL: the German and simple text-search configurations + ts_rank)
and the gold paragraph's rank among the distinct articles of the top 10 is recorded. Prints one
JSON object: per index and file, overall and per half (A: even-numbered articles, B: odd),
n, recall@1, recall@10 and how often the leg found nothing at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qabot.answering.legs import terms
from qabot.evaluation.dev_set import read_squad
from qabot.evaluation.metrics import gold_rank, paragraph_recall
from qabot.store.backends import manifest_at, open_reader, parse_location

K = 10


def measure(index: str, squad: Path) -> dict:
    _, questions = read_squad(json.loads(squad.read_text(encoding="utf-8")))
    location = parse_location(index)
    with open_reader(location, model=manifest_at(location).model) as store:
        ranks: dict[str, list[int | None]] = {"all": [], "A": [], "B": []}
        empty = 0
        for gold in questions.values():
            hits = store.keyword_search_words(terms(gold.question), K)
            if not hits:
                empty += 1
            rows = store.chunk_rows([chunk_id for chunk_id, _ in hits])
            rank = gold_rank([rows[c]["article_id"] for c, _ in hits if c in rows], gold.paragraph_id)
            ranks["all"].append(rank)
            ranks[gold.half].append(rank)
    summary = {half: {"n": len(r), "recall@1": round(paragraph_recall(r, 1), 4), "recall@10": round(paragraph_recall(r, 10), 4)}
               for half, r in ranks.items()}
    summary["all"]["no_hits"] = empty
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--squad", type=Path, action="append", required=True, help="a SQuAD-format file (repeatable)")
    parser.add_argument("--index", action="append", required=True, help="an index folder or postgresql:// URL (repeatable)")
    args = parser.parse_args(argv)
    result = {str(parse_location(index)): {squad.name: measure(index, squad) for squad in args.squad} for index in args.index}
    for index, files in result.items():
        for name, halves in files.items():
            print(f"{index} {name}: " + "; ".join(f"{h} R@1 {v['recall@1']:.3f} R@10 {v['recall@10']:.3f}" for h, v in halves.items()),
                  file=sys.stderr)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
