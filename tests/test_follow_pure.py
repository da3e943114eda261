"""The follower's pure parts: address and host rules, robots.txt, feeds and sitemaps, retry policy, WARC records."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from warcio.archiveiterator import ArchiveIterator

from qabot.follow.addresses import is_public, link_allowed, site_of, url_problem
from qabot.follow.fetcher import FEED_TYPES, PAGE_TYPES, Fetched, retry_after_seconds, type_accepted
from qabot.follow.report import GONE_RETRY, RETRY_BASE, RETRY_MAX, retry_delay
from qabot.follow.robots import Robots, robots_url
from qabot.follow.sources import newest_first, parse_listing, read_source_list
from qabot.follow.warcs import response_record_bytes, warc_date
from qabot.frontends.cli_follow import parse_duration, user_agent

from .fake_site import article, atom, page_html, rss, sitemap, sitemap_index


@pytest.mark.parametrize("address", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.8.9.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe", "::", "ff02::1", "240.0.0.1",
])
def test_non_public_addresses_are_refused(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2a00:1450:4001:82a::200e", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert is_public(address)


def test_url_problems():
    assert url_problem("https://www.example.de/a") is None
    assert "only http and https" in url_problem("file:///etc/passwd")
    assert "only http and https" in url_problem("ftp://example.de/feed")
    assert "only http and https" in url_problem("gopher://example.de/")
    assert "no host" in url_problem("http:///feed.xml")
    assert "user name or password" in url_problem("http://user:pw@example.de/")
    assert "not a valid URL" in url_problem("http://example.de:99999/")


def test_sites_and_links():
    assert site_of("www.example.de") == site_of("rss.example.de") == "example.de"
    assert site_of("news.bbc.co.uk") == "bbc.co.uk" and site_of("127.0.0.1") == "127.0.0.1"
    sites = ("rss.example.de",)
    assert link_allowed("https://www.example.de/politik/a.html", sites=sites)
    assert not link_allowed("https://www.example.com/a.html", sites=sites)
    assert not link_allowed("http://169.254.169.254/latest/meta-data/", sites=sites)
    assert not link_allowed("http://localhost:8000/a.html", sites=("127.0.0.1",))
    assert link_allowed("https://cdn.example.org/a.html", sites=sites, hosts=("cdn.example.org",))
    assert not link_allowed("https://evil.example.org/a.html", sites=sites, hosts=("cdn.example.org",))
    assert not link_allowed("mailto:x@example.de", sites=sites)


def test_robots_rules_and_rfc9309_outcomes():
    robots = Robots.from_response(200, b"User-agent: *\nDisallow: /intern/\n\nUser-agent: qabot\nDisallow: /archiv/\nCrawl-delay: 3\n")
    assert robots.allows("https://example.de/politik/a.html")
    assert not robots.allows("https://example.de/archiv/1999.html")  # qabot's own group
    assert robots.allows("https://example.de/intern/x.html")  # the * group does not apply when qabot has its own
    assert robots.crawl_delay() == 3.0
    assert Robots.from_response(404, b"").allows("https://example.de/x") and Robots.from_response(403, b"").mode == "allow"
    assert not Robots.from_response(500, b"").allows("https://example.de/x") and Robots.from_response(None, b"").mode == "deny"
    assert robots_url("HTTPS://Example.de:8443/a/b?c") == "https://example.de:8443/robots.txt"
    assert Robots.from_response(200, b"User-agent: *\nCrawl-delay: 9999\n").crawl_delay() == 60.0


def test_feeds_and_sitemaps_are_parsed():
    items = [("https://example.de/a.html", "A", "2025-08-15"), ("/b.html", "B", None)]
    for body in (rss(items), atom(items)):
        listing = parse_listing(body, base_url="https://example.de/feed.xml")
        assert listing.kind == "feed"
        assert [link.url for link in listing.links] == ["https://example.de/a.html", "https://example.de/b.html"]
        assert listing.links[0].date.startswith("2025-08-15") and listing.links[1].date is None
    plain = parse_listing(sitemap([("https://example.de/a.html", "2025-08-15")]), base_url="https://example.de/s.xml")
    assert plain.kind == "sitemap" and plain.links[0].date == "2025-08-15"
    news = parse_listing(sitemap([("https://example.de/n.html", "2025-08-15T10:00:00+02:00")], news=True), base_url="x")
    assert news.links[0].date == "2025-08-15T10:00:00+02:00" and news.links[0].title == "Meldung"
    index = parse_listing(sitemap_index(["https://example.de/s1.xml"]), base_url="x")
    assert index.kind == "sitemapindex" and index.links[0].url == "https://example.de/s1.xml"


def test_not_a_listing_is_a_reason():
    with pytest.raises(ValueError, match="HTML page"):
        parse_listing(page_html(article(1)), base_url="https://example.de/")
    with pytest.raises(ValueError, match="empty"):
        parse_listing(b"  ", base_url="https://example.de/")
    with pytest.raises(ValueError, match="neither a feed nor a sitemap"):
        parse_listing(b"\x00\x01binary", base_url="https://example.de/")


def test_entities_are_not_expanded_in_sitemaps():
    """A billion-laughs sitemap is read without expanding anything (no DTD, no entities)."""
    bomb = (b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://example.de/&c;&x;</loc></url></urlset>')
    listing = parse_listing(bomb, base_url="https://example.de/")
    assert all("root:" not in link.url and "aaaaaaaaaa" not in link.url for link in listing.links)


def test_source_lists_and_order():
    assert read_source_list("# Zeitungen\nhttps://a.de/feed\n\n  https://b.de/sitemap.xml  \n") == ["https://a.de/feed", "https://b.de/sitemap.xml"]
    from qabot.follow.sources import Link

    links = [Link("u1", "2025-01-01"), Link("u2", None), Link("u3", "2025-08-15")]
    assert [link.url for link in newest_first(links)] == ["u3", "u1", "u2"]


def test_retry_policy():
    assert retry_delay(1) == RETRY_BASE and retry_delay(2) == 2 * RETRY_BASE and retry_delay(30) == RETRY_MAX
    assert retry_delay(1, status=404) == GONE_RETRY == retry_delay(1, permanent=True)
    assert retry_delay(3, status=429, retry_after=7) == 7 and retry_delay(1, status=503) == RETRY_BASE
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert retry_after_seconds("120", now=now) == 120
    assert retry_after_seconds("Thu, 01 Jan 2026 00:01:00 GMT", now=now) == 60
    assert retry_after_seconds("Thu, 01 Jan 2025 00:01:00 GMT", now=now) == 0
    assert retry_after_seconds("99999999", now=now) == 24 * 3600
    assert retry_after_seconds("soon", now=now) is None and retry_after_seconds(None, now=now) is None


def test_content_types():
    assert type_accepted("text/html; charset=utf-8", PAGE_TYPES) and not type_accepted("application/pdf", PAGE_TYPES)
    assert type_accepted("application/rss+xml", FEED_TYPES) and type_accepted("application/vnd.custom+xml", FEED_TYPES)
    assert not type_accepted("text/html", FEED_TYPES) and not type_accepted(None, PAGE_TYPES)


def test_durations_and_user_agent():
    assert parse_duration("15m") == 900 and parse_duration("1h") == 3600 and parse_duration("90") == 90
    assert parse_duration("1.5h") == 5400
    with pytest.raises(ValueError):
        parse_duration("soon")
    agent = user_agent("ops@example.org")
    assert agent.startswith("qabot/") and agent.endswith("(+ops@example.org)")


def test_a_response_record_reads_back_with_its_headers():
    when = datetime(2026, 12, 5, 10, 0, 0, 5, tzinfo=UTC)
    fetched = Fetched("https://example.de/a", "https://example.de/a.html", status=200,
                      headers={"content-type": "text/html; charset=utf-8", "content-encoding": "gzip", "etag": '"x"'},
                      body=page_html(article(2)))
    records = [(record, record.content_stream().read()) for record in ArchiveIterator(io.BytesIO(response_record_bytes(fetched, when)))]
    assert len(records) == 1
    record, body = records[0]
    assert record.rec_type == "response"
    assert record.rec_headers.get_header("WARC-Target-URI") == "https://example.de/a.html"
    assert record.rec_headers.get_header("WARC-Date") == warc_date(when) == "2026-12-05T10:00:00.000005Z"
    assert record.http_headers.get_statuscode() == "200"
    assert record.http_headers.get_header("Content-Encoding") is None  # the body is stored decoded
    assert body == fetched.body
