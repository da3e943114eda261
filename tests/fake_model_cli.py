"""``qabot`` exactly as the console script runs it, but with the fast HashEmbedder as its model.

For subprocess tests that start many ``qabot index`` processes (kill -9 at a dozen points)
and cannot pay for importing torch in each. Only the model is swapped, and only here:
production settings cannot reach the HashEmbedder (``QABOT_MODEL=hash-test`` is refused).

    python tests/fake_model_cli.py --log-level INFO index ARCHIVE --index DIR

In-process tests (click's CliRunner) get the same swap from :func:`use_hash_embedder`.
With ``FAKE_MODEL_SECONDS_PER_TEXT`` set, embedding also sleeps that long per passage, as a real
model spends its time: the kill tests need a run whose middle (writing the new generation) is
most of it, not the interpreter's start-up.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a script (python tests/fake_model_cli.py): the repository root, for tests.fakes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qabot.models import embedding
from qabot.models.embedding import Embedder
from tests.fakes import HashEmbedder


class _PacedHashEmbedder(HashEmbedder):
    """The HashEmbedder, taking ``seconds`` per passage it embeds."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        time.sleep(self.seconds * len(texts))
        return super().embed_passages(texts, batch_size=batch_size, show_progress=show_progress)


def _hash_embedder(settings: object, model: str | None = None) -> Embedder:
    seconds = float(os.environ.get("FAKE_MODEL_SECONDS_PER_TEXT", "0"))
    return _PacedHashEmbedder(seconds) if seconds > 0 else HashEmbedder()


def use_hash_embedder(monkeypatch: object) -> None:
    """The same swap inside a test process (``monkeypatch`` is pytest's fixture), for CliRunner tests."""
    monkeypatch.setattr(embedding, "embedder_for", _hash_embedder)  # type: ignore[attr-defined]


if __name__ == "__main__":
    embedding.embedder_for = _hash_embedder  # the CLI imports it from the module when it needs a model
    from tests.stop_at import install_from_env

    install_from_env()  # FAKE_STOP_AT: stop at a named step of the run (tests/stop_at.py)
    from qabot.frontends.cli import main

    main()
