#!/usr/bin/env python
"""One round of ``qabot follow`` over N local pages (default 500): fetch + extract + archive + index.

    .venv/bin/python -m scripts.bench.bench_follow                 # 500 pages, the real model
    .venv/bin/python -m scripts.bench.bench_follow --pages 100 --hash-model

Serves N generated German pages and a sitemap listing them from 127.0.0.1 (tests/fake_site.py,
a test helper), follows the sitemap into a fresh archive and index in one round (no per-host
delay: the interval is politeness towards other people's servers, not work), then runs a second
round (the sitemap answers 304). Prints one JSON object: the round's seconds, the seconds and
share of each step (sources: reading the sitemap; fetch: HTTP; extract: trafilatura via
article_from_html; archive: the WARC record and the state commit; index: build_index over the
archive, which reads and extracts every page again and embeds the chunks), pages per second,
and the second round's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from qabot.follow import Fetcher, IndexUpdate, RoundOptions, follow
from qabot.indexer import build_index
from qabot.models.embedding import load_embedder
from tests.fake_site import FakeSite, article, sitemap
from tests.fakes import HashEmbedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--hash-model", action="store_true", help="the fast HashEmbedder instead of multilingual-e5-small")
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("QABOT_CACHE_DIR", Path.home() / ".cache" / "qabot")))
    args = parser.parse_args()

    embedder = HashEmbedder() if args.hash_model else load_embedder("multilingual-e5-small", cache_dir=args.cache_dir)
    with FakeSite() as site, tempfile.TemporaryDirectory() as tmp:
        paths = [f"/nachrichten/{i}.html" for i in range(args.pages)]
        for i, path in enumerate(paths):
            site.add_page(path, article(i))
        site.route("/sitemap.xml", body=sitemap([(site.url(p), article(i).date) for i, p in enumerate(paths)]),
                   content_type="application/xml")
        archive, index = Path(tmp) / "archive", Path(tmp) / "index"
        update = IndexUpdate(key=str(index), run=lambda: build_index(archive, index, embedder=embedder).to_dict())
        reports = []
        for _ in range(2):
            with Fetcher(user_agent="qabot/bench (+bench@example.org)", min_interval=0) as fetcher:
                started = time.perf_counter()
                [report] = follow([site.url("/sitemap.xml")], archive=archive, fetcher=fetcher, options=RoundOptions(),
                                  every=None, index=update, emit=lambda r: None)
                reports.append((report, time.perf_counter() - started))
    first, total = reports[0]
    assert first.new == args.pages, first.summary()
    steps = {name: round(seconds, 2) for name, seconds in first.steps.items()}
    print(json.dumps({
        "pages": args.pages, "model": embedder.name, "cpus": os.cpu_count(), "seconds": round(total, 2),
        "steps": steps, "share": {name: round(seconds / total, 3) for name, seconds in first.steps.items()},
        "other": round(total - sum(first.steps.values()), 2), "pages_per_second": round(args.pages / total, 1),
        "fetch_extract_archive_pages_per_second": round(args.pages / (total - first.steps.get("index", 0.0)), 1),
        "chunks": (first.index or {}).get("chunks_embedded"), "requests": first.requests,
        "second_round_seconds": round(reports[1][1], 3), "second_round_requests": reports[1][0].requests,
    }, indent=2))


if __name__ == "__main__":
    main()
