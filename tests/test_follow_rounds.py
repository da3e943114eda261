"""Rounds of `qabot follow` against a real HTTP server on 127.0.0.1: what is archived, skipped,
refused and reported, across rounds; the archive read back by `qabot index`'s own reader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from qabot.follow import Fetcher, Round, RoundOptions
from qabot.follow.state import State, follower_lock
from qabot.frontends.cli import cli
from qabot.ingest.archive import iter_articles

from .fake_site import FakeSite, article, sitemap, sitemap_index

CONTACT = "ops@example.org"


@pytest.fixture
def site():
    with FakeSite() as fake:
        yield fake


def _follow(archive: Path, *sources: str, extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> tuple[int, str, list[dict]]:
    """One `qabot follow --once --json` round in-process: (exit code, stderr, the JSON reports)."""
    result = CliRunner().invoke(cli, ["follow", *sources, "--archive", str(archive), "--once", "--delay", "0", "--json",
                                      "--timeout", "1", "--contact", CONTACT, *extra], env=env or {})
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, result.stderr, reports


def _articles(archive: Path) -> dict[str, object]:
    problems: list[object] = []
    found = {a.url: a for a in iter_articles(archive, on_problem=problems.append)}
    assert not [p for p in problems if p.skipped], problems
    return found


def _publish(site: FakeSite, n: int, *, version: int = 0, prefix: str = "/lokales") -> dict[str, object]:
    items = {f"{prefix}/{i}.html": article(i, version=version if i == 1 else 0) for i in range(n)}
    if version:  # a changed article gets a new date in the feed (the feed's "updated")
        items[f"{prefix}/1.html"] = article(1, version=version, date="2025-12-24")
    for path, item in items.items():
        site.add_page(path, item)
    return items


def test_rounds_archive_new_pages_skip_unchanged_ones_and_replace_changed_ones(site, cli_env):
    archive = cli_env / "archive"
    items = _publish(site, 4)
    site.add_feed("/feed.xml", list(items), items=items)
    code, err, [first] = _follow(archive, site.url("/feed.xml"))
    assert code == 0, err
    assert (first["new"], first["changed"], first["failed"], first["sources_read"]) == (4, 0, 0, 1)
    assert re.fullmatch(r"follow/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.warc\.gz", first["warc"])
    assert "4 new" in err and "follow round" in err
    read = _articles(archive)
    assert set(read) == {site.url(p) for p in items} and read[site.url("/lokales/2.html")].date == article(2).date

    hits = len(site.requests)
    code, _, [second] = _follow(archive, site.url("/feed.xml"))
    assert (second["sources_unchanged"], second["new"], second["requests"], second["warc"]) == (1, 0, 1, None)
    assert len(site.requests) == hits + 1  # only the feed, answered 304

    changed = _publish(site, 4, version=1)
    site.add_feed("/feed.xml", list(changed), items=changed)
    code, _, [third] = _follow(archive, site.url("/feed.xml"))
    assert (third["new"], third["changed"], third["unchanged"]) == (0, 1, 3)
    assert site.hits("/lokales/1.html") == 2 and site.hits("/lokales/0.html") == 1
    read = _articles(archive)
    assert len(read) == 4 and "Nachtrag 1" in read[site.url("/lokales/1.html")].text  # the newest capture wins
    assert len(list((archive / "follow").glob("*.warc.gz"))) == 2


def test_faults_are_reported_with_their_reason_and_never_stop_the_others(site, cli_env):
    archive = cli_env / "archive"
    good = _publish(site, 2)
    site.route("/missing.html", status=404)
    site.route("/gone.html", status=410)
    site.route("/error.html", status=500)
    site.route("/busy.html", status=429, headers={"Retry-After": "600"})
    site.add_page("/slow.html", article(7), delay=3)
    site.route("/endless.html", endless=True)
    site.route("/file.pdf", body=b"%PDF-1.4", content_type="application/pdf")
    site.route("/loop.html", status=302, headers={"Location": "/loop.html"})
    site.route("/empty.html", body=b"<html><body><nav>Start</nav></body></html>")
    faulty = ["/missing.html", "/gone.html", "/error.html", "/slow.html", "/endless.html", "/file.pdf", "/loop.html", "/empty.html"]
    site.add_feed("/feed.xml", [*good, *faulty], items=good)
    # the 429 comes from another host name (its own origin), so it holds up only that host
    site.add_feed("/busy-feed.xml", [site.url("/busy.html", host="localhost")])
    busy_feed = site.url("/busy-feed.xml", host="localhost")
    code, err, [report] = _follow(archive, site.url("/feed.xml"), busy_feed, site.url("/vanished.xml"),
                                  extra=("--max-bytes", "100000"))
    assert code == 0, err
    assert (report["new"], report["failed"], report["sources_failed"]) == (2, 9, 1)
    reasons = {f["url"].rsplit("/", 1)[1]: f["reason"] for f in report["failures"]}
    assert reasons == {
        "missing.html": "HTTP 404", "gone.html": "HTTP 410", "error.html": "HTTP 500", "slow.html": "timed out",
        "endless.html": "larger than the cap of 100000 bytes", "file.pdf": "content type application/pdf is not accepted here",
        "loop.html": "redirect loop", "empty.html": reasons["empty.html"],
        "busy.html": "HTTP 429 (Retry-After 600 s)", "vanished.xml": "HTTP 404",
    }
    assert reasons["empty.html"].startswith("not archived: no article text on the page")
    assert "failed source " + site.url("/vanished.xml") + ": HTTP 404" in err
    assert set(_articles(archive)) == {site.url(p) for p in good}

    # the next round: the feed costs a 304; no failed page is asked again before its wait is over,
    # and the host that said 429 is sent nothing at all
    before = {p: site.hits(p) for p in [*faulty, "/busy.html", "/busy-feed.xml", "/vanished.xml"]}
    code, err, [again] = _follow(archive, site.url("/feed.xml"), busy_feed, site.url("/vanished.xml"))
    assert {p: site.hits(p) for p in before} == before and again["requests"] == 1
    assert (again["failed"], again["sources_failed"], again["sources_unchanged"], again["waiting"]) == (0, 0, 1, 11), err


def test_links_to_other_hosts_and_private_addresses_are_refused_unless_listed(site, cli_env):
    archive = cli_env / "archive"
    items = _publish(site, 1)
    other = site.url("/lokales/0.html", host="localhost")  # the same server under another host name
    site.add_feed("/feed.xml", [*items, other, "http://169.254.169.254/latest/meta-data/", "ftp://127.0.0.1/x.html"])
    code, err, [report] = _follow(archive, site.url("/feed.xml"))
    assert code == 0, err
    refused = {r["url"]: r["reason"] for r in report["refusals"]}
    assert report["new"] == 1 and report["refused"] == 3
    assert "localhost is not the source's site" in refused[other]
    assert "169.254.169.254 is not the source's site" in refused["http://169.254.169.254/latest/meta-data/"]
    assert "only http and https" in refused["ftp://127.0.0.1/x.html"]
    assert all(r.headers["host"].startswith("127.0.0.1") for r in site.requests)

    _code, err, [listed] = _follow(cli_env / "archive2", site.url("/feed.xml"), env={"QABOT_FOLLOW_HOSTS": "localhost"})
    assert listed["new"] == 2 and listed["refused"] == 2, err


def test_a_feed_on_the_internet_cannot_lead_to_a_private_address(site, tmp_path):
    """Pretend 127.0.0.1 is a public address and 127.0.0.2 an intranet one: a public feed's link to
    the intranet (even to a host the operator lists) is refused where the connection would be made."""
    items = _publish(site, 1)
    names = {"news.example": ["127.0.0.1"], "intranet.example": ["127.0.0.2"]}
    site.add_feed("/feed.xml", [f"http://news.example:{site.port}/lokales/0.html", f"http://intranet.example:{site.port}/wiki.html"],
                  items={})
    fetcher = Fetcher(user_agent="qabot/test", min_interval=0, resolver=lambda host, port: names.get(host, [host]),
                      public=lambda address: address == "127.0.0.1")
    with fetcher, follower_lock(tmp_path), State(tmp_path) as state:
        report = Round([f"http://news.example:{site.port}/feed.xml"], archive=tmp_path, state=state, fetcher=fetcher,
                       options=RoundOptions(hosts=("intranet.example",))).run()
    assert report.new == 1 and not report.failures, report.summary()
    [refusal] = report.refusals
    assert refusal.reason.startswith("refused: intranet.example is on a private") and "127.0.0.2" in refusal.reason
    assert "/wiki.html" not in site.paths_requested() and items


def test_robots_txt_is_honoured(site, cli_env):
    items = _publish(site, 3)
    site.route("/robots.txt", body=b"User-agent: qabot\nDisallow: /lokales/2.html\n", content_type="text/plain")
    site.add_feed("/feed.xml", list(items), items=items)
    _code, _err, [report] = _follow(cli_env / "archive", site.url("/feed.xml"))
    assert report["new"] == 2 and [r["reason"] for r in report["refusals"]] == ["disallowed by robots.txt"]
    assert site.hits("/lokales/2.html") == 0 and site.hits("/robots.txt") == 1
    site.route("/robots.txt", body=b"User-agent: *\nDisallow: /\n", content_type="text/plain")
    _, _, [report] = _follow(cli_env / "archive2", site.url("/feed.xml"))
    assert report["sources_failed"] == 1 and report["failures"][0]["reason"] == "disallowed by robots.txt"
    assert site.hits("/feed.xml") == 1


def test_sitemap_indexes_news_sitemaps_and_source_list_files(site, cli_env):
    items = _publish(site, 3, prefix="/wirtschaft")
    paths = list(items)
    site.route("/sitemap-1.xml", body=sitemap([(site.url(paths[0]), "2025-08-15"), (site.url(paths[1]), None)]),
               content_type="application/xml")
    site.route("/news.xml", body=sitemap([(site.url(paths[2]), "2025-08-15T10:00:00+02:00")], news=True), content_type="text/xml")
    site.route("/sitemap.xml", body=sitemap_index([site.url("/sitemap-1.xml"), site.url("/news.xml")]), content_type="application/xml")
    listing = cli_env / "sources.txt"
    listing.write_text(f"# Testblatt\n{site.url('/sitemap.xml')}\n")
    code, err, [report] = _follow(cli_env / "archive", str(listing))
    assert code == 0 and report["new"] == 3 and report["sources_read"] == 3, err
    assert set(_articles(cli_env / "archive")) == {site.url(p) for p in paths}


def test_a_failed_page_is_tried_again_after_its_wait(site, tmp_path):
    clock = [1_000_000.0]
    site.route("/lokales/0.html", status=500)
    site.add_feed("/feed.xml", ["/lokales/0.html"])

    def run() -> object:
        with Fetcher(user_agent="qabot/test", min_interval=0) as fetcher, State(tmp_path) as state:
            return Round([site.url("/feed.xml")], archive=tmp_path, state=state, fetcher=fetcher,
                         options=RoundOptions(), now=lambda: clock[0]).run()

    assert run().failed == 1
    clock[0] += 60
    assert run().failed == 0 and site.hits("/lokales/0.html") == 1  # waiting (the feed itself is a 304)
    site.add_page("/lokales/0.html", article(0))
    clock[0] += 300
    report = run()
    assert report.new == 1 and site.hits("/lokales/0.html") == 2, report.summary()


def test_a_source_that_keeps_failing_says_how_often(site, tmp_path):
    clock = [1_000_000.0]
    summaries = []
    for _ in range(3):
        with Fetcher(user_agent="qabot/test", min_interval=0) as fetcher, State(tmp_path) as state:
            report = Round([site.url("/feed.xml")], archive=tmp_path, state=state, fetcher=fetcher, options=RoundOptions(),
                           now=lambda: clock[0]).run()
        summaries.append(report.summary())
        clock[0] += 24 * 3600
    assert "HTTP 404 (3 times in a row)" in summaries[-1] and "next try in 24.0 h" in summaries[-1]


def test_a_second_follower_is_refused_and_bad_input_is_one_line(site, cli_env):
    archive = cli_env / "archive"
    with follower_lock(archive):
        code, err, _ = _follow(archive, site.url("/feed.xml"))
    assert code == 1 and re.fullmatch(r"error: another qabot follow \(pid \d+\) is following into .*\n", err), err
    for sources, message in [(("not-a-file.txt",), "neither an http(s) URL nor a file"),
                             (("file:///etc/passwd",), "only http and https")]:
        code, err, _ = _follow(archive, *sources)
        assert code == 1 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    result = CliRunner().invoke(cli, ["follow", site.url("/feed.xml"), "--archive", str(archive), "--once"], env={})
    assert result.exit_code == 1 and "QABOT_FOLLOW_CONTACT" in result.stderr


def test_with_an_index_a_round_that_archived_something_updates_it(site, cli_env):
    from qabot.store import Store

    items = _publish(site, 3)
    site.add_feed("/feed.xml", list(items), items=items)
    index = cli_env / "index"
    code, err, [report] = _follow(cli_env / "archive", site.url("/feed.xml"), extra=("--index", str(index)))
    assert code == 0 and report["index"]["articles_indexed"] == 3 and report["steps"]["index"] > 0, err
    with Store.open(index) as store:
        assert store.counts()["articles"] == 3
    code, err, [report] = _follow(cli_env / "archive", site.url("/feed.xml"), extra=("--index", str(index)))
    assert report["index"] is None and "index" not in report["steps"]  # nothing new: the index is not touched
