"""The API as a web browser meets it: the headers every response carries.

``BrowserHeaders``  ASGI middleware: a Content-Security-Policy (scripts, styles and requests from
                    this server only, no inline script, no framing), ``X-Content-Type-Options:
                    nosniff`` and ``X-Frame-Options: DENY`` on every response, errors included.
                    The OpenAPI pages (/docs, /redoc) load FastAPI's Swagger UI and ReDoc with
                    inline script from a CDN, so they get only the framing rules.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# default-src 'none' first: anything not named below (fonts, frames, objects, media) is refused.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
          "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_POLICY = "frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")


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
