"""The polite, bounded fetcher against a real HTTP server on 127.0.0.1 (tests/fake_site.py)."""

from __future__ import annotations

import threading
import time
from itertools import pairwise

import pytest

from qabot.follow.fetcher import FEED_TYPES, PAGE_TYPES, Fetcher

from .fake_site import FakeSite, article

AGENT = "qabot/test (+ops@example.org)"


@pytest.fixture
def site():
    with FakeSite() as fake:
        yield fake


def _fetcher(**options) -> Fetcher:
    return Fetcher(user_agent=AGENT, min_interval=options.pop("min_interval", 0.0), **options)


def test_conditional_get_costs_a_304_and_the_user_agent_names_qabot_and_the_contact(site):
    site.add_feed("/feed.xml", ["/a.html"])
    with _fetcher() as fetcher:
        first = fetcher.fetch(site.url("/feed.xml"), accept=FEED_TYPES, allow_private=True)
        assert first.ok and first.body.startswith(b"<?xml") and first.headers["etag"]
        again = fetcher.fetch(site.url("/feed.xml"), accept=FEED_TYPES, allow_private=True, etag=first.headers["etag"])
    assert again.not_modified and again.body == b""
    assert site.requests[-1].headers["if-none-match"] == first.headers["etag"]
    assert all(r.headers["user-agent"] == AGENT for r in site.requests)


def test_one_host_is_asked_at_most_once_per_interval(site):
    site.add_page("/a.html", article(1))
    with _fetcher(min_interval=0.3) as fetcher:
        for _ in range(3):
            assert fetcher.fetch(site.url("/a.html"), accept=PAGE_TYPES, allow_private=True).ok
    times = [r.at for r in site.requests]
    assert all(b - a >= 0.29 for a, b in pairwise(times)), times


@pytest.mark.timing
def test_a_slow_server_times_out_and_a_dripping_one_meets_the_deadline(site):
    site.add_page("/slow.html", article(1), delay=5)
    site.add_page("/drip.html", article(2), drip=0.05)
    with _fetcher(timeout=0.5, deadline=1.0) as fetcher:
        started = time.monotonic()
        slow = fetcher.fetch(site.url("/slow.html"), accept=PAGE_TYPES, allow_private=True)
        drip = fetcher.fetch(site.url("/drip.html"), accept=PAGE_TYPES, allow_private=True)
    assert slow.error == "timed out" and drip.error == "not complete after 1 s"
    assert time.monotonic() - started < 4


def test_an_endless_body_stops_at_the_size_cap(site):
    site.route("/endless.html", endless=True)
    with _fetcher(max_bytes=200_000) as fetcher:
        result = fetcher.fetch(site.url("/endless.html"), accept=PAGE_TYPES, allow_private=True)
    assert result.error == "larger than the cap of 200000 bytes" and result.body == b""


def test_declared_oversize_is_refused_before_reading(site):
    site.route("/big.html", body=b"x" * 50_000)
    with _fetcher(max_bytes=10_000) as fetcher:
        assert "larger than the cap" in fetcher.fetch(site.url("/big.html"), accept=PAGE_TYPES, allow_private=True).error


def test_redirects_are_followed_capped_and_loops_stopped(site):
    site.add_page("/target.html", article(3))
    site.route("/moved", status=301, headers={"Location": "/target.html"})
    site.route("/loop", status=302, headers={"Location": "/loop2"})
    site.route("/loop2", status=302, headers={"Location": "/loop"})
    for i in range(8):
        site.route(f"/hop{i}", status=302, headers={"Location": f"/hop{i + 1}"})
    site.route("/to-file", status=302, headers={"Location": "file:///etc/passwd"})
    with _fetcher() as fetcher:
        moved = fetcher.fetch(site.url("/moved"), accept=PAGE_TYPES, allow_private=True)
        loop = fetcher.fetch(site.url("/loop"), accept=PAGE_TYPES, allow_private=True)
        chain = fetcher.fetch(site.url("/hop0"), accept=PAGE_TYPES, allow_private=True)
        to_file = fetcher.fetch(site.url("/to-file"), accept=PAGE_TYPES, allow_private=True)
        off_site = fetcher.fetch(site.url("/moved"), accept=PAGE_TYPES, allow_private=True, hop_check=lambda u: "another site")
    assert moved.ok and moved.final_url == site.url("/target.html")
    assert loop.error == "redirect loop"
    assert chain.error == "more than 5 redirects" and site.hits("/hop6") == 0
    assert "only http and https" in to_file.error
    assert off_site.error == "another site"


