"""The HTTP API (`qabot serve`): REST, an OpenAI-compatible chat endpoint and a small web page.

``app.create_app``      the FastAPI application: routes wired in one function, thin handlers
``auth``                bearer keys (hashed, compared in constant time), key ids, the loopback rule
``limits``              rate limits, body and question size limits, the one-line request log
``openai_compat``       /v1/models and /v1/chat/completions (plain and server-sent events)
``markdown``            archive text made inert inside the chat reply's Markdown, links http(s) only
``server.serve``        uvicorn with the index opened first and a graceful drain on SIGTERM
``browser``             the Host check of a keyless server (DNS rebinding) and the CSP/nosniff/DENY headers
``page.html``           the chat page at ``GET /`` (+ ``page.css``, ``page.js``): plain JS, no build step
"""

from __future__ import annotations

from qabot.frontends.api.app import create_app
from qabot.frontends.api.server import serve

__all__ = ["create_app", "serve"]
