"""The API as a web browser meets it: which ``Host`` a keyless server answers, and the headers
every response carries.

``HostCheck``       ASGI middleware: without API keys, a request whose ``Host`` is not a loopback
                    name (localhost, *.localhost, 127.0.0.0/8, [::1]) nor one of QABOT_API_HOSTS
                    gets 421 before anything else runs. DNS rebinding needs exactly that: a page
                    the user visits points its own name at 127.0.0.1 and then reads the server as
                    same-origin, but its requests still say ``Host: evil.example``. With keys,
                    the keys protect the server and any Host is served (a proxy's name, an IP).
``BrowserHeaders``  ASGI middleware: a Content-Security-Policy (scripts, styles and requests from
                    this server only, no inline script, no framing), ``X-Content-Type-Options:
                    nosniff`` and ``X-Frame-Options: DENY`` on every response, errors included.
                    The OpenAPI pages (/docs, /redoc) load FastAPI's Swagger UI and ReDoc with
                    inline script from a CDN, so they get only the framing rules.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qabot.frontends.api.limits import send_error

log = logging.getLogger("qabot.frontends.api")

# default-src 'none' first: anything not named below (fonts, frames, objects, media) is refused.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
          "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_POLICY = "frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")
_NAME = re.compile(r"[a-z0-9_.-]+")
_PORT = re.compile(r":\d{1,5}")


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header value, lower case, without port or trailing dot (IPv6 keeps its
    brackets); None when the value is no ``name[:port]`` at all."""
    value = header.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value.partition("]")
        name += bracket
        try:
            ipaddress.IPv6Address(name[1:-1] if bracket else "unclosed")
        except ValueError:
            return None
    else:
        name, colon, rest = value.partition(":")
        rest = colon + rest
        name = name.removesuffix(".")
        if not _NAME.fullmatch(name):
            return None
    return name if not rest or _PORT.fullmatch(rest) else None


def is_loopback_name(name: str) -> bool:
    """localhost, any name under .localhost (RFC 6761: always loopback), 127.0.0.0/8 and [::1]."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(header: str | None, listed: Iterable[str] = ()) -> bool:
    """True when a keyless server may answer a request with this ``Host`` header value."""
    name = host_name(header) if header is not None else None
    return name is not None and (is_loopback_name(name) or name in set(listed))


class HostCheck:
    """421 for a request whose Host a keyless server does not answer; ``any_host`` (keys set) turns it off."""

    def __init__(self, app: ASGIApp, *, listed: Iterable[str], any_host: bool) -> None:
        self.app, self.listed, self.any_host = app, frozenset(listed), any_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any_host:
            await self.app(scope, receive, send)
            return
        hosts = [value.decode("latin-1") for name, value in scope["headers"] if name == b"host"]
        # one Host and an accepted one; two are ambiguous (which would a proxy have used?)
        if len(hosts) == 1 and host_allowed(hosts[0], self.listed):
            await self.app(scope, receive, send)
            return
        shown = hosts[0][:100] if len(hosts) == 1 else f"{len(hosts)} Host headers"
        log.warning("refused %s %s for Host %r: not a loopback name nor in QABOT_API_HOSTS (DNS rebinding?)",
                    scope["method"], scope["path"], shown)
        await send_error(send, 421, "this server answers only requests for localhost or the names in QABOT_API_HOSTS",
                         code="host_not_allowed")


class BrowserHeaders:
    """The security headers on every response (a header the app set itself is kept)."""

    def __init__(self, app: ASGIApp, *, policy: str = POLICY, docs_paths: tuple[str, ...] = DOCS_PATHS) -> None:
        self.app, self.policy, self.docs_paths = app, policy, docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = any(scope["path"] == p or scope["path"].startswith(p + "/") for p in self.docs_paths)
        extra = [(b"content-security-policy", (DOCS_POLICY if docs else self.policy).encode()),
                 (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message = {**message, "headers": headers + [(n, v) for n, v in extra if n not in present]}
            await send(message)

        await self.app(scope, receive, with_headers)
