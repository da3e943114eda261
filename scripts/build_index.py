#!/usr/bin/env python
"""Rebuild or update an index from an archive folder: what an operator's cron job calls.

    .venv/bin/python scripts/build_index.py /data/news --index index/news [--prune] [--rebuild] [--json]

Unchanged articles are skipped, changed ones replaced, so running it nightly on a
growing archive only embeds what is new. Exit status: 0 when the run finished (bad
files are listed, not fatal), 1 on an error that stopped it, 2 when --fail-on-problems
is given and some input was skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from qabot.config import Settings
from qabot.errors import QabotError
from qabot.indexer import build_index
from qabot.models.embedding import embedder_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path, help="archive folder (read recursively) or file")
    parser.add_argument("--index", type=Path, default=None, help="index folder (default: QABOT_INDEX)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--prune", action="store_true", help="remove articles no longer in the archive")
    parser.add_argument("--rebuild", action="store_true", help="build a fresh index beside the live one and swap it in")
    parser.add_argument("--fail-on-problems", action="store_true", help="exit 2 when any input was skipped")
    args = parser.parse_args(argv)

    settings = Settings.load(index_dir=args.index)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        embedder = embedder_for(settings)
        report = build_index(
            args.archive, settings.index_dir, embedder=embedder, chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size, progress=sys.stderr.isatty(),
            prune=args.prune, rebuild=args.rebuild, checkpoint_seconds=settings.checkpoint_seconds,
        )
    except QabotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; progress was saved, run the same command again to resume", file=sys.stderr)
        return 130
    summary = report.to_dict()
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(
            f"{summary['articles_indexed']} indexed, {summary['articles_unchanged']} unchanged, "
            f"{summary['articles_skipped']} skipped, {summary['articles_removed']} removed, "
            f"{summary['chunks_embedded']} chunks embedded "
            f"in {summary['seconds']} s -> {summary['index']}"
        )
        for problem in report.errors:
            print(f"  {problem}", file=sys.stderr)
    return 2 if args.fail_on_problems and report.articles_skipped else 0


if __name__ == "__main__":
    sys.exit(main())
