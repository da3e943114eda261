"""Stop a real `qabot index` process at a named step of its run, with a signal (for the kill tests).

``FAKE_STOP_AT=STEP:WHEN:N:SIGNAL`` (e.g. ``add:after:3:KILL``): the process sends itself SIGNAL
(KILL or INT) before or after the N-th call of STEP. Steps are the writer's own functions,
wrapped here, so the kill lands exactly where the test says, however fast the machine is:

``begin``      :func:`qabot.store.generations.begin` (a staging generation is made, staging.json written)
``add``        :meth:`qabot.store.store.Store.add` (one batch committed to SQLite)
``pg_add``     :meth:`qabot.store.postgres.store.PgStore.add` (one batch's transaction in PostgreSQL)
``checkpoint`` :func:`qabot.store.generations.checkpoint` (the vectors saved into the staging generation)
``delete``     :meth:`qabot.store.store.Store.delete_articles` (pruning)
``commit``     the manifest's rename in :func:`qabot.store.generations.publish` (the commit point)
``cleanup``    :func:`qabot.store.generations.cleanup` (older generations removed, after the commit)
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from typing import Any

from qabot.store import generations
from qabot.store.postgres.store import PgStore
from qabot.store.store import Store

STEPS: dict[str, tuple[Any, str]] = {
    "begin": (generations, "begin"),
    "add": (Store, "add"),
    "pg_add": (PgStore, "add"),
    "checkpoint": (generations, "checkpoint"),
    "delete": (Store, "delete_articles"),
    "commit": (generations, "write_manifest"),
    "cleanup": (generations, "cleanup"),
}


def spec(step: str, when: str, n: int, sig: str = "KILL") -> str:
    """The ``FAKE_STOP_AT`` value for stopping with ``sig`` ``when`` (before/after) the ``n``-th ``step``."""
    if step not in STEPS or when not in ("before", "after") or sig not in ("KILL", "INT"):
        raise ValueError(f"bad stop point {step}:{when}:{n}:{sig}")
    return f"{step}:{when}:{n}:{sig}"


def install(value: str) -> None:
    """Wrap the named step so that its ``n``-th call sends the signal (see the module docstring)."""
    step, when, n, sig = value.split(":")
    if sig == "INT":  # as at a terminal: a pytest-xdist worker ignores SIGINT, and its children inherit that
        signal.signal(signal.SIGINT, signal.default_int_handler)
    owner, name = STEPS[step]
    real: Callable[..., Any] = getattr(owner, name)
    calls = 0

    def stop() -> None:
        os.kill(os.getpid(), getattr(signal, f"SIG{sig}"))

    @functools.wraps(real)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == int(n) and when == "before":
            stop()
        result = real(*args, **kwargs)
        if calls == int(n) and when == "after":
            stop()
        return result

    setattr(owner, name, wrapped)


def install_from_env() -> None:
    if value := os.environ.get("FAKE_STOP_AT"):
        install(value)
