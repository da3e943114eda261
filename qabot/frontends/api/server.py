"""`qabot serve`: open the index, then run uvicorn until SIGTERM or Ctrl-C.

The index is opened before the server starts listening, so a missing or broken index is one
``error:`` line and exit 1, and the first request does not pay for loading the model. On SIGTERM
uvicorn stops accepting connections, lets the requests in flight finish (up to ``DRAIN_SECONDS``),
runs the app's shutdown (the thread pool finishes its work) and returns; the process exits 0.
uvicorn re-raises the signal it caught after its own handler is removed; our SIGTERM handler
catches that one, so a drained shutdown is a clean exit, not "killed by SIGTERM".
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.frontends.api.app import create_app, default_workers
from qabot.frontends.api.auth import KeyRing, check_bind
from qabot.frontends.reloading import IndexOpener, RetrieverHolder

log = logging.getLogger("qabot.frontends.api")

DRAIN_SECONDS = 30.0


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, workers: int | None = None) -> None:
    """Serve ``settings.index_dir`` on ``host:port``; returns after a graceful shutdown.

    Raises ConfigError (before opening anything) when ``host`` is not loopback and no
    QABOT_API_KEYS are set; StoreError/ModelError when the index cannot be opened.
    """
    check_bind(host, KeyRing(settings.api_keys))
    quiet_logs()
    retriever = Retriever.open(settings.index_dir, settings=settings)
    try:
        retriever.warm_up()  # the first request is not the slow one
        holder = RetrieverHolder(retriever, index_dir=settings.index_dir, opener=IndexOpener(settings, retriever.embedder))
        app = create_app(settings, holder, workers=workers)
        stats = retriever.stats()
        threads = workers or default_workers()
        log.info("ready: %s articles, %s chunks, model %s, index %s; listening on http://%s:%d (%d retrieval threads, %s)",
                 stats["articles"], stats["chunks"], stats["model"], settings.index_dir, host, port, threads,
                 "API keys required" if settings.api_keys else "no keys: loopback only")
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, server_header=False,
                                timeout_graceful_shutdown=DRAIN_SECONDS, lifespan="on")
        previous = signal.signal(signal.SIGTERM, _drained)
        try:
            uvicorn.Server(config).run()
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        retriever.close()


def _drained(signum: int, frame: FrameType | None) -> None:
    """uvicorn's re-raised SIGTERM after the drain: the shutdown is complete, so exit normally."""
    log.info("stopped after SIGTERM; requests in flight were answered")


def quiet_logs() -> None:
    """Our one line per request instead of uvicorn's access log; httpx stays quiet; ours at INFO."""
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    api = logging.getLogger("qabot.frontends.api")
    if api.getEffectiveLevel() > logging.INFO:  # the request log is the service's log
        api.setLevel(logging.INFO)
