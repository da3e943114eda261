"""Web archives as articles (qabot.ingest.warc, versions), and `qabot index` over a folder of
web pages, a web archive and agency files, end to end.

Every WARC here is written by warcio, as `qabot follow` writes its captures: response records
with WARC-Target-URI and WARC-Date, plus what crawls also hold (requests, revisits, a 404, a
PDF), and what goes wrong with them (a truncated .warc.gz, a record with a bad header).
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

from click.testing import CliRunner
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from qabot.documents import Article, Problem
from qabot.frontends.cli import cli
from qabot.ingest.archive import iter_articles

from .conftest import SHARED
from .test_ingest_web import BODY, META, page

DPA = SHARED / "corpora" / "wire-formats" / "dpa-digitalwires" / "newsml-g2"


def record(writer: WARCWriter, uri: str, body: bytes, *, date: str, status: str = "200 OK",
           content_type: str = "text/html; charset=utf-8", kind: str = "response") -> None:
    http = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
    if kind == "revisit":
        made = writer.create_revisit_record(uri, digest="sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                            refers_to_uri=uri, refers_to_date=date, http_headers=http)
        made.rec_headers.replace_header("WARC-Date", date)
    else:
        made = writer.create_warc_record(uri, kind, payload=io.BytesIO(body), http_headers=http,
                                         warc_headers_dict={"WARC-Date": date})
    writer.write_record(made)


def warc(records: list[dict[str, object]], *, gzipped: bool = True) -> bytes:
    """A WARC file's bytes: one gzip member a record when ``gzipped`` (as warcio writes them)."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=gzipped)
    for spec in records:
        record(writer, **spec)  # type: ignore[arg-type]
    return out.getvalue()


def article_page(slug: str, words: str, **head: str) -> bytes:
    return page(head=head.get("head", ""), body=[f"{words} {BODY[0]}", *BODY[1:]]).replace(
        "neue-bruecke", slug).encode()


def read(path: Path) -> tuple[list[Article], list[Problem]]:
    problems: list[Problem] = []
    return list(iter_articles(path, on_problem=problems.append)), problems


def test_a_crawl_gives_one_article_per_html_page_answered_200_newest_capture_first(tmp_path: Path) -> None:
    base = "https://www.elbkurier.example/lokales/"
    data = warc([
        {"uri": base + "bruecke", "body": article_page("bruecke", "Erste Fassung."), "date": "2025-03-14T08:00:00Z"},
        {"uri": base + "bruecke", "body": b"", "date": "2025-03-15T08:00:00Z", "kind": "revisit"},
        {"uri": base + "fehlt", "body": b"<html><body><p>Nicht gefunden</p></body></html>", "date": "2025-03-14T08:01:00Z",
         "status": "404 Not Found"},
        {"uri": base + "plan.pdf", "body": b"%PDF-1.7 " + b"x" * 200, "date": "2025-03-14T08:02:00Z",
         "content_type": "application/pdf"},
        {"uri": base + "bruecke", "body": article_page("bruecke", "Zweite Fassung."), "date": "2025-03-16T09:30:00Z"},
        {"uri": base + "faehre", "body": article_page("faehre", "Die Fähre fährt wieder."), "date": "2025-03-14T10:00:00Z"},
    ])
    (tmp_path / "crawl.warc.gz").write_bytes(data)
    articles, problems = read(tmp_path)
    assert not problems
    by_url = {a.url: a for a in articles}
    assert set(by_url) == {base + "bruecke", base + "faehre"}  # the 404, the PDF and the revisit are not articles
    newest = by_url[base + "bruecke"]
    assert newest.id == newest.url and newest.text.startswith("Zweite Fassung.")  # the newer capture (record 5) wins
    assert (newest.line, newest.date) == (5, "2025-03-16")  # no date on the page: the capture's
    assert newest.source == "elbkurier.example"  # no site name either: the host
    assert newest.path == str(tmp_path / "crawl.warc.gz")


def test_the_newest_capture_wins_across_files_and_an_html_file_of_the_same_page_shares_its_id(tmp_path: Path) -> None:
    url = "https://www.elbkurier.example/lokales/neue-bruecke?seite=1"
    canonical = {"head": META}
    (tmp_path / "a-neu.warc.gz").write_bytes(warc([{"uri": url + "&utm_source=feed", "date": "2025-03-20T00:00:00Z",
                                                    "body": article_page("neue-bruecke", "Neueste Fassung.", **canonical)}]))
    (tmp_path / "b-alt.warc").write_bytes(warc([{"uri": url, "date": "2025-03-01T00:00:00Z",
                                                 "body": article_page("neue-bruecke", "Alte Fassung.", **canonical)}], gzipped=False))
    html = tmp_path / "c-datei.html"
    html.write_bytes(article_page("neue-bruecke", "Gespeicherte Fassung.", **canonical))
    os.utime(html, (1_740_000_000, 1_740_000_000))  # 2025-02-19: older than both captures
    articles, problems = read(tmp_path)
    assert not problems
    assert [(a.id, a.text.split("\n\n")[1][:16]) for a in articles] == [(url, "Neueste Fassung.")]
    os.utime(html, (1_750_000_000, 1_750_000_000))  # 2025-06-15: now the file is the newest
    articles, _ = read(tmp_path)
    assert [(a.id, Path(a.path).name) for a in articles] == [(url, "c-datei.html")]


