"""Find a date expression in an English or German question and turn it into a date filter.

Pure functions, no I/O. :func:`find_date_range` returns a :class:`DateRange` (inclusive
``since``/``until``, either may be open) plus the expression's text and where it sits in the
question. Month names and abbreviations come from :data:`qabot.lexicon.MONTHS`.

Recognised (case-insensitive):

- one day: "15 August 2025", "August 15th, 2025", "am 15. Aug. 2025", "15.08.2025", "2025-08-15";
- a month: "(in|im) August 2025", "Aug. 2025"; a year only after a word that makes it one
  ("in/im/seit/since/bis/vor 2025", "im Jahr 2025", "year 2025"): a bare "2020" never matches;
- relative: today/heute, yesterday/gestern, vorgestern, last/this week|month|year (and
  letzte/vergangene/vorige/diese Woche|Monat|Jahr), "in the last N days|weeks"
  ("in den letzten N Tagen|Wochen");
- modifiers on any of these: since/seit/ab (open end), after/nach (from the day after),
  before/vor (up to the day before), until/till/bis (up to the end of the period);
- ranges: "between 1 and 15 August 2025", "zwischen dem 1. und 15. August 2025",
  "vom 1. bis 15.08.2025".

Relative expressions resolve against the ``today`` argument, which the caller chooses:
qabot passes the date of the newest article in the archive, so "yesterday" means the day
before the newest article, not the day before the wall clock. Weeks run Monday to Sunday;
"last week|month|year" is the whole previous calendar unit, "this ..." the whole current one,
and "the last N days" is N days ending with ``today`` (inclusive).

Times ("11.00 Uhr", "21.30"), thousands ("1.186") and impossible dates ("31.02.2025") never
match; nothing here raises for a question. When several expressions appear, the first one (the
earliest start in the question; the longest on a tie) wins.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from qabot.lexicon import MONTHS

__all__ = ["DateRange", "find_date_range", "parse_iso"]

Interval = tuple[date, date]


@dataclass(frozen=True)
class DateRange:
    """A date filter found in a question: inclusive bounds (``None`` = open) and its span."""

    since: date | None
    until: date | None
    text: str
    start: int
    end: int


_MONTHS = MONTHS  # name or abbreviation (lower case) -> 1..12
# Longest first, so "sept" is not cut short to "sep".
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_FLAGS = re.IGNORECASE

_SINCE, _AFTER, _BEFORE, _UNTIL = {"since", "seit", "ab"}, {"after", "nach"}, {"before", "vor"}, {"until", "till", "bis"}
_MOD = r"(?P<mod>" + "|".join(sorted(_SINCE | _AFTER | _BEFORE | _UNTIL)) + r")\s+"
_PREFIX = rf"\b(?:{_MOD}|(?:on|am|in|im|during|während|of|vom)\s+)?(?:(?:the|dem|den|der|die|zum)\s+)?"
# Not glued to other digits: the lookbehind/lookahead keep "1.186" and "11.00" out.
_NO_DIGIT_BEFORE, _NO_DIGIT_AFTER = r"(?<![\d.,-])", r"(?![.,-]?\d)"
_DAY_FORMS = [
    rf"{_NO_DIGIT_BEFORE}(?P<d>\d{{1,2}})(?:st|nd|rd|th|\.)?\s+(?:of\s+)?(?P<m>{_MONTH})\.?,?\s+(?P<y>\d{{4}}){_NO_DIGIT_AFTER}",
    rf"\b(?P<m>{_MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}}){_NO_DIGIT_AFTER}",
    rf"{_NO_DIGIT_BEFORE}(?P<d>\d{{1,2}})\.(?P<mn>\d{{1,2}})\.(?P<y>\d{{4}}){_NO_DIGIT_AFTER}",
    rf"{_NO_DIGIT_BEFORE}(?P<y>\d{{4}})-(?P<mn>\d{{2}})-(?P<d>\d{{2}}){_NO_DIGIT_AFTER}",
]
_DAY_FULL = [re.compile(form, _FLAGS) for form in _DAY_FORMS]
_PARTIAL_DAY = rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\.?(?:(?P<mn>\d{{1,2}})\.|\s+(?:of\s+)?(?P<m>{_MONTH})\.?)?"
_PARTIAL_FULL = re.compile(_PARTIAL_DAY, _FLAGS)


def _unnamed(pattern: str) -> str:
    """The pattern with its named groups made plain, to embed it in a larger one."""
    return re.sub(r"\?P<\w+>", "", pattern)


_ANY_DAY = "|".join(_unnamed(form) for form in _DAY_FORMS)
_RANGE = (
    rf"\b(?:between|zwischen|from|vom)\s+(?:(?:the|dem)\s+)?(?P<a>{_ANY_DAY}|{_unnamed(_PARTIAL_DAY)})"
    rf"\s*(?:and|und|to|until|bis(?:\s+zum)?|-|–)\s*(?:(?:the|dem)\s+)?(?P<b>{_ANY_DAY})"
)
_YEAR = (
    rf"\b(?:{_MOD}(?:(?:dem\s+)?jahr\s+)?|(?:in|im|during|während)\s+(?:the\s+)?(?:(?:year|jahr)\s+)?"
    rf"|(?:year|jahr|jahres)\s+)(?P<y>(?:19|20)\d\d){_NO_DIGIT_AFTER}"
)
_DE_LAST = r"(?:letzt|vergangen|vorig)(?:e|en|er|es|em)"
_DE_THIS = r"dies(?:e|en|er|es|em)"


def _month_range(year: int, month: int) -> Interval:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _week_of(day: date) -> Interval:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def _previous_month(today: date) -> Interval:
    last_day = today.replace(day=1) - timedelta(days=1)
    return _month_range(last_day.year, last_day.month)


def _last_n(m: re.Match[str], today: date) -> Interval | None:
    days = int(m["n"]) * (7 if m["u"].lower().startswith("w") else 1)
    return (today - timedelta(days=days - 1), today) if days else None


def _day(m: re.Match[str]) -> date:
    """The date a day-form match names; ValueError when it does not exist."""
    groups = m.groupdict()
    month = _MONTHS[groups["m"].lower()] if groups.get("m") else int(groups["mn"])
    return date(int(groups["y"]), month, int(groups["d"]))


def _parse_day(text: str) -> date | None:
    for pattern in _DAY_FULL:
        if found := pattern.fullmatch(text):
            return _day(found)
    return None


def _between(m: re.Match[str], today: date) -> Interval | None:
    last = _parse_day(m["b"])
    first = _parse_day(m["a"])
    if last is None:
        return None
    if first is None:
        partial = _PARTIAL_FULL.fullmatch(m["a"])
        if partial is None:
            return None
        month = _MONTHS[partial["m"].lower()] if partial["m"] else int(partial["mn"] or last.month)
        first = date(last.year, month, int(partial["d"]))
    return (first, last) if first <= last else (last, first)


Resolver = Callable[[re.Match[str], date], Interval | None]
_RELATIVE: list[tuple[str, Resolver]] = [
    (r"(?:the\s+)?day\s+before\s+yesterday|vorgestern", lambda m, t: (t - timedelta(2), t - timedelta(2))),
    (r"yesterday|gestern", lambda m, t: (t - timedelta(1), t - timedelta(1))),
    (r"today|heute", lambda m, t: (t, t)),
    (rf"(?:last|previous)\s+week|{_DE_LAST}\s+woche", lambda m, t: _week_of(t - timedelta(7))),
    (rf"this\s+week|{_DE_THIS}\s+woche", lambda m, t: _week_of(t)),
    (rf"(?:last|previous)\s+month|{_DE_LAST}\s+monats?", lambda m, t: _previous_month(t)),
    (rf"this\s+month|{_DE_THIS}\s+monats?", lambda m, t: _month_range(t.year, t.month)),
    (rf"(?:last|previous)\s+year|{_DE_LAST}\s+jahr(?:es)?", lambda m, t: (date(t.year - 1, 1, 1), date(t.year - 1, 12, 31))),
    (rf"this\s+year|{_DE_THIS}\s+jahr(?:es)?", lambda m, t: (date(t.year, 1, 1), date(t.year, 12, 31))),
    (r"(?:last|past|previous|letzten|vergangenen)\s+(?P<n>\d{1,3})\s+(?P<u>days?|tagen?|weeks?|wochen)", _last_n),
]
_PATTERNS: list[tuple[re.Pattern[str], Resolver]] = [
    (re.compile(_RANGE, _FLAGS), _between),
    *((re.compile(_PREFIX + form, _FLAGS), lambda m, t: (_day(m), _day(m))) for form in _DAY_FORMS),
    (
        re.compile(rf"{_PREFIX}\b(?P<m>{_MONTH})\.?,?\s+(?P<y>\d{{4}}){_NO_DIGIT_AFTER}", _FLAGS),
        lambda m, t: _month_range(int(m["y"]), _MONTHS[m["m"].lower()]),
    ),
    (re.compile(_YEAR, _FLAGS), lambda m, t: (date(int(m["y"]), 1, 1), date(int(m["y"]), 12, 31))),
    *((re.compile(rf"{_PREFIX}(?:{core})\b", _FLAGS), resolve) for core, resolve in _RELATIVE),
]


def _bounds(mod: str | None, first: date, last: date) -> tuple[date | None, date | None]:
    """Apply a since/after/before/until word to the period [first, last]."""
    word = (mod or "").lower()
    if word in _SINCE:
        return first, None
    if word in _AFTER:
        return last + timedelta(days=1), None
    if word in _BEFORE:
        return None, first - timedelta(days=1)
    if word in _UNTIL:
        return None, last
    return first, last


def find_date_range(question: str, *, today: date) -> DateRange | None:
    """The first date expression in ``question`` as a filter, or ``None`` when there is none.

    ``today`` anchors relative expressions ("yesterday", "last week"); see the module docstring.
    """
    found: list[DateRange] = []
    invalid: list[tuple[int, int]] = []  # spans of impossible dates: nothing inside them counts
    for pattern, resolve in _PATTERNS:
        for m in pattern.finditer(question):
            try:
                period = resolve(m, today)
                if period is None:
                    raise ValueError(m.group())
                since, until = _bounds(m.groupdict().get("mod"), *period)
            except (ValueError, OverflowError):  # 31.02.2025, or beyond date.min/max
                invalid.append((m.start(), m.end()))
                continue
            found.append(DateRange(since, until, m.group(), m.start(), m.end()))
    # "30 February 2025" must not fall back to "February 2025".
    valid = [f for f in found if not any(s < f.end and f.start < e for s, e in invalid)]
    return min(valid, key=lambda f: (f.start, -f.end), default=None)


def parse_iso(value: str) -> date:
    """``'YYYY-MM-DD'`` as a date (for --since/--until); ValueError with a clear message otherwise."""
    text = value.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid calendar date (YYYY-MM-DD)") from None
