"""The HTTP API against a hostile web page: a real uvicorn server on 127.0.0.1 (tests/test_api.py's
``running_server``) and httpx. Every response carries the browser headers that keep the page
from being framed, sniffed or fed a foreign script.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest

from .test_api import SEED, running_server

pytestmark = pytest.mark.model

@pytest.fixture(scope="module")
def server(sample_index, e5) -> Iterator[str]:
    """No keys (loopback only)."""
    with running_server(sample_index, e5) as url:
        yield url


# -- headers for browsers ------------------------------------------------------------------------


def _directives(policy: str) -> dict[str, list[str]]:
    parts = [p.split() for p in policy.split(";") if p.strip()]
    return {p[0].lower(): p[1:] for p in parts}


def _assert_browser_headers(response: httpx.Response) -> dict[str, list[str]]:
    assert response.headers["x-content-type-options"] == "nosniff", response.url
    assert response.headers["x-frame-options"] == "DENY", response.url
    policy = _directives(response.headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"] and policy["default-src"] == ["'none'"], policy
    return policy


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_script = ""
        self.handlers: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in = tag
        self.handlers += [f"{tag} {name}" for name, _ in attrs if name.startswith("on") or name == "style"]
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "link" and dict(attrs).get("rel") == "stylesheet":
            self.styles.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in in {"script", "style"}:
            self.inline_script += data.strip()


def test_the_page_sends_a_strict_policy_and_has_no_inline_script(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        page = client.get("/")
        policy = _assert_browser_headers(page)
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"], policy
        assert policy["connect-src"] == ["'self'"] and policy["base-uri"] == ["'none'"], policy
        assert not any("unsafe" in value or "http" in value or value == "*" for values in policy.values() for value in values)
        parsed = _Page()
        parsed.feed(page.text)
        assert parsed.inline_script == "" and parsed.handlers == [], (parsed.inline_script[:80], parsed.handlers)
        assert parsed.scripts and parsed.styles
        for src in [s["src"] for s in parsed.scripts] + parsed.styles:
            assert src and src.startswith("/"), src  # served here, no third-party origin
            asset = client.get(src)
            assert asset.status_code == 200 and asset.text.strip(), src
            assert asset.headers["content-type"].split(";")[0] in {"text/javascript", "text/css"}, asset.headers
            _assert_browser_headers(asset)


def test_json_routes_and_errors_send_the_browser_headers_too(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        responses = [client.get("/healthz"), client.get("/readyz"), client.post("/v1/ask", json={"question": SEED}),
                     client.post("/v1/ask", json={"question": ""}), client.get("/nowhere")]
    assert [r.status_code for r in responses] == [200, 200, 200, 422, 404]
    for response in responses:
        _assert_browser_headers(response)


def test_the_openapi_pages_keep_their_cdn_script_but_cannot_be_framed(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        _assert_browser_headers(client.get("/openapi.json"))
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
            assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
            assert page.headers["x-content-type-options"] == "nosniff"
