"""What a setting's value may be: :class:`Kind` (read, tidy, check) and the kinds the table uses.

A kind is built by a small named function, so the table says ``whole(1, MAX_TOP_K)`` or
``http_url("https://api.telegram.org/bot")`` and the bounds stay readable in one place::

    parse   the environment's text (stripped, never empty) -> a value; a ValueError says what was expected
    tidy    a value as Python code may give it -> its one spelling (upper case, a Secret, host names)
    check   any value, from the text or from Python code -> what is wrong in a few words, or None

The messages are short on purpose: :class:`~qabot.config.Settings` puts ``VARIABLE=value:`` before
them (``***`` for a secret's value).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qabot.locations import PgUrl, parse_location

_DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")
_BOT_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class Secret:
    """A string that never shows itself in repr, str or f-strings; ``.get()`` reveals it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _same(value: Any) -> Any:
    return value


def _text(raw: str) -> str:
    return raw


@dataclass(frozen=True)
class Kind:
    """How one setting's value is read from text, tidied and checked (see the module docstring)."""

    accepts: str  # for the reference pages: "a whole number, 1-100"
    check: Callable[[Any], str | None]
    parse: Callable[[str], Any] = _text
    tidy: Callable[[Any], Any] = _same
    low: float | None = None  # a number's bounds (low excluded where ``above``), for the reference and the tests
    high: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()


# -- numbers and flags --------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _parse_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number") from None


def whole(low: int, high: int | None = None) -> Kind:
    """A whole number from ``low`` (to ``high``)."""

    def check(value: Any) -> str | None:
        if not _is_int(value) or value < low:
            return f"must be a whole number of at least {low}"
        return f"must be at most {high}" if high is not None and value > high else None

    accepts = f"a whole number, {low}–{high}" if high is not None else f"a whole number, at least {low}"
    return Kind(accepts, check, _parse_int, low=low, high=high)


def above_zero() -> Kind:
    """A finite number above 0 (a rate, a timeout)."""

    def check(value: Any) -> str | None:
        return None if _is_number(value) and math.isfinite(value) and value > 0 else "must be a number above 0"

    return Kind("a number above 0", check, _parse_float, low=0, above=True)


def at_least_zero() -> Kind:
    """A number of at least 0 (seconds between checkpoints; 0: every batch)."""

    def check(value: Any) -> str | None:
        return None if _is_number(value) and value >= 0 else "must be a number of at least 0"

    return Kind("a number, at least 0", check, _parse_float, low=0)


def cosine() -> Kind:
    """A cosine similarity, -1 to 1, or unset."""

    def check(value: Any) -> str | None:
        ok = value is None or (_is_number(value) and -1.0 <= value <= 1.0)
        return None if ok else "must be between -1 and 1 (a cosine similarity)"

    return Kind("a number, -1–1 (a cosine similarity)", check, _parse_float, low=-1, high=1)


