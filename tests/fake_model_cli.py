"""``qabot`` exactly as the console script runs it, but with the fast HashEmbedder as its model.

For subprocess tests that start many ``qabot index`` processes (kill -9 at a dozen points)
and cannot pay for importing torch in each. Only the model is swapped, and only here:
production settings cannot reach the HashEmbedder (``QABOT_MODEL=hash-test`` is refused).

    python tests/fake_model_cli.py --log-level INFO index ARCHIVE --index DIR

In-process tests (click's CliRunner) get the same swap from :func:`use_hash_embedder`.
With ``FAKE_STOP_AT`` set, the process stops itself at a named step of its run (tests/stop_at.py):
the kill tests say where, instead of racing the run with a timer.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script (python tests/fake_model_cli.py): the repository root, for tests.fakes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qabot.models import embedding
from qabot.models.embedding import Embedder
from tests.fakes import HashEmbedder


def _hash_embedder(settings: object, model: str | None = None) -> Embedder:
    return HashEmbedder()


def use_hash_embedder(monkeypatch: object) -> None:
    """The same swap inside a test process (``monkeypatch`` is pytest's fixture), for CliRunner tests."""
    monkeypatch.setattr(embedding, "embedder_for", _hash_embedder)  # type: ignore[attr-defined]


if __name__ == "__main__":
    embedding.embedder_for = _hash_embedder  # the CLI imports it from the module when it needs a model
    from tests.stop_at import install_from_env

    install_from_env()  # FAKE_STOP_AT: stop at a named step of the run (tests/stop_at.py)
    from qabot.frontends.cli import main

    main()