def test_wrong_content_types_statuses_and_retry_after(site):
    site.route("/doc.pdf", body=b"%PDF-1.4", content_type="application/pdf")
    site.route("/busy", status=429, headers={"Retry-After": "120"})
    site.route("/down", status=503, headers={"Retry-After": "Wed, 21 Oct 2065 07:28:00 GMT"})
    site.route("/gone", status=410)
    site.route("/broken", status=500)
    with _fetcher() as fetcher:
        pdf = fetcher.fetch(site.url("/doc.pdf"), accept=PAGE_TYPES, allow_private=True)
        busy = fetcher.fetch(site.url("/busy"), accept=PAGE_TYPES, allow_private=True)
        down = fetcher.fetch(site.url("/down"), accept=PAGE_TYPES, allow_private=True)
        gone = fetcher.fetch(site.url("/gone"), accept=PAGE_TYPES, allow_private=True)
        broken = fetcher.fetch(site.url("/broken"), accept=PAGE_TYPES, allow_private=True)
        html_as_feed = fetcher.fetch(site.url("/gone"), accept=FEED_TYPES, allow_private=True)
    assert pdf.error == "content type application/pdf is not accepted here" and pdf.body == b""
    assert (busy.status, busy.retry_after) == (429, 120) and down.retry_after == 24 * 3600
    assert gone.error == "HTTP 410" and broken.error == "HTTP 500" and html_as_feed.error == "HTTP 410"


def test_a_public_source_never_reaches_a_private_address(site):
    """The address check sits where the connection is made: a name that resolves to a private
    address (DNS rebinding, an intranet name) is refused and the server never sees a request."""
    site.add_page("/secret.html", article(4))
    names = {"news.example": ["127.0.0.1"], "metadata.example": ["169.254.169.254"]}
    with _fetcher(resolver=lambda host, port: names.get(host, [host])) as fetcher:
        rebinding = fetcher.fetch(f"http://news.example:{site.port}/secret.html", accept=PAGE_TYPES, allow_private=False)
        literal = fetcher.fetch(site.url("/secret.html"), accept=PAGE_TYPES, allow_private=False)
        metadata = fetcher.fetch("http://metadata.example/latest/meta-data/", accept=PAGE_TYPES, allow_private=False)
        mapped = fetcher.fetch(f"http://[::ffff:127.0.0.1]:{site.port}/secret.html", accept=PAGE_TYPES, allow_private=False)
        allowed = fetcher.fetch(site.url("/secret.html"), accept=PAGE_TYPES, allow_private=True)
    for result in (rebinding, literal, metadata, mapped):
        assert result.error and result.error.startswith("refused:"), result
    assert "169.254.169.254" in metadata.error
    assert allowed.ok and site.hits("/secret.html") == 1


def test_a_redirect_to_a_private_address_is_refused_at_the_hop(site):
    """A public page redirecting to http://127.0.0.1/... (pretend 127.0.0.1 is public, 127.0.0.2 is not)."""
    site.route("/jump", status=302, headers={"Location": f"http://127.0.0.2:{site.port}/admin"})
    with _fetcher(public=lambda address: address == "127.0.0.1") as fetcher:
        result = fetcher.fetch(site.url("/jump"), accept=PAGE_TYPES, allow_private=False)
    assert result.error.startswith("refused: 127.0.0.2") and site.paths_requested() == ["/jump"]


@pytest.mark.timing
def test_stop_abandons_the_wait_and_the_page_in_flight(site):
    site.add_page("/drip.html", article(5), drip=0.05)
    stop = threading.Event()
    with _fetcher(stop=stop, deadline=30) as fetcher:
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        result = fetcher.fetch(site.url("/drip.html"), accept=PAGE_TYPES, allow_private=True)
    assert result.error == "stopped" and time.monotonic() - started < 2
