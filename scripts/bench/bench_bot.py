#!/usr/bin/env python
"""Answer latency of the Telegram bot with many users asking at once, through a fake Bot API.

    .venv/bin/python -m scripts.bench.bench_bot [--users 20] [--rounds 3] [--index DIR]

The real python-telegram-bot client polls a fake Bot API on 127.0.0.1 (tests/fake_bot_api.py);
each round queues one question per user at the same moment and times, per user, queueing
-> the bot's reply arriving at the fake server. Without --index, the bundled sample archive
is indexed into a temporary folder with the configured model (multilingual-e5-small).
Prints one JSON object: p50/p95/max in milliseconds, and what was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from qabot.answering.retriever import Retriever
from qabot.config import Secret, Settings
from qabot.frontends.bot import build_application
from qabot.frontends.cli import sample_archive
from qabot.indexer import build_index
from qabot.models.embedding import embedder_for
from scripts.bench.sample_questions import QUESTIONS
from tests.fake_bot_api import TOKEN, FakeBotApi, ask_all_at_once, running


async def bench(retriever: Retriever, *, users: int, rounds: int) -> dict[str, object]:
    latencies: list[float] = []
    with FakeBotApi() as api:
        ids = list(range(1001, 1001 + users))
        settings = Settings.from_env({}, telegram_token=Secret(TOKEN), telegram_api_url=api.base_url,
                                     allowed_users=frozenset(ids), rate_burst=rounds + len(QUESTIONS) + 1)
        app = build_application(settings, retriever, timeout=10.0)
        async with running(app):
            await ask_all_at_once(api, {ids[0]: QUESTIONS[0]})  # warm-up: first-call costs are not latency
            alone = [(await ask_all_at_once(api, {ids[0]: q}))[ids[0]] for q in QUESTIONS]
            for _ in range(rounds):
                wave = {user: QUESTIONS[i % len(QUESTIONS)] for i, user in enumerate(ids)}
                before = {user: len(api.replies(user)) for user in ids}
                started = time.monotonic()
                measured = await ask_all_at_once(api, wave, timeout=120)
                latencies.extend(measured.values())
                assert all(len(api.replies(u)) > before[u] for u in ids)
                wall = time.monotonic() - started
    ordered = sorted(latencies)
    return {
        "one_user_p50_ms": round(statistics.median(alone) * 1000),
        "users": users, "rounds": rounds, "answers": len(latencies),
        "p50_ms": round(statistics.median(ordered) * 1000), "p95_ms": round(statistics.quantiles(ordered, n=20)[18] * 1000),
        "max_ms": round(ordered[-1] * 1000), "last_round_wall_s": round(wall, 2),
        "model": retriever.stats()["model"], "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="users asking at the same moment (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="waves of questions (default 3)")
    parser.add_argument("--index", type=Path, default=None, help="an existing index (default: index the sample)")
    args = parser.parse_args(argv)
    settings = Settings.load()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.index
        if folder is None:
            folder = Path(tmp) / "index"
            embedder = embedder_for(settings)
            build_index(sample_archive(), folder, embedder=embedder)
        with Retriever.open(folder, settings=settings) as retriever:
            result = asyncio.run(bench(retriever, users=args.users, rounds=args.rounds))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
