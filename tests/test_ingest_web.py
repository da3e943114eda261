"""HTML pages as articles (qabot.ingest.web, qabot.ingest.charset): the article without its
boilerplate, the page's own metadata, ids from the canonical URL, problems named.

The pages are written here (German text of our own); real pages are measured by
scripts/bench/bench_extraction.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qabot.documents import Article, Problem
from qabot.ingest.archive import iter_articles
from qabot.ingest.charset import decode_page
from qabot.ingest.web import article_from_html, canonical_url, date_from_name, extract_page, page_id

BODY = [
    "Nach vier Jahren Bauzeit ist die neue Fußgänger- und Radbrücke über die Elbe am Freitagmorgen eröffnet "
    "worden. Die Oberbürgermeisterin durchschnitt das Band gemeinsam mit Kindern der Grundschule.",
    "Die Brücke ist 320 Meter lang und verbindet die Altstadt mit dem neuen Wohnviertel am Hafen. Sie hat rund "
    "28 Millionen Euro gekostet, etwas mehr als ursprünglich geplant.",
    "Wer künftig mit dem Fahrrad zur Arbeit fährt, spart nach Angaben der Stadt bis zu zwölf Minuten. Am "
    "Wochenende soll es ein Brückenfest mit Musik und Ständen geben.",
]


def page(*, head: str = "", lang: str = "de", body: list[str] | None = None, charset: str | None = "utf-8") -> str:
    """A news page with navigation, an ad, comments and a footer around the article."""
    meta = f'<meta charset="{charset}">' if charset else ""
    paragraphs = "".join(f"<p>{p}</p>" for p in (BODY if body is None else body))
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head>{meta}<title>Neue Brücke über die Elbe eröffnet | Elbkurier</title>{head}'
        "</head><body><nav><ul><li><a href='/'>Start</a></li><li><a href='/lokales'>Lokales</a></li>"
        "<li><a href='/sport'>Sport</a></li></ul></nav><div class='ad'>Anzeige: Jetzt das Abo abschließen und sparen!</div>"
        f"<article><h1>Neue Brücke über die Elbe eröffnet</h1>{paragraphs}</article>"
        "<section class='comments'><h2>Kommentare</h2><p>Leser123: Endlich! Hat ja lange genug gedauert, "
        "aber nun ist sie da und wir freuen uns sehr.</p></section>"
        "<footer>Impressum · Datenschutz · Kontakt</footer></body></html>"
    )


META = ('<link rel="canonical" href="https://www.elbkurier.example/lokales/neue-bruecke?seite=1#kommentare">'
        '<meta property="og:site_name" content="Elbkurier"><meta name="author" content="Clara Beispiel">'
        '<meta property="article:published_time" content="2025-03-14T08:30:00+01:00">')


def test_the_article_is_read_without_boilerplate_and_with_the_pages_metadata() -> None:
    found = extract_page(page(head=META))
    assert found.text == "\n\n".join(BODY)  # no menu, ad, comment, footer; the headline is the title, not the text
    assert found.title == "Neue Brücke über die Elbe eröffnet"
    assert found.date == "2025-03-14"
    assert found.author == "Clara Beispiel"
    assert found.url == "https://www.elbkurier.example/lokales/neue-bruecke?seite=1"
    assert found.language == "de"
    assert found.site == "Elbkurier"


def test_article_from_html_gives_the_canonical_id_and_puts_the_byline_first() -> None:
    article = article_from_html(page(head=META).encode(), url="https://elbkurier.example/x?utm_source=feed", path="p.html")
    assert article.id == article.url == "https://www.elbkurier.example/lokales/neue-bruecke?seite=1"
    assert article.text.startswith("Von Clara Beispiel\n\nNach vier Jahren Bauzeit")
    assert (article.title, article.date, article.source) == ("Neue Brücke über die Elbe eröffnet", "2025-03-14", "Elbkurier")
    english = article_from_html(page(head=META, lang="en").encode(), url=None, path="p.html")
    assert english.text.startswith("By Clara Beispiel\n\n")


def test_ids_come_from_the_canonical_link_else_og_url_else_the_fetched_url_else_the_file() -> None:
    og = '<meta property="og:url" content="/lokales/og-bruecke">'
    assert page_id(page(head=og).encode(), url="https://Elbkurier.example:443/a", rel="x.html") == "https://elbkurier.example/lokales/og-bruecke"
    assert page_id(page().encode(), url="HTTPS://Elbkurier.EXAMPLE/a#top", rel="x.html") == "https://elbkurier.example/a"
    assert page_id(page().encode(), url=None, rel="lokales/2025/bruecke.html") == "lokales/2025/bruecke"
    front = '<link rel="canonical" href="https://elbkurier.example/">'  # every page says "I am the front page"
    assert page_id(page(head=front).encode(), url="https://elbkurier.example/lokales/b", rel="x.html") == "https://elbkurier.example/lokales/b"


def test_canonical_url_is_small_and_stable() -> None:
    assert canonical_url("HTTP://Example.ORG:80/a/b?x=1&y=2#frag") == "http://example.org/a/b?x=1&y=2"
    assert canonical_url("https://example.org") == "https://example.org/"
    assert canonical_url("https://user:pw@example.org:8443/p") == "https://example.org:8443/p"
    assert canonical_url("../c", "https://example.org/a/b/") == "https://example.org/a/c"
    assert canonical_url("mailto:redaktion@example.org") is None
    assert canonical_url("javascript:alert(1)") is None
    assert canonical_url("http://[::1") is None


def test_a_page_without_article_text_is_a_problem_not_an_empty_article() -> None:
    menu = "<html><body><nav><ul><li><a href='/'>Start</a></li><li><a href='/s'>Sport</a></li></ul></nav></body></html>"
    with pytest.raises(ValueError, match="no article text"):
        article_from_html(menu.encode(), url="https://example.org/", path="menu.html")
    with pytest.raises(ValueError):
        article_from_html(b"   ", url=None, path="blank.html")


def test_charsets_are_believed_only_when_the_bytes_agree() -> None:
    text = "Die Brücke in München kostet 28 Mio. €"
    assert decode_page(f'<meta charset="utf-8">{text}'.encode()) == (f'<meta charset="utf-8">{text}', None)
    lie, warning = decode_page(f'<meta charset="iso-8859-1">{text}'.encode())  # UTF-8 bytes that claim latin-1
    assert "München" in lie and "declares charset 'iso-8859-1' but the bytes are UTF-8" in (warning or "")
    old, warning = decode_page(f'<meta charset="windows-1252">{text}'.encode("cp1252"))
    assert "München" in old and "€" in old and warning is None
    broken, warning = decode_page(f'<meta charset="utf-8">{text}'.encode("cp1252"))
    assert "München" in broken and "declares charset 'utf-8' but byte" in (warning or "")
    header, warning = decode_page(text.encode("cp1252"), "text/html; charset=windows-1252")
    assert header == text and warning is None
    assert "unknown charset 'klingon'" in (decode_page(b'<meta charset="klingon">abc')[1] or "")


def test_html_files_in_an_archive(tmp_path: Path) -> None:
    (tmp_path / "lokales").mkdir()
    (tmp_path / "lokales" / "bruecke.html").write_text(page(head=META), encoding="utf-8")
    undated = tmp_path / "lokales" / "2024-11-05-faehre.htm"
    undated.write_text(page(body=BODY[1:]).replace("Brücke über die Elbe eröffnet", "Fähre fährt wieder"), encoding="utf-8")
    mtime_only = tmp_path / "lokales" / "hafen.html"
    mtime_only.write_text(page(body=BODY[:2], charset="iso-8859-1"), encoding="utf-8")  # a misdeclared charset
    os.utime(mtime_only, (1_700_000_000, 1_700_000_000))  # 2023-11-14
    (tmp_path / "leer.html").write_text("<html><body><nav>Start</nav></body></html>", encoding="utf-8")
    problems: list[Problem] = []
    articles = {a.id: a for a in iter_articles(tmp_path, on_problem=problems.append)}
    assert set(articles) == {"https://www.elbkurier.example/lokales/neue-bruecke?seite=1", "lokales/2024-11-05-faehre",
                             "lokales/hafen"}
    assert articles["lokales/2024-11-05-faehre"].date == "2024-11-05"  # no date on the page: the file's name
    assert articles["lokales/hafen"].date == "2023-11-14"  # nor in the name: the mtime, the last resort
    assert articles["lokales/hafen"].url is None and "Brücke" in articles["lokales/hafen"].text
    reasons = {(Path(p.path).name, p.skipped): p.reason for p in problems}
    assert "no article text" in reasons[("leer.html", True)]
    assert "declares charset 'iso-8859-1' but the bytes are UTF-8" in reasons[("hafen.html", False)]
    assert all(isinstance(a, Article) for a in articles.values())


def test_date_from_name() -> None:
    assert date_from_name("archiv/2025-08-15-alaska.html") == "2025-08-15"
    assert date_from_name("20250815_alaska.html") == "2025-08-15"
    assert date_from_name("2025-13-45-kaputt.html") is None
    assert date_from_name("artikel-123.html") is None
