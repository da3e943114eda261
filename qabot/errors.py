"""qabot's exceptions.

The tree::

    QabotError                  anything qabot raises on purpose; the CLI prints it as one line
    ├── ConfigError             a setting is missing or has a bad value
    ├── ArchiveError            an archive file or line cannot be read (carries path and line)
    ├── ModelError              the embedding model cannot be provisioned or loaded
    ├── StoreError              the index folder is missing, unreadable or inconsistent
    │   └── IndexMismatchError  the index was built with another model or chunker settings
    └── QuestionError           the question is empty or unusable

Edges translate these: the CLI prints ``error: <message>`` and exits 1, the bot
replies kindly and logs with the traceback.
"""

from __future__ import annotations


class QabotError(Exception):
    """Base class for every error qabot raises on purpose."""


class ConfigError(QabotError):
    """A setting is missing or has a bad value."""


class ArchiveError(QabotError):
    """An archive file (or one line of it) cannot be read.

    ``path`` and ``line`` say where; ``reason`` says why, in a few words.
    """

    def __init__(self, path: str, reason: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {reason}")


class ModelError(QabotError):
    """The embedding model cannot be provisioned or loaded."""


class StoreError(QabotError):
    """The index folder is missing, unreadable or inconsistent."""


class IndexMismatchError(StoreError):
    """The index was built with another model or other chunker settings."""


class QuestionError(QabotError):
    """The question is empty or cannot be asked."""
