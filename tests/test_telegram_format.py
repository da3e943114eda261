"""The bot's pure text functions: its texts, HTML rendering, splitting, addressing (follow-ups: test_conversation.py)."""

from __future__ import annotations

import re

import pytest

from qabot.documents import Answer, Passage
from qabot.frontends.telegram_format import (
    TEXTS,
    addressed_question,
    ask_me,
    plain_text,
    render_answer,
    render_passages,
    split_message,
    t,
    utf16_len,
    welcome,
)
from qabot.lexicon import detect_language
from tests.fake_bot_api import check_html

LANDING = "Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit (21.00 Uhr MESZ) mit dem Flugzeug in Alaska ankommen."


def passage(n: int = 1, *, text: str = "Some text.", url: str | None = None, title: str = "A title",
            start: int = 0) -> Passage:
    return Passage(chunk_id=n, article_id=f"a{n}", title=title, date="2025-08-15", url=url, source="dpa",
                   text=text, start=start, end=start + len(text), score=0.5)


def answer_with(sentence: str | None, *passages: Passage, index: int | None = 0) -> Answer:
    return Answer(question="q", sentence=sentence, passages=passages, passage_index=index if sentence else None,
                  sentence_start=0 if sentence else None, sentence_end=len(sentence) if sentence else None)


# -- rendering -----------------------------------------------------------------------------------


def test_answer_is_the_bold_sentence_then_numbered_sources_with_date():
    html = render_answer(answer_with(LANDING, passage(1, text=LANDING), passage(2)), "en")
    assert html.startswith(f"<b>{LANDING}</b> [1]")
    assert "<b>Sources</b>" in html and "1. A title · 2025-08-15 · dpa" in html and "\n\n2. " in html
    assert check_html(html)[0] == []


def test_everything_from_the_archive_is_escaped():
    evil = '<script>alert("x")</script> & <b>'
    p = passage(1, text=evil, title=evil, url='https://example.org/?a=1&b="2"')
    html = render_answer(answer_with(evil, p), "de")
    problems, text = check_html(html)
    assert problems == []
    assert "<script>" not in html and text.count(evil) == 3  # sentence, title, snippet
    assert 'href="https://example.org/?a=1&amp;b=&quot;2&quot;#:~:text=' in html  # the link lands on the sentence
    assert "<b>Quellen</b>" in html


def test_only_web_links_become_links():
    html = render_answer(answer_with("x", passage(1, url="javascript:alert(1)")), "en")
    assert "<a " not in html


def test_not_found_says_so_plainly_and_lists_the_closest_passages():
    html = render_answer(answer_with(None, passage(1)), "en")
    assert html.startswith(TEXTS["en"]["not_found"])
    assert "Closest passages" in html
    assert render_answer(answer_with(None), "de") == TEXTS["de"]["not_found"]


def test_full_passages_show_the_answering_sentence_in_bold_inside_its_passage():
    text = f"Vorher. {LANDING} Nachher & so."
    p = passage(3, text=text, start=100)
    answer = Answer(question="q", sentence=LANDING, passages=(p,), passage_index=0,
                    sentence_start=108, sentence_end=108 + len(LANDING))
    html = render_passages(answer.passages, "en", answer=answer, first_number=4)
    assert f"Vorher. <b>{LANDING}</b> Nachher &amp; so." in html
    assert "4. A title" in html and check_html(html)[0] == []


def test_more_heading_echoes_the_question_escaped():
    html = render_passages([passage(1)], "en", full=False, title=t("en", "more_results", question="<b>x</b> & y"))
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in html and check_html(html)[0] == []


def test_welcome_names_the_archive_size_and_dates_in_both_languages():
    stats = {"articles": 1, "first_date": "2025-08-15", "last_date": "2025-08-15"}
    assert "1 article (2025-08-15 – 2025-08-15)" in welcome("en", stats, username="qabot_bot")
    assert "@qabot_bot" in welcome("en", stats, username="qabot_bot")
    assert "mit 12 Artikeln" in welcome("de", {**stats, "articles": 12}, username="b")


@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_examples_come_from_the_archive_not_from_the_sample(lang):
    """They used to quote "When does Putin land in Alaska?" whatever archive was loaded."""
    stats = {"articles": 2, "first_date": "2024-01-02", "last_date": "2024-03-04"}
    title = "Hochwasser in <Passau> & Regensburg"
    text = welcome(lang, stats, username="b", newest_title=title)
    assert "<i>Hochwasser in &lt;Passau&gt; &amp; Regensburg</i>" in text and check_html(text)[0] == []
    assert ask_me(lang, title).endswith("/ask Hochwasser in &lt;Passau&gt; &amp; Regensburg")
    for shown in (text, ask_me(lang, title), welcome(lang, {"articles": 0}, username="b"), ask_me(lang)):
        assert "Putin" not in shown and "Trump" not in shown and "Alaska" not in shown
    assert TEXTS[lang]["neutral_question"] in welcome(lang, {"articles": 0}, username="b")  # an empty archive
    assert ask_me(lang).endswith(TEXTS[lang]["neutral_question"])


