"""Telegram-side text, all pure: the bot's texts, HTML rendering, message splitting, addressing.

``render_answer``      an Answer as Telegram HTML: the sentence in bold, then numbered sources
``render_passages``    passages in full (the "Sources" button) or as a list (the "More" button)
``split_message``      HTML cut into parts of at most 4096 characters, never inside a tag or
                       an entity; tags open at a cut are closed and reopened in the next part
``plain_text``         the HTML as plain text, for when Telegram rejects the formatting
``welcome``            the /start and /help text: the archive's size, dates and newest headline
``addressed_question`` the question in a message, or None when it is not for the bot

Follow-up questions are not Telegram's business: see :mod:`qabot.answering.conversation`.
The reply language comes from :func:`qabot.lexicon.detect_language`.

Everything from the archive or the user goes through :func:`html.escape`; Telegram's
HTML mode knows only a few tags (b, i, a, ...), and ``<`` or ``&`` in text must be escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from qabot.documents import Answer, Passage
from qabot.frontends.chat import snippet
from qabot.links import text_fragment_url

MAX_MESSAGE = 4096  # Telegram's limit, in UTF-16 code units

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "welcome": (
            "Hi! I answer questions about a news archive of {articles} ({first} – {last}).\n\n"
            "Ask in English or German, {example}. I reply with the sentence that answers it and the "
            "articles I found it in. Follow-up questions (<i>and why?</i>, <i>and where?</i>) build "
            "on your last one.\n\n"
            "In groups, mention me ({mention}) or write /ask and your question.\n/help shows this again."
        ),
        "not_found": "I found nothing in the archive that answers this.",
        "sources": "Sources",
        "closest": "Closest passages",
        "more_results": "More results for <i>{question}</i>",
        "button_sources": "📄 Sources",
        "button_more": "➕ More",
        "refused": (
            "Sorry, this bot is private. Your Telegram user id is {user_id}: "
            "give it to the bot's operator to be let in."
        ),
        "slow_down": "You are asking faster than I can answer. Please wait {seconds} s and ask again.",
        "too_long": "Your question is too long ({length} characters; at most {limit}). Please shorten it.",
        "example_title": "e.g. about the newest article, <i>{title}</i>",
        "example_none": "e.g. <i>{question}</i>",
        "neutral_question": "What happened last week?",
        "empty": "Ask me a question, e.g. /ask {question}",
        "bad_question": "I cannot answer that: {reason}",
        "error": "Sorry, something went wrong on my side. Please try again in a moment.",
        "expired": "These results have expired. Please ask the question again.",
        "no_more": "There are no more results for this question.",
        "note": "Note",
    },
    "de": {
        "welcome": (
            "Hallo! Ich beantworte Fragen zu einem Nachrichtenarchiv mit {articles} ({first} – {last}).\n\n"
            "Frag auf Deutsch oder Englisch, {example}. Ich antworte mit dem Satz, der die Frage "
            "beantwortet, und den Artikeln, in denen er steht. Anschlussfragen (<i>und warum?</i>, "
            "<i>und wo?</i>) beziehen sich auf deine letzte Frage.\n\n"
            "In Gruppen erwähne mich ({mention}) oder schreib /ask und deine Frage.\n/help zeigt diese Hilfe."
        ),
        "not_found": "Dazu habe ich im Archiv nichts gefunden.",
        "sources": "Quellen",
        "closest": "Nächstliegende Stellen",
        "more_results": "Weitere Treffer zu <i>{question}</i>",
        "button_sources": "📄 Quellen",
        "button_more": "➕ Mehr",
        "refused": (
            "Dieser Bot ist nicht öffentlich. Deine Telegram-Nutzer-ID ist {user_id}: "
            "gib sie dem Betreiber des Bots, um freigeschaltet zu werden."
        ),
        "slow_down": "Du fragst schneller, als ich antworten kann. Bitte warte {seconds} s und frag dann noch einmal.",
        "too_long": "Deine Frage ist zu lang ({length} Zeichen; höchstens {limit}). Bitte kürze sie.",
        "example_title": "z. B. zum neuesten Artikel, <i>{title}</i>",
        "example_none": "z. B. <i>{question}</i>",
        "neutral_question": "Was ist letzte Woche passiert?",
        "empty": "Stell mir eine Frage, z. B. /ask {question}",
        "bad_question": "Das kann ich nicht beantworten: {reason}",
        "error": "Entschuldige, bei mir ist etwas schiefgegangen. Bitte versuch es gleich noch einmal.",
        "expired": "Diese Ergebnisse sind abgelaufen. Bitte stell die Frage noch einmal.",
        "no_more": "Zu dieser Frage gibt es keine weiteren Treffer.",
        "note": "Hinweis",
    },
}


class Html(str):
    """Markup already escaped: :func:`t` puts it in as it is."""


def t(lang: str, key: str, **values: object) -> str:
    """The ``key`` text in ``lang`` (English when unknown), filled with escaped ``values``."""
    template = TEXTS.get(lang, TEXTS["en"])[key]
    return template.format(**{k: v if isinstance(v, Html) else html.escape(str(v)) for k, v in values.items()})


def welcome(lang: str, stats: dict[str, object], *, username: str | None, newest_title: str | None = None) -> str:
    """The /start and /help text: the archive's size and dates (from ``Retriever.stats()``)
    and, as an example, its newest article's title (a neutral question when there is none)."""
    n = int(stats.get("articles") or 0)  # type: ignore[call-overload]
    if lang == "de":
        articles = f"{n} Artikel" if n == 1 else f"{n} Artikeln"
    else:
        articles = f"{n} article" if n == 1 else f"{n} articles"
    example = (t(lang, "example_title", title=newest_title) if newest_title
               else t(lang, "example_none", question=t(lang, "neutral_question")))
    return t(lang, "welcome", articles=articles, first=stats.get("first_date") or "?",
             last=stats.get("last_date") or "?", mention=f"@{username}" if username else "@bot", example=Html(example))


