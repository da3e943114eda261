#!/usr/bin/env python
"""Exit 0 when a package index URL answers, 1 (with the reason on stderr) when it cannot be reached.

    python scripts/reachable.py https://download.pytorch.org/whl/cpu [--timeout 5]

The Makefile asks before it adds PyTorch's CPU index to the torch install: where that host cannot
be reached (no internet, only a registry mirror that pip is configured with), pip would retry it
five times for torch and each of its dependencies (~75 s measured, for nothing) before using its
own indexes anyway. Only http(s) URLs are probed (a TCP connection to the host's port, name
lookup included, within ``--timeout`` seconds); any other URL (``file://``, a path) counts as
reachable, since pip reads it locally. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 5.0


def unreachable(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Why ``url`` cannot be reached, or None when it answers (or is not an http(s) URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    if not parts.hostname:
        return f"{url}: no host in the URL"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[str | None] = []

    def connect() -> None:  # in a thread: a name lookup has no timeout of its own
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{parts.hostname}:{port}: {exc}")

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"{parts.hostname}:{port}: no answer within {timeout:g} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"seconds (default {DEFAULT_TIMEOUT:g})")
    args = parser.parse_args(argv)
    reason = unreachable(args.url, timeout=args.timeout)
    if reason is not None:
        print(f"cannot reach {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
