"""Text-fragment links (qabot/links.py): percent-encoding as the URL Fragment Text Directives
spec asks (dash, comma and ampersand included), umlauts, quotes, and URLs that already have a
query or a fragment."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from qabot.documents import Answer, Passage
from qabot.links import encode_term, text_directive, text_fragment_url

from .conftest import LANDING_SENTENCE


def test_the_landing_sentence_becomes_start_and_end():
    url = text_fragment_url("https://example.org/news/alaska", LANDING_SENTENCE)
    assert url == ("https://example.org/news/alaska#:~:text=Putin%20soll%20nach%20Kremlangaben,"
                   "Flugzeug%20in%20Alaska%20ankommen.")


@pytest.mark.parametrize(("text", "encoded"), [
    ("Grüße aus Köln", "Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln"),
    ("Elmendorf-Richardson", "Elmendorf%2DRichardson"),
    ("1,3 Millionen", "1%2C3%20Millionen"),
    ("Tom & Jerry", "Tom%20%26%20Jerry"),
    ('"Wir haben"', "%22Wir%20haben%22"),
    ("„Wir“ – sagt er", "%E2%80%9EWir%E2%80%9C%20%E2%80%93%20sagt%20er"),
    ("a#b?c=d/e'f", "a%23b%3Fc%3Dd%2Fe%27f"),
])
def test_terms_are_percent_encoded(text, encoded):
    assert encode_term(text) == encoded
    assert unquote(encoded) == text


def test_no_syntax_characters_survive_in_a_term():
    term = encode_term("Trump-Putin-Gipfel, Anchorage & „Elmendorf-Richardson“ (11.30 Uhr)")
    assert not set(term) & set("-,&# \"“„")


def test_a_short_sentence_is_matched_whole_and_whitespace_is_collapsed():
    assert text_directive("Putin  landet\num 11.00 Uhr.") == "text=Putin%20landet%20um%2011.00%20Uhr."
    assert text_directive("   ") is None


def test_an_existing_query_and_fragment_are_kept():
    url = text_fragment_url("https://example.org/a?id=7&x=%C3%BC#abschnitt-2", "Kurz und gut.")
    assert url == "https://example.org/a?id=7&x=%C3%BC#abschnitt-2:~:text=Kurz%20und%20gut."


def test_an_existing_directive_is_replaced():
    url = text_fragment_url("https://example.org/a#top:~:text=alt", "Neu hier.")
    assert url == "https://example.org/a#top:~:text=Neu%20hier."


@pytest.mark.parametrize("url", [None, "", "  ", "javascript:alert(1)", "ftp://example.org/x", "/relative/path"])
def test_no_link_without_an_http_url(url):
    assert text_fragment_url(url, "Ein Satz.") is None


def test_without_a_sentence_the_url_is_unchanged():
    assert text_fragment_url("https://example.org/a?b=1", None) == "https://example.org/a?b=1"


def _answer(url: str | None) -> Answer:
    passage = Passage(chunk_id=1, article_id="a", title="T", date="2025-08-15", url=url, source=None,
                      text=LANDING_SENTENCE, start=0, end=len(LANDING_SENTENCE), score=0.9)
    return Answer(question="q", sentence=LANDING_SENTENCE, passages=(passage,), passage_index=0,
                  sentence_start=0, sentence_end=len(LANDING_SENTENCE))


def test_the_answer_object_carries_url_to_sentence():
    assert _answer("https://example.org/x").to_dict()["url_to_sentence"].startswith("https://example.org/x#:~:text=Putin")
    assert _answer(None).to_dict()["url_to_sentence"] is None
    assert Answer(question="q", sentence=None).to_dict()["url_to_sentence"] is None
