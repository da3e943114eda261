#!/usr/bin/env python
"""Latency and throughput of `qabot serve` at 1, 10 and 50 concurrent clients.

    .venv/bin/python -m scripts.bench.bench_api [--index DIR] [--clients 1,10,50] [--seconds 5] [--url URL]

Starts `python -m qabot serve` on a free loopback port (or uses a running server with --url;
pass QABOT_API_KEYS' key in QABOT_BENCH_KEY then), warms it up, and for each level runs that
many clients in a closed loop for --seconds, each posting /v1/ask questions about the sample
article over its own keep-alive connection. Without --index, the bundled sample archive is
indexed into a temporary folder with the configured model (multilingual-e5-small).
Prints one JSON object: per level p50/p95 latency in ms, requests/s and requests/s per core.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from scripts.bench.sample_questions import QUESTIONS


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def sample_index(folder: Path) -> Path:
    from qabot.config import Settings
    from qabot.frontends.cli import sample_archive
    from qabot.indexer import build_index
    from qabot.models.embedding import embedder_for

    build_index(sample_archive(), folder, embedder=embedder_for(Settings.load()))
    return folder


def start_server(index: Path) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "QABOT_API_RATE_BURST": "100000", "QABOT_API_RATE_PER_MINUTE": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "qabot", "serve", "--port", str(port), "--index", str(index)],
                            env=env, stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("error: the server did not start")
        try:
            if httpx.get(f"{url}/readyz", timeout=10).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)


def level(url: str, clients: int, seconds: float, headers: dict[str, str]) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=300, headers=headers) as http:
            http.get("/healthz")
            start.wait()
            n = i
            while time.monotonic() < stop_at[0]:
                began = time.perf_counter()
                response = http.post("/v1/ask", json={"question": QUESTIONS[n % len(QUESTIONS)]})
                took = (time.perf_counter() - began) * 1000
                with lock:
                    if response.status_code == 200:
                        latencies.append(took)
                    else:
                        errors += 1
                n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    ordered = sorted(latencies)
    rps = len(latencies) / elapsed
    return {
        "clients": clients, "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 2),
        "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1) if ordered else None,
        "requests_per_s": round(rps, 2), "requests_per_s_per_core": round(rps / cores(), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="index folder (default: the sample, indexed into a temporary folder)")
    parser.add_argument("--url", help="a running server instead of starting one")
    parser.add_argument("--clients", default="1,10,50", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each level runs")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {os.environ['QABOT_BENCH_KEY']}"} if os.environ.get("QABOT_BENCH_KEY") else {}
    with tempfile.TemporaryDirectory() as tmp:
        proc = None
        if args.url:
            url, index = args.url.rstrip("/"), None
        else:
            index = args.index or sample_index(Path(tmp) / "index")
            proc, url = start_server(index)
        try:
            for question in QUESTIONS:  # warm-up: first-call costs are not latency
                httpx.post(f"{url}/v1/ask", json={"question": question}, headers=headers, timeout=120)
            ready = httpx.get(f"{url}/readyz", timeout=30).json()
            levels = [level(url, int(n), args.seconds, headers) for n in args.clients.split(",")]
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(60)
    print(json.dumps({"url": url, "index": str(index) if index else None, "articles": ready.get("articles"),
                      "chunks": ready.get("chunks"), "cores": cores(), "seconds_per_level": args.seconds,
                      "levels": levels}, indent=2))


if __name__ == "__main__":
    main()
