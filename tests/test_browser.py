"""The Host rule of a keyless server, as pure functions (the server's side: test_api_edges.py)."""

from __future__ import annotations

import pytest

from qabot.frontends.api.browser import host_allowed, host_name, is_loopback_name


@pytest.mark.parametrize(("header", "name"), [
    ("localhost", "localhost"), ("LocalHost:8000", "localhost"), ("localhost.", "localhost"),
    ("localhost.:80", "localhost"), ("[::1]:8000", "[::1]"), ("[::1]", "[::1]"), ("127.0.0.1:65535", "127.0.0.1"),
    (" qabot.lan ", "qabot.lan"), ("a_b.example", "a_b.example"),
    ("", None), (":8000", None), ("::1", None), ("[::1", None), ("[::1]x", None), ("[nope]", None),
    ("localhost:", None), ("localhost:port", None), ("localhost:123456", None), ("user@localhost", None),
    ("local host", None), ("localhost/x", None), ("evil.example\\@localhost", None),
])
def test_host_name(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize(("name", "loopback"), [
    ("localhost", True), ("qabot.localhost", True), ("127.0.0.1", True), ("127.1.2.3", True), ("[::1]", True),
    ("localhost.evil.example", False), ("evillocalhost", False), ("0.0.0.0", False), ("[::]", False),
    ("10.0.0.1", False), ("127.0.0.1.nip.io", False),
])
def test_is_loopback_name(name, loopback):
    assert is_loopback_name(name) is loopback


def test_host_allowed():
    assert host_allowed("localhost:8000") and host_allowed("[::1]:1")
    assert not host_allowed(None) and not host_allowed("evil.example")
    assert host_allowed("Qabot.Lan:443", ["qabot.lan"]) and host_allowed("[fd00::5]", ["[fd00::5]"])
    assert not host_allowed("sub.qabot.lan", ["qabot.lan"]) and not host_allowed("qabot.lan.evil", ["qabot.lan"])