def test_a_bad_record_header_and_a_truncated_file_cost_only_their_records(tmp_path: Path) -> None:
    base = "https://elbkurier.example/"
    good = [warc([{"uri": f"{base}{n}", "body": article_page(str(n), f"Meldung {n}."), "date": "2025-03-14T08:00:00Z"}])
            for n in range(3)]
    bad_header = gzip.compress(b"NOT A WARC LINE\r\nWARC-Type: response\r\n\r\n")
    (tmp_path / "gemischt.warc.gz").write_bytes(good[0] + bad_header + good[1] + good[2])
    (tmp_path / "abgebrochen.warc.gz").write_bytes(good[0] + good[1][: len(good[1]) // 2])
    (tmp_path / "leer.warc").write_bytes(b"")
    articles, problems = read(tmp_path)
    found = sorted((Path(a.path).name, a.line, a.url) for a in articles)
    assert found == [("abgebrochen.warc.gz", 1, f"{base}0"), ("gemischt.warc.gz", 3, f"{base}1"), ("gemischt.warc.gz", 4, f"{base}2")]
    reasons = sorted((Path(p.path).name, p.line, p.reason) for p in problems)
    assert reasons[0][:2] == ("abgebrochen.warc.gz", 2) and "the file ends inside it (truncated)" in reasons[0][2]
    assert reasons[1][:2] == ("gemischt.warc.gz", 2) and "record 2: bad WARC record header" in reasons[1][2]
    assert "NOT A WARC LINE" in reasons[1][2]
    assert reasons[2][0] == "leer.warc"
    # The first copy of record 0 was dropped: both files hold it, and the same capture time ties; the first file wins.


def test_a_bad_record_in_an_uncompressed_warc_resumes_at_the_next_record(tmp_path: Path) -> None:
    base = "https://elbkurier.example/"
    data = warc([{"uri": f"{base}{n}", "body": article_page(str(n), f"Meldung {n}."), "date": "2025-03-14T08:00:00Z"}
                 for n in range(3)], gzipped=False)
    second = data.index(b"WARC/1.", 10)
    (tmp_path / "x.warc").write_bytes(data[:second] + b"WARX" + data[second + 4 :])
    articles, problems = read(tmp_path)
    assert [(a.line, a.url) for a in articles] == [(1, f"{base}0"), (3, f"{base}2")]
    assert [(p.line, p.skipped) for p in problems] == [(2, True)] and "bad WARC record header" in problems[0].reason


def test_a_response_without_target_uri_and_a_misdeclared_page_are_reported(tmp_path: Path) -> None:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=iso-8859-1")], protocol="HTTP/1.1")
    made = writer.create_warc_record("https://elbkurier.example/a", "response", http_headers=http,
                                     payload=io.BytesIO(article_page("a", "Umlaute: Übergabe in Köln.")))
    writer.write_record(made)
    anonymous = writer.create_warc_record("https://elbkurier.example/b", "response", http_headers=http,
                                          payload=io.BytesIO(article_page("b", "Ohne Adresse.")))
    anonymous.rec_headers.remove_header("WARC-Target-URI")
    writer.write_record(anonymous)
    (tmp_path / "x.warc.gz").write_bytes(out.getvalue())
    articles, problems = read(tmp_path)
    assert [a.url for a in articles] == ["https://elbkurier.example/a"] and "Übergabe in Köln" in articles[0].text
    assert [(p.line, p.skipped) for p in problems] == [(1, False), (2, True)]
    assert "record 1: declares charset 'iso-8859-1' but the bytes are UTF-8" in problems[0].reason
    assert "record 2: bad WARC record" in problems[1].reason  # warcio cannot parse a response without one


def test_qabot_index_over_a_page_a_web_archive_and_a_newsml_file(cli_env: Path) -> None:
    assert DPA.is_dir(), f"{DPA} is missing: the wire-format examples must be in ../shared beside the repository"
    archive = cli_env / "archiv"
    archive.mkdir()
    (archive / "bruecke.html").write_text(page(head=META), encoding="utf-8")
    (archive / "crawl.warc.gz").write_bytes(warc([
        {"uri": "https://elbkurier.example/faehre", "body": article_page("faehre", "Die Fähre fährt wieder."),
         "date": "2025-03-18T07:00:00Z"}]))
    (archive / "dpa.xml").write_bytes((DPA / "with_dateline.xml").read_bytes())
    runner = CliRunner()
    first = runner.invoke(cli, ["index", str(archive), "--index", "ix", "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert (report["articles_indexed"], report["errors"]) == (3, [])
    import sqlite3
    generation = json.loads((cli_env / "ix" / "manifest.json").read_text())["generation"]
    rows = sqlite3.connect(cli_env / "ix" / generation / "qabot.db").execute(
        "SELECT id, title, date, url FROM articles ORDER BY id").fetchall()
    assert rows == [
        ("https://elbkurier.example/faehre", "Neue Brücke über die Elbe eröffnet", "2025-03-18", "https://elbkurier.example/faehre"),
        ("https://www.elbkurier.example/lokales/neue-bruecke?seite=1", "Neue Brücke über die Elbe eröffnet", "2025-03-14",
         "https://www.elbkurier.example/lokales/neue-bruecke?seite=1"),
        ("urn:newsml:dpa.com:20090101:250128-930-357319", "DeepSeek-Schock aus China: Zeichen für KI-Zeitenwende?", "2025-01-28", None),
    ]
    again = json.loads(runner.invoke(cli, ["index", str(archive), "--index", "ix", "--json"], catch_exceptions=False).output)
    assert (again["articles_unchanged"], again["articles_indexed"], again["chunks_embedded"]) == (3, 0, 0)
