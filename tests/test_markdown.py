"""The chat reply's Markdown (``/v1/chat/completions``): whatever came from the archive (titles,
dates, the answer sentence, notes, URLs) is text, never markup. Checked the way a chat UI meets
it: rendered by markdown-it's commonmark preset (raw HTML on, as many UIs have it), then parsed
for tags, attributes and link targets."""

from __future__ import annotations

import random
import string
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from qabot.documents import Answer, Passage
from qabot.frontends.api.markdown import escape, link, link_target
from qabot.frontends.api.openai_compat import render_markdown

# every tag and attribute render_markdown itself writes; anything else came alive from the archive
OUR_TAGS = {"p", "strong", "em", "ol", "li", "a"}
OUR_ATTRIBUTES = {("a", "href"), ("ol", "start")}

HOSTILE_TITLES = [
    "<script>alert(1)</script>Gipfel",
    '<img src=x onerror="alert(1)"> Gipfel',
    "[Klick](javascript:alert(1)) *fett* _kursiv_ `code` ~~weg~~",
    "&lt;script&gt; &amp; AT&T | a | b |",
    "# Überschrift",
    "> Zitat",
    "1. Liste",
    "- Punkt",
    "![Bild](https://evil.example/x.png)",
    "Ende mit Backslash \\",
    "<https://evil.example/auto>",
]