def _parse_flag(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError("expected true or false")


def flag() -> Kind:
    """true/false (also 1/0, yes/no, on/off)."""
    return Kind("true or false", lambda value: None if isinstance(value, bool) else "must be true or false", _parse_flag)


# -- words --------------------------------------------------------------------------------------


def choice(options: tuple[str, ...], *, upper: bool = False) -> Kind:
    """One of ``options``, in any case (stored upper or lower case like the options)."""

    def tidy(value: Any) -> str:
        text = str(value).strip()
        return text.upper() if upper else text.lower()

    listed = ", ".join(options[:-1]) + f" or {options[-1]}"
    return Kind(f"{listed} (any case)", lambda value: None if value in options else f"must be one of {', '.join(options)}",
                tidy=tidy, choices=options)


def device(*, optional: bool = False) -> Kind:
    """A torch device: cpu, cuda, cuda:N or mps (any case); unset for ``optional`` ones."""

    def tidy(value: Any) -> str | None:
        return None if optional and value is None else str(value).strip().lower()

    def check(value: Any) -> str | None:
        ok = (optional and value is None) or (isinstance(value, str) and _DEVICE.fullmatch(value))
        return None if ok else "must be cpu, cuda, cuda:N or mps"

    return Kind("cpu, cuda, cuda:N or mps", check, tidy=tidy)


def _one_line(value: str) -> bool:
    return not any(ord(c) < 32 for c in value)


def model() -> Kind:
    """A model name or folder (never empty)."""
    return Kind("a model id or folder",
                lambda value: None if isinstance(value, str) and value.strip() else "must name a model or a model folder")


def optional_model() -> Kind:
    """A model name on one line, or unset (the seam is off)."""

    def check(value: Any) -> str | None:
        ok = value is None or (isinstance(value, str) and value.strip() and _one_line(value))
        return None if ok else "must name a model on one line (or be unset)"

    return Kind("a model id or folder", check)


def _parse_prompt(raw: str) -> str:
    # Prompts end in a space ("query: "); .env files strip it, so a trailing colon implies the space.
    return raw + " " if raw.endswith(":") else raw


def _check_prompt(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return "must not be blank (leave it unset for the model's default prompt)"
    return None if _one_line(value) else "must be one line"


def prompt() -> Kind:
    """Text put before what is embedded; a trailing colon gets its space back."""
    return Kind("text on one line (a trailing colon gets a space)", _check_prompt, _parse_prompt)


def contact() -> Kind:
    """How site owners reach the operator; it goes into the User-Agent as "(+contact)"."""

    def check(value: Any) -> str | None:
        ok = value is None or (isinstance(value, str) and 3 <= len(value) <= 200
                               and all(32 <= ord(c) < 127 and c not in "()" for c in value))
        return None if ok else "must be an e-mail address or URL (printable ASCII, 3-200 characters, no parentheses)"

    return Kind("an e-mail address or URL", check)


def http_url(example: str, *, what: str = "URL") -> Kind:
    """An http(s) URL with a host and no query or fragment, or unset."""

    def check(value: Any) -> str | None:
        if value is None:
            return None
        url = urlsplit(value) if isinstance(value, str) else None
        ok = url is not None and url.scheme in {"http", "https"} and bool(url.hostname) and not url.query and not url.fragment
        return None if ok else f"must be an http(s) {what} such as {example}"

    return Kind(f"an http(s) {what}", check)


# -- paths and places ---------------------------------------------------------------------------


def _tidy_location(value: Any) -> Any:
    return parse_location(value) if isinstance(value, str) else value


def location() -> Kind:
    """A folder, or a postgresql:// URL (its password never shown)."""
    return Kind("a folder or a postgresql:// URL",
                lambda value: None if isinstance(value, Path | PgUrl) else "must be a folder path or a postgresql:// URL",
                parse_location, _tidy_location)


def folder() -> Kind:
    """A folder path (``~`` expanded)."""
    return Kind("a folder", lambda value: None if value is None or isinstance(value, Path) else "must be a folder path",
                lambda raw: Path(raw).expanduser())


def _parse_ids(raw: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in raw.replace(";", ",").split(",") if part.strip())
    except ValueError:
        raise ValueError("expected comma-separated numeric ids") from None


def ids() -> Kind:
    """Comma-separated numeric ids (Telegram users or chats)."""
    return Kind("comma-separated numeric ids",
                lambda value: None if isinstance(value, frozenset) and all(_is_int(v) for v in value) else "must be a set of numeric ids",
                _parse_ids)


def host_names(names: Iterable[object]) -> tuple[str, ...]:
    """Host names as a Host header spells them: lower case, no trailing dot, IPv6 in brackets."""
    found = []
    for name in (str(n).strip().lower() for n in names):
        if not name:
            continue
        if ":" in name and not name.startswith("["):
            try:
                name = f"[{ipaddress.IPv6Address(name)}]"
            except ValueError:
                pass  # a port or a scheme: the check names it
        found.append(name.removesuffix(".") if not name.startswith("[") else name)
    return tuple(found)


def _is_host_name(name: str) -> bool:
    """A DNS name, an IPv4 address or an IPv6 address in brackets (no scheme, port or path)."""
    if name.startswith("[") and name.endswith("]"):
        try:
            return bool(ipaddress.IPv6Address(name[1:-1]))
        except ValueError:
            return False
    return len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in name.split("."))


def _check_hosts(value: Any) -> str | None:
    if not isinstance(value, tuple):
        return "must be comma-separated host names"
    bad = [h for h in value if not (isinstance(h, str) and _is_host_name(h))]
    return (f"{bad[0]!r} is not a host name or IP address: list names without scheme, port or path "
            "(e.g. qabot.example.org,192.168.1.5)") if bad else None


def _parse_hosts(raw: str) -> tuple[str, ...]:
    hosts = host_names(raw.split(","))
    problem = _check_hosts(hosts)
    if problem:  # named here, with the text as written
        raise ValueError(problem)
    return hosts


def _tidy_hosts(value: Any) -> Any:
    if isinstance(value, str | list | set | frozenset):
        return host_names(value.split(",") if isinstance(value, str) else value)
    return value


def hosts() -> Kind:
    """Comma-separated host names or IP addresses, without scheme, port or path."""
    return Kind("comma-separated host names", _check_hosts, _parse_hosts, _tidy_hosts)


# -- secrets ------------------------------------------------------------------------------------


def _tidy_secret(value: Any) -> Any:
    return Secret(value) if isinstance(value, str) else value  # a plain string from Python code: hidden too


def secret() -> Kind:
    """Any text, kept in a :class:`Secret`."""
    return Kind("a secret", lambda value: None if isinstance(value, Secret) else "must be a Secret", Secret, _tidy_secret)


def bot_token() -> Kind:
    """A BotFather token (digits:letters), kept in a :class:`Secret`."""

    def check(value: Any) -> str | None:
        if not isinstance(value, Secret):
            return "must be a Secret"
        return None if not value or _BOT_TOKEN.fullmatch(value.get()) else "does not look like a BotFather token (digits:letters)"

    return Kind("a BotFather token (secret)", check, Secret, _tidy_secret)


def _parse_keys(raw: str) -> tuple[Secret, ...]:
    return tuple(Secret(part.strip()) for part in raw.split(",") if part.strip())


def _tidy_keys(value: Any) -> Any:
    if isinstance(value, str | list | set | frozenset):
        keys = value.split(",") if isinstance(value, str) else value
        return tuple(k if isinstance(k, Secret) else Secret(str(k).strip()) for k in keys)
    return value


def secret_keys(*, shortest: int) -> Kind:
    """Comma-separated keys of at least ``shortest`` characters, each kept in a :class:`Secret`."""

    def check(value: Any) -> str | None:
        if not isinstance(value, tuple) or not all(isinstance(k, Secret) for k in value):
            return "must be comma-separated keys"
        short = [k for k in value if len(k.get()) < shortest or any(c.isspace() or ord(c) < 32 for c in k.get())]
        return f"each key must be at least {shortest} characters, without spaces" if short else None

    return Kind(f"comma-separated keys, {shortest}+ characters each (secrets)", check, _parse_keys, _tidy_keys)
