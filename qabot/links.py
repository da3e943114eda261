"""Links that land on the answer: a URL with a text fragment built from the answering sentence.

``https://example.org/a#:~:text=Putin%20soll%20nach,Alaska%20ankommen.`` makes a browser that
supports URL Fragment Text Directives (https://wicg.github.io/scroll-to-text-fragment/) scroll to
the sentence on the publisher's page and highlight it; other browsers ignore the directive.

Pure functions, no I/O. The directive's terms are percent-encoded as the spec asks: UTF-8, every
character outside the URL's unreserved set, and ``-``, ``,`` and ``&`` (the directive's own
syntax) too. A long sentence becomes ``text=start,end`` (its first and last few words), which
still matches when the page's text differs in between (a link, a footnote) and keeps the URL
short; a short one is matched whole.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

DIRECTIVE = ":~:"
EDGE_WORDS = 4  # words in textStart and in textEnd for a long sentence
WHOLE_WORDS = 8  # a sentence of at most this many words is matched whole
MAX_TERM_CHARS = 300

__all__ = ["encode_term", "text_directive", "text_fragment_url"]


def encode_term(text: str) -> str:
    """One term of a text directive, percent-encoded: ``-``, ``,`` and ``&`` included."""
    # quote() leaves "-._~" alone; "-" marks a prefix/suffix in a directive, so it must go too
    return quote(text, safe="").replace("-", "%2D")


def text_directive(sentence: str) -> str | None:
    """``text=start,end`` (or ``text=sentence`` when short) for ``sentence``; None when it is blank."""
    words = sentence.split()
    if not words:
        return None
    if len(words) <= WHOLE_WORDS:
        return "text=" + encode_term(" ".join(words)[:MAX_TERM_CHARS])
    start, end = " ".join(words[:EDGE_WORDS]), " ".join(words[-EDGE_WORDS:])
    return f"text={encode_term(start)},{encode_term(end)}"


def text_fragment_url(url: str | None, sentence: str | None) -> str | None:
    """``url`` with a text fragment for ``sentence``; None without an http(s) URL.

    The query is kept as it is; an existing fragment is kept and the directive appended after
    it (``#section:~:text=...``), as the spec allows; an existing directive is replaced. Without
    a sentence the URL comes back unchanged.
    """
    if not url or not url.strip():
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    directive = text_directive(sentence) if sentence else None
    if directive is None:
        return url
    fragment = parts.fragment.split(DIRECTIVE, 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, f"{fragment}{DIRECTIVE}{directive}"))