def test_every_text_exists_in_both_languages_and_is_valid_html():
    assert TEXTS["en"].keys() == TEXTS["de"].keys()
    for lang in TEXTS:
        for key, template in TEXTS[lang].items():
            filled = template.format(**{name: "1" for name in re.findall(r"{(\w+)}", template)})
            assert check_html(filled)[0] == [], (lang, key)


def test_plain_text_keeps_link_targets_and_unescapes():
    assert plain_text('<b>a &amp; b</b> <a href="https://x.org/?a=1&amp;b=2">T</a>') == "a & b T (https://x.org/?a=1&b=2)"


# -- splitting -----------------------------------------------------------------------------------


def _assert_parts_ok(parts: list[str], limit: int) -> None:
    for part in parts:
        assert utf16_len(part) <= limit
        assert check_html(part)[0] == [], part


def test_short_messages_stay_whole():
    assert split_message("<b>hi</b>") == ["<b>hi</b>"]


def test_long_messages_split_at_paragraphs():
    paragraphs = [f"<b>Heading {i}</b>\n" + "word " * 150 for i in range(20)]
    html = "\n\n".join(p.strip() for p in paragraphs)
    parts = split_message(html)
    assert len(parts) > 1
    _assert_parts_ok(parts, 4096)
    assert all(part.startswith("<b>Heading") for part in parts)  # every cut fell between paragraphs
    assert plain_text("".join(parts)).replace(" ", "").replace("\n", "") == plain_text(html).replace(" ", "").replace("\n", "")


def test_a_long_bold_paragraph_is_cut_at_sentences_with_tags_closed_and_reopened():
    html = '<a href="https://example.org/x">' + "<b>" + "Ein Satz mit &amp; Zeichen. " * 400 + "</b></a>"
    parts = split_message(html, limit=1000)
    assert len(parts) > 5
    _assert_parts_ok(parts, 1000)
    for part in parts:
        assert part.startswith('<a href="https://example.org/x"><b>') and part.endswith("</b></a>")
    assert all(part.endswith("Zeichen.</b></a>") for part in parts[:-1])  # cut after a sentence
    assert sum(plain_text(p).count("Ein Satz") for p in parts) == 400


def test_text_without_spaces_is_cut_hard_but_never_inside_an_entity_or_tag():
    html = "<i>" + "&amp;x" * 3000 + "</i>"
    parts = split_message(html, limit=500)
    _assert_parts_ok(parts, 500)
    assert "".join(plain_text(p) for p in parts) == "&x" * 3000


def test_limit_counts_utf16_units():
    html = "😀 " * 3000  # each emoji is 2 UTF-16 units
    parts = split_message(html)
    _assert_parts_ok(parts, 4096)
    assert len(parts) == 3


# a link is never cut, so the smallest limit holds the longest one (with its text fragment, 126 units)
@pytest.mark.parametrize("limit", [130, 197, 333])
def test_splitting_a_rendered_answer_at_odd_limits(limit):
    p = passage(1, text="Satz eins. Satz zwei & drei! " * 20, url="https://example.org/a?x=1&y=2")
    html = render_answer(answer_with(LANDING, p, p, p), "de")
    parts = split_message(html, limit=limit)
    _assert_parts_ok(parts, limit)


# -- languages, addressing, follow-ups -------------------------------------------------------------


@pytest.mark.parametrize(("code", "text", "expected"), [
    ("en", "Wann landet Putin in Alaska?", "de"),
    ("de", "When does Putin land in Alaska?", "en"),
    ("de", "", "de"),
    ("de-AT", "Putin?", "de"),
    (None, "Putin?", "en"),
    ("en", "Was sagte Peskow über das Treffen?", "de"),
])
def test_language_from_the_question_else_from_telegram(code, text, expected):
    assert detect_language(code, text) == expected


def test_private_messages_are_always_questions_groups_need_a_mention_or_a_reply():
    assert addressed_question(" hi ", bot_username="qa_bot", private=True) == "hi"
    assert addressed_question("hi all", bot_username="qa_bot", private=False) is None
    assert addressed_question("@QA_bot wann landet Putin?", bot_username="qa_bot", private=False) == "wann landet Putin?"
    assert addressed_question("@qa_bot2 hi", bot_username="qa_bot", private=False) is None
    assert addressed_question("und Trump?", bot_username="qa_bot", private=False, reply_to_bot=True) == "und Trump?"


def test_citation_counts_collapsed_duplicates():
    from dataclasses import replace

    from qabot.frontends.telegram_format import citation_html

    line = citation_html(1, replace(passage(), duplicates=2))
    assert line.endswith(" · +2")
    assert "+" not in citation_html(1, passage())
