"""Where an index is: a folder, or a PostgreSQL URL (``postgresql://…``) shown without its password.

Pure (imports nothing of qabot): parsing and redaction only; connecting is
:mod:`qabot.store.postgres.connection`. Settings, the CLI and the store all use it.
:func:`redact` masks the credentials of any other URL too (``http://user:password@host/v1``,
an LLM behind a proxy with basic auth), so one function makes every message safe to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("postgresql://", "postgres://")
_PASSWORD_IN_TEXT = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"((?:^|[?&\s])password=)[^&\s]*", re.IGNORECASE)
# Any other URL's user information goes whole: a user name alone is often the secret there
# (https://TOKEN@host). It ends at the last "@" before a "/", so a stray "#" or "?" in a
# password still falls inside the mask (masking too much only shortens a log line).
_USERINFO_IN_URL = re.compile(r"\b((?!postgres(?:ql)?://)[a-z][a-z0-9+.-]*://)[^/\s]*@", re.IGNORECASE)


def is_postgres_url(value: object) -> bool:
    """True for a ``postgresql://`` or ``postgres://`` URL (a str; a Path never is one)."""
    return isinstance(value, str) and value.strip().lower().startswith(SCHEMES)


def redact(text: str) -> str:
    """``text`` with every PostgreSQL URL's password (and any ``password=`` parameter) replaced by ``***``,
    and every other URL's ``user:password@`` by ``***@``."""
    text = _USERINFO_IN_URL.sub(r"\1***@", _PASSWORD_IN_TEXT.sub(r"\1***@", text))
    return _PASSWORD_PARAM.sub(r"\1***", text)


@dataclass(frozen=True)
class PgUrl:
    """Where a PostgreSQL index lives. ``str()`` and ``repr()`` never show the password;
    :attr:`dsn` (for the driver only) does."""

    scheme: ClassVar[str] = "postgresql"  # the backend that holds it (qabot.store.backends.BACKENDS)
    dsn: str = field(repr=False)

    def __post_init__(self) -> None:
        if not is_postgres_url(self.dsn):
            raise ValueError(f"not a PostgreSQL URL (postgresql://user:password@host:port/database): {redact(self.dsn)!r}")
        parts = urlsplit(self.dsn.strip())
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError(f"{redact(self.dsn)}: the URL names no host")
        if not parts.path.strip("/"):
            raise ValueError(f"{redact(self.dsn)}: the URL names no database (…/DATABASE at its end)")

    @property
    def safe(self) -> str:
        """The URL with its password replaced by ``***``: for logs, messages and reports."""
        parts = urlsplit(self.dsn.strip())
        netloc = parts.netloc
        if parts.password is not None:
            user = netloc.rsplit("@", 1)[0].split(":", 1)[0]
            netloc = f"{user}:***@{netloc.rsplit('@', 1)[1]}"
        return redact(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))

    def __str__(self) -> str:
        return self.safe

    def __repr__(self) -> str:
        return f"PgUrl({self.safe!r})"


Location = Path | PgUrl


def parse_location(value: str | Path | PgUrl) -> Location:
    """A folder path, or a :class:`PgUrl` for a ``postgresql://`` URL (ValueError for a malformed one)."""
    if isinstance(value, PgUrl | Path):
        return value
    if is_postgres_url(value):
        return PgUrl(value.strip())
    return Path(value).expanduser()


__all__ = ["SCHEMES", "Location", "PgUrl", "is_postgres_url", "parse_location", "redact"]
