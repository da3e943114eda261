"""The HTTP API against a hostile web page: a real uvicorn server on 127.0.0.1 (tests/test_api.py's
``running_server``), httpx with forged ``Host`` headers, a raw socket for a request without one.

DNS rebinding: a page the user visits points its own name at 127.0.0.1 and then reads the keyless
server as same-origin; its requests still say ``Host: evil.example``, which the server refuses
(421) unless it is a loopback name or listed in QABOT_API_HOSTS. With API keys the keys protect
the server, and any Host is served. Every response carries the browser headers that keep the page
from being framed, sniffed or fed a foreign script.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from .test_api import KEY, SEED, running_server

pytestmark = pytest.mark.model

FOREIGN = ["evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io", "localhost@evil.example",
           "0.0.0.0", "[::1", "::1", "[::2]:80", "10.0.0.1", "", "qabot.lan.evil.example"]
LOOPBACK = ["localhost", "LOCALHOST:{port}", "localhost.", "localhost.:{port}", "127.0.0.1", "127.0.0.1:{port}", "127.0.0.2:1",
            "[::1]", "[::1]:{port}", "qabot.localhost", "a.b.localhost:{port}"]


@pytest.fixture(scope="module")
def server(sample_index, e5) -> Iterator[str]:
    """No keys (loopback only); two names the operator listed."""
    with running_server(sample_index, e5, api_hosts="qabot.lan, 192.168.1.5 ,[fd00::5]") as url:
        yield url


def _port(url: str) -> int:
    return urlsplit(url).port or 80


@pytest.mark.parametrize("host", FOREIGN)
def test_without_keys_a_foreign_host_is_refused_before_anything_is_read(server, host, caplog):
    caplog.set_level(logging.INFO, logger="qabot.frontends.api")
    with httpx.Client(base_url=server, timeout=60) as client:
        for method, path in (("GET", "/"), ("GET", "/healthz"), ("POST", "/v1/ask"), ("GET", "/v1/stats")):
            body = {"question": SEED} if method == "POST" else None
            response = client.request(method, path, json=body, headers={"Host": host})
            assert response.status_code == 421, (host, path, response.text)
            error = response.json()["error"]
            assert error["code"] == "host_not_allowed" and "QABOT_API_HOSTS" in error["message"]
            assert response.headers["x-content-type-options"] == "nosniff"
    deadline = time.monotonic() + 5  # the request line is written just after the response is sent
    while "POST /v1/ask 421" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "POST /v1/ask 421" in caplog.text and SEED not in caplog.text and "Putin" not in caplog.text
    assert f"refused POST /v1/ask for Host {host[:100]!r}" in caplog.text


def test_a_request_without_a_host_is_refused(server):
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=30) as raw:
        raw.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := raw.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 421 "), reply[:200]


@pytest.mark.parametrize("name", LOOPBACK)
def test_without_keys_loopback_names_are_served_with_or_without_port(server, name):
    host = name.format(port=_port(server))
    with httpx.Client(base_url=server, timeout=60) as client:
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize("host", ["qabot.lan", "QABOT.lan:8443", "192.168.1.5", "192.168.1.5:80", "[fd00::5]:8000"])
def test_without_keys_the_hosts_in_qabot_api_hosts_are_served(server, host):
    with httpx.Client(base_url=server, timeout=60) as client:
        response = client.post("/v1/ask", json={"question": SEED}, headers={"Host": host})
        assert response.status_code == 200 and response.json()["found"], response.text


def test_with_keys_any_host_is_served_the_keys_protect_it(sample_index, e5):
    with running_server(sample_index, e5, api_keys=KEY) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 200
        assert client.post("/v1/ask", json={"question": SEED}, headers={"Host": "evil.example"}).status_code == 401
        keyed = {"Host": "qa.example.org", "Authorization": f"Bearer {KEY}"}
        assert client.post("/v1/ask", json={"question": SEED}, headers=keyed).status_code == 200


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
                     client.post("/v1/ask", json={"question": ""}), client.get("/nowhere"),
                     client.post("/v1/ask", json={"question": SEED}, headers={"Host": "evil.example"})]
    assert [r.status_code for r in responses] == [200, 200, 200, 422, 404, 421]
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