class _Tags(HTMLParser):
    """Every start tag with its attributes, and every link target."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text += data

    @property
    def hrefs(self) -> list[str | None]:
        return [dict(attrs).get("href") for tag, attrs in self.tags if tag == "a"]


def rendered(markdown: str) -> _Tags:
    parser = _Tags()
    parser.feed(MarkdownIt("commonmark").render(markdown))
    parser.close()
    return parser


def _passage(number: int, title: str, url: str | None, *, date: str | None = "2025-08-15") -> Passage:
    return Passage(chunk_id=number, article_id=f"a{number}", title=title, date=date, url=url, source="test",
                   text="Putin soll um 11.00 Uhr in Alaska ankommen.", start=0, end=10, score=0.9)


def _answer(passages: list[Passage], *, sentence: str | None = "Putin soll um 11.00 Uhr in Alaska ankommen.",
            notes: tuple[str, ...] = (), llm_reply: str | None = None) -> Answer:
    return Answer(question="Wann?", sentence=sentence, passages=tuple(passages), passage_index=0 if sentence else None,
                  notes=notes, llm_reply=llm_reply)


def _assert_inert(markdown: str) -> _Tags:
    page = rendered(markdown)
    for tag, attrs in page.tags:
        assert tag in OUR_TAGS, f"a live <{tag}> in {markdown!r}"
        for name, _ in attrs:
            assert (tag, name) in OUR_ATTRIBUTES, f"a live {name}= on <{tag}> in {markdown!r}"
    return page


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_a_hostile_title_stays_text_and_its_link_goes_where_the_archive_said(title):
    markdown = render_markdown(_answer([_passage(1, title, "https://example.org/a")]))
    page = _assert_inert(markdown)
    assert page.hrefs == ["https://example.org/a#:~:text=Putin%20soll%20um%2011.00%20Uhr%20in%20Alaska%20ankommen."]
    assert " ".join(title.split()) in page.text  # shown as written, every character


def test_a_hostile_sentence_date_and_note_stay_text():
    sentence = '<img src=x onerror="alert(1)"> Putin [landet](javascript:alert(1)) um *11* Uhr.'
    answer = _answer([_passage(1, "Gipfel", None, date="<b>2025</b>")], sentence=sentence, notes=("<script>x()</script>",))
    page = _assert_inert(render_markdown(answer))
    assert sentence in page.text and "<b>2025</b>" in page.text and "<script>x()</script>" in page.text
    assert page.hrefs == []


def test_an_llm_reply_is_text_too_but_keeps_its_markers():
    reply = "Putin landet um 11.00 Uhr <img src=x onerror=alert(1)> [1]. [Mehr](javascript:alert(1)) [2]"
    answer = _answer([_passage(1, "Eins", None), _passage(2, "Zwei", None)], llm_reply=reply)
    markdown = render_markdown(answer)
    assert "[1]" in markdown and "[2]" in markdown
    assert reply in _assert_inert(markdown).text


@pytest.mark.parametrize(("stored", "href"), [
    ('https://example.org/a">b', "https://example.org/a%22%3Eb"),
    ("https://example.org/a)b", "https://example.org/a)b"),
    ("https://example.org/a b c", "https://example.org/a%20b%20c"),
    ("https://example.org/a>b<c", "https://example.org/a%3Eb%3Cc"),
    ("https://example.org/a\\b", "https://example.org/a%5Cb"),
    ("https://example.org/?q=1&lt=2&amp;x", "https://example.org/?q=1&lt=2&amp;x"),
    ("https://example.org/m%C3%BCnchen", "https://example.org/m%C3%BCnchen"),
    ("https://example.org/münchen", "https://example.org/m%C3%BCnchen"),
])
def test_stored_urls_keep_their_target(stored, href):
    answer = _answer([_passage(1, "Gipfel", stored)], sentence=None)  # no text fragment: the URL as stored
    answer = Answer(question="Wann?", sentence=None, passages=answer.passages)
    page = _assert_inert(render_markdown(answer))
    assert page.hrefs == [href]


@pytest.mark.parametrize("stored", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<script>x</script>",
                                    "vbscript:x", "//evil.example/a", "file:///etc/passwd", "https://"])
def test_a_link_that_is_not_http_is_no_link(stored):
    answer = Answer(question="Wann?", sentence=None, passages=(_passage(1, "Gipfel", stored),))
    markdown = render_markdown(answer)
    page = _assert_inert(markdown)
    assert page.hrefs == [] and "Gipfel" in page.text


# -- the escaping functions ----------------------------------------------------------------------


def _random_texts(count: int) -> list[str]:
    """Strings dense in Markdown and HTML syntax: punctuation, digits, a few letters and spaces."""
    rng = random.Random(24)
    alphabet = string.punctuation * 3 + "ab1 "
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(count)]


@pytest.mark.parametrize("text", HOSTILE_TITLES + _random_texts(400))
def test_escaped_text_renders_as_exactly_its_characters(text):
    """The property everything else rests on: one paragraph, no tag, the same characters."""
    page = rendered(escape(text))
    assert [tag for tag, _ in page.tags] == ["p"], (text, escape(text))
    assert page.text.strip("\n") == " ".join(text.split()), (text, escape(text))


@pytest.mark.parametrize(("text", "escaped"), [
    ("<b>x</b> & y", "\\<b\\>x\\</b\\> \\& y"),
    ("*a* _b_ `c` ~d~ |e| [f](g)", "\\*a\\* \\_b\\_ \\`c\\` \\~d\\~ \\|e\\| \\[f\\](g)"),
    ("a\\b", "a\\\\b"),
    ("# Titel", "\\# Titel"), ("- Punkt", "\\- Punkt"), ("+ x", "\\+ x"), ("= x", "\\= x"), ("> x", "\\> x"),
    ("1. FC Köln", "1\\. FC Köln"), ("2025) war", "2025\\) war"), ("am 1. Mai", "am 1. Mai"),
    ("  viel \n\t Platz  ", "viel Platz"),
    ("Putin (Kreml) sagt: 11.00 Uhr!", "Putin (Kreml) sagt: 11.00 Uhr!"),  # plain prose stays readable
])
def test_escape(text, escaped):
    assert escape(text) == escaped


def test_escape_can_keep_citation_markers():
    assert escape("Er landet [1] um 11 Uhr [12]. [x]", keep_markers=True) == "Er landet [1] um 11 Uhr [12]. \\[x\\]"
    assert escape("[1]") == "\\[1\\]"


@pytest.mark.parametrize(("url", "target"), [
    ("https://example.org/a", "<https://example.org/a>"),
    ("  HTTP://Example.org/a  ", "<HTTP://Example.org/a>"),
    ("https://example.org/a b>c<d\\e\"f`g{h}", "<https://example.org/a%20b%3Ec%3Cd%5Ce%22f%60g%7Bh%7D>"),
    ("https://example.org/(a)?x=1&y=[2]#:~:text=a%20b", "<https://example.org/(a)?x=1\\&y=[2]#:~:text=a%20b>"),
    ("https://example.org/\n<script>", "<https://example.org/%0A%3Cscript%3E>"),
    ("https://example.org/ü", "<https://example.org/%C3%BC>"),
    ("javascript:alert(1)", None), ("data:text/html,x", None), ("ftp://example.org/a", None),
    ("//example.org/a", None), ("https://", None), ("https://[::1/", None), ("", None), (None, None),
])
def test_link_target(url, target):
    assert link_target(url) == target


def test_link():
    assert link("Gipfel <b>", "https://example.org/a") == "[Gipfel \\<b\\>](<https://example.org/a>)"
    assert link("Gipfel", "javascript:alert(1)") == "Gipfel"
    assert link("[x]", None) == "\\[x\\]"