def ask_me(lang: str, newest_title: str | None = None) -> str:
    """The reply to an empty question: how to ask, with the newest title (or a neutral question) as the example."""
    return t(lang, "empty", question=newest_title or TEXTS.get(lang, TEXTS["en"])["neutral_question"])


# -- rendering ------------------------------------------------------------------------------


def _e(text: str | None) -> str:
    return html.escape(text or "", quote=True)


def _titled(passage: Passage, sentence: str | None = None) -> str:
    """The title, linked when the article has a web address (only http(s): no javascript: links);
    with ``sentence`` the link carries a text fragment that lands on it."""
    title = _e(" ".join(passage.title.split()) or passage.article_id)
    url = text_fragment_url(passage.url, sentence)
    return f'<a href="{_e(url)}">{title}</a>' if url else title


def citation_html(number: int, passage: Passage, *, sentence: str | None = None) -> str:
    """``1. Title · 2025-08-15 · source`` with the title linked where possible (to ``sentence``
    in the page, for the passage that holds the answer)."""
    parts = [f"{number}. {_titled(passage, sentence)}"] + [_e(x) for x in (passage.date, passage.source) if x]
    if passage.duplicates:
        parts.append(f"+{passage.duplicates}")  # near-identical copies (the same wire story) collapsed here
    return " · ".join(parts)


def render_answer(answer: Answer, lang: str = "en", *, snippet_chars: int = 220) -> str:
    """The reply to a question: the answering sentence in bold with its source number, then sources."""
    blocks: list[str] = []
    if answer.sentence is None:
        blocks.append(t(lang, "not_found"))
    elif answer.llm_reply is not None:  # the checked LLM answer; its [n] markers number the sources below
        blocks.append(f"<b>{_e(answer.llm_reply)}</b>")
    else:
        blocks.append(f"{sentence_html(answer)} [{(answer.passage_index or 0) + 1}]")
    if answer.passages:
        header = t(lang, "sources" if answer.found else "closest")
        blocks.append(f"<b>{header}</b>")
        for number, passage in enumerate(answer.passages, start=1):
            sentence = answer.sentence if number - 1 == answer.passage_index else None
            blocks.append(citation_html(number, passage, sentence=sentence) + f"\n<i>{_e(snippet(passage, limit=snippet_chars))}</i>")
    blocks.extend(f"<i>{t(lang, 'note')}: {_e(note)}</i>" for note in answer.notes)
    return "\n\n".join(blocks)


def sentence_html(answer: Answer) -> str:
    """The answer sentence as HTML: all bold, or, with a reader's span inside it, plain with the
    span in bold (the exact answer stands out within its sentence)."""
    sentence, span, start = answer.sentence or "", answer.span, answer.sentence_start
    if span is None or start is None or not start <= span.start < span.end <= start + len(sentence):
        return f"<b>{_e(sentence)}</b>"
    lo, hi = span.start - start, span.end - start
    return f"{_e(sentence[:lo])}<b>{_e(sentence[lo:hi])}</b>{_e(sentence[hi:])}"


def render_passages(
    passages: Sequence[Passage], lang: str = "en", *, first_number: int = 1, full: bool = True,
    answer: Answer | None = None, title: str | None = None,
) -> str:
    """Passages numbered from ``first_number``: whole texts when ``full``, else snippets.

    With ``answer``, its sentence is shown in bold inside the passage that holds it;
    ``title`` (HTML) replaces the "Sources" heading.
    """
    blocks = [f"<b>{title if title is not None else t(lang, 'sources')}</b>"]
    for offset, passage in enumerate(passages):
        number = first_number + offset
        if full:
            body = _highlighted(passage, answer) if answer is not None and answer.source == passage else _e(passage.text)
        else:
            body = f"<i>{_e(snippet(passage))}</i>"
        holds_answer = answer is not None and answer.source == passage
        blocks.append(citation_html(number, passage, sentence=answer.sentence if holds_answer and answer else None) + "\n" + body)
    return "\n\n".join(blocks)


def _highlighted(passage: Passage, answer: Answer) -> str:
    start, end = answer.sentence_start, answer.sentence_end
    if start is None or end is None or not passage.start <= start < end <= passage.end:
        return _e(passage.text)
    lo, hi = start - passage.start, end - passage.start
    text = passage.text
    return f"{_e(text[:lo])}<b>{_e(text[lo:hi])}</b>{_e(text[hi:])}"


def plain_text(markup: str) -> str:
    """Telegram HTML as plain text: links become ``text (url)``, other tags go, entities resolve."""
    markup = re.sub(r'<a href="([^"]*)">(.*?)</a>', lambda m: f"{m.group(2)} ({m.group(1)})", markup, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]*>", "", markup))


# -- splitting --------------------------------------------------------------------------------

_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>")
_ATOM = re.compile(r"<[^>]*>|&#?\w+;")  # spans a cut must not fall into
_SENTENCE_END = re.compile(r"[.!?…][\"'»“”)\]]*\s")


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji outside the BMP is 2)."""
    return len(text.encode("utf-16-le")) // 2


def _open_tags(markup: str) -> list[tuple[str, str]]:
    """The tags still open at the end of ``markup``: (name, the opening tag as written)."""
    stack: list[tuple[str, str]] = []
    for match in _TAG.finditer(markup):
        closing, name = match.group(1), match.group(2).lower()
        if not closing:
            stack.append((name, match.group(0)))
        elif stack and stack[-1][0] == name:
            stack.pop()
    return stack


def _safe(markup: str, pos: int) -> int:
    """``pos`` moved back to the start of a tag or entity it falls into."""
    for match in _ATOM.finditer(markup):
        if match.start() >= pos:
            break
        if match.start() < pos < match.end():
            return match.start()
    return pos


def _cut(markup: str, budget: int) -> int:
    """Where to cut ``markup`` to keep at most ``budget`` characters: a paragraph end if one
    is in the second half of the window, else a line end, a sentence end, a space, or anywhere."""
    window = markup[:budget]
    floor = budget // 2
    for finder in (
        lambda: window.rfind("\n\n"),
        lambda: window.rfind("\n"),
        lambda: max((m.end() - 1 for m in _SENTENCE_END.finditer(window)), default=-1),
        lambda: window.rfind(" "),
    ):
        pos = finder()
        if pos >= floor and _safe(markup, pos) == pos:
            return pos
    return _safe(markup, budget)


def split_message(markup: str, limit: int = MAX_MESSAGE) -> list[str]:
    """``markup`` in parts of at most ``limit`` UTF-16 units, each with balanced tags."""
    parts: list[str] = []
    prefix = ""  # the tags reopened from the previous part
    rest = markup.strip()
    while rest:
        whole = prefix + rest
        if utf16_len(whole) <= limit:
            parts.append(whole)
            break
        budget = limit - utf16_len(prefix)
        while True:
            pos = _cut(rest, max(1, budget))
            if pos <= 0:  # a tag longer than the window: take it whole so that we move on
                match = _ATOM.match(rest)
                pos = match.end() if match else 1
            head = prefix + rest[:pos].rstrip()
            stack = _open_tags(head)
            part = head + "".join(f"</{name}>" for name, _ in reversed(stack))
            overshoot = utf16_len(part) - limit
            if overshoot <= 0 or budget <= 1:
                break
            budget -= max(overshoot, 1)
        if plain_text(part).strip():
            parts.append(part)
        prefix = "".join(tag for _, tag in stack)
        rest = rest[pos:].lstrip()
    return parts


# -- addressing ---------------------------------------------------------------------------


def addressed_question(text: str, *, bot_username: str, private: bool, reply_to_bot: bool = False) -> str | None:
    """The question in a message, or None when the bot is not addressed.

    Private chats: every message. Groups: only messages that mention ``@bot_username``
    (the mention is removed) or reply to the bot.
    """
    if private:
        return text.strip()
    mention = re.compile(rf"@{re.escape(bot_username)}\b", re.IGNORECASE) if bot_username else None
    if mention is not None and mention.search(text):
        return " ".join(mention.sub(" ", text).split())
    return text.strip() if reply_to_bot else None
