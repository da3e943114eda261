"""Date expressions in questions: pure parsing into a DateRange filter."""

from __future__ import annotations

from datetime import date

import pytest

from qabot.answering.dates import DateRange, find_date_range, parse_iso
from qabot.lexicon import MONTHS

TODAY = date(2025, 8, 16)  # a Saturday; its week runs Mon 11 to Sun 17 August
D = date
AUG15 = (D(2025, 8, 15), D(2025, 8, 15))
AUGUST = (D(2025, 8, 1), D(2025, 8, 31))
YEAR = (D(2025, 1, 1), D(2025, 12, 31))
LAST_WEEK = (D(2025, 8, 4), D(2025, 8, 10))


@pytest.mark.parametrize(
    ("question", "expected", "text"),
    [
        # one day, English
        ("What happened on 15 August 2025?", AUG15, "on 15 August 2025"),
        ("Who spoke in Anchorage 15 August 2025?", AUG15, "15 August 2025"),
        ("What did Trump say on August 15, 2025?", AUG15, "on August 15, 2025"),
        ("Where did Putin land on August 15th, 2025?", AUG15, "on August 15th, 2025"),
        ("Summit on the 15th of Aug 2025", AUG15, "on the 15th of Aug 2025"),
        ("Any news from 2025-08-15?", AUG15, "2025-08-15"),
        # one day, German
        ("Was geschah am 15. August 2025?", AUG15, "am 15. August 2025"),
        ("Wer sprach am 15. Aug. 2025 in Alaska?", AUG15, "am 15. Aug. 2025"),
        ("Was sagte Putin am 15.08.2025?", AUG15, "am 15.08.2025"),
        ("Gipfel 15.8.2025 in Anchorage", AUG15, "15.8.2025"),
        ("Was geschah AM 15. AUGUST 2025?", AUG15, "AM 15. AUGUST 2025"),
        ("Was war am 3. März 2025?", (D(2025, 3, 3), D(2025, 3, 3)), "am 3. März 2025"),
        ("Was war am 3. Mrz. 2025?", (D(2025, 3, 3), D(2025, 3, 3)), "am 3. Mrz. 2025"),
        ("Wahl am 24. Dez. 2024", (D(2024, 12, 24), D(2024, 12, 24)), "am 24. Dez. 2024"),
        # months
        ("What happened in August 2025?", AUGUST, "in August 2025"),
        ("Was passierte im August 2025?", AUGUST, "im August 2025"),
        ("Nachrichten August 2025", AUGUST, "August 2025"),
        ("Was war im Aug. 2025 los?", AUGUST, "im Aug. 2025"),
        ("Proteste im Maerz 2024", (D(2024, 3, 1), D(2024, 3, 31)), "im Maerz 2024"),
        ("Proteste im Mär 2024", (D(2024, 3, 1), D(2024, 3, 31)), "im Mär 2024"),
        ("Wahl im Juni 2024", (D(2024, 6, 1), D(2024, 6, 30)), "im Juni 2024"),
        ("Hitze im Juli 2024", (D(2024, 7, 1), D(2024, 7, 31)), "im Juli 2024"),
        ("Talks in Sept. 2024", (D(2024, 9, 1), D(2024, 9, 30)), "in Sept. 2024"),
        ("Wahl im Okt 2024", (D(2024, 10, 1), D(2024, 10, 31)), "im Okt 2024"),
        ("Februar 2024 in Moskau", (D(2024, 2, 1), D(2024, 2, 29)), "Februar 2024"),
        # years: only with a preposition or the word year/Jahr
        ("What happened in 2025?", YEAR, "in 2025"),
        ("Was geschah im Jahr 2025?", YEAR, "im Jahr 2025"),
        ("Events of the year 2025", YEAR, "year 2025"),
        ("Wie viele seit 2020 bei Massenprotesten?", (D(2020, 1, 1), None), "seit 2020"),
        # since / before / until / after
        ("What happened since 1 August 2025?", (D(2025, 8, 1), None), "since 1 August 2025"),
        ("Was geschah seit dem 1. August 2025?", (D(2025, 8, 1), None), "seit dem 1. August 2025"),
        ("News before 15 August 2025", (None, D(2025, 8, 14)), "before 15 August 2025"),
        ("Was war vor dem 15.08.2025?", (None, D(2025, 8, 14)), "vor dem 15.08.2025"),
        ("News until August 2025", (None, D(2025, 8, 31)), "until August 2025"),
        ("Was geschah bis zum 15. August 2025?", (None, D(2025, 8, 15)), "bis zum 15. August 2025"),
        ("Was geschah nach dem 15. August 2025?", (D(2025, 8, 16), None), "nach dem 15. August 2025"),
        # ranges
        ("What happened between 1 and 15 August 2025?", (D(2025, 8, 1), D(2025, 8, 15)), "between 1 and 15 August 2025"),
        ("Was geschah zwischen dem 1. und 15. August 2025?", (D(2025, 8, 1), D(2025, 8, 15)), "zwischen dem 1. und 15. August 2025"),
        ("Was war vom 1. bis 15.08.2025?", (D(2025, 8, 1), D(2025, 8, 15)), "vom 1. bis 15.08.2025"),
        ("between July 30, 2025 and August 2, 2025", (D(2025, 7, 30), D(2025, 8, 2)), "between July 30, 2025 and August 2, 2025"),
        # relative to TODAY
        ("What happened today?", (TODAY, TODAY), "today"),
        ("Was sagte Putin heute?", (TODAY, TODAY), "heute"),
        ("What did Putin say yesterday?", (D(2025, 8, 15), D(2025, 8, 15)), "yesterday"),
        ("Was sagte Putin gestern?", (D(2025, 8, 15), D(2025, 8, 15)), "gestern"),
        ("Was sagte Putin vorgestern?", (D(2025, 8, 14), D(2025, 8, 14)), "vorgestern"),
        ("What happened last week?", LAST_WEEK, "last week"),
        ("Was geschah letzte Woche?", LAST_WEEK, "letzte Woche"),
        ("Was geschah in der vergangenen Woche?", LAST_WEEK, "in der vergangenen Woche"),
        ("What happened this week?", (D(2025, 8, 11), D(2025, 8, 17)), "this week"),
        ("Was geschah diese Woche?", (D(2025, 8, 11), D(2025, 8, 17)), "diese Woche"),
        ("What happened last month?", (D(2025, 7, 1), D(2025, 7, 31)), "last month"),
        ("Was geschah letzten Monat?", (D(2025, 7, 1), D(2025, 7, 31)), "letzten Monat"),
        ("Was geschah im vergangenen Monat?", (D(2025, 7, 1), D(2025, 7, 31)), "im vergangenen Monat"),
        ("Was geschah diesen Monat?", AUGUST, "diesen Monat"),
        ("What happened last year?", (D(2024, 1, 1), D(2024, 12, 31)), "last year"),
        ("Was geschah letztes Jahr?", (D(2024, 1, 1), D(2024, 12, 31)), "letztes Jahr"),
        ("Was geschah vergangenes Jahr?", (D(2024, 1, 1), D(2024, 12, 31)), "vergangenes Jahr"),
        ("What happened in the last 7 days?", (D(2025, 8, 10), TODAY), "in the last 7 days"),
        ("Was geschah in den letzten 3 Tagen?", (D(2025, 8, 14), TODAY), "in den letzten 3 Tagen"),
        ("Was geschah seit gestern?", (D(2025, 8, 15), None), "seit gestern"),
    ],
)
def test_find_date_range(question: str, expected: tuple[date | None, date | None], text: str) -> None:
    found = find_date_range(question, today=TODAY)
    assert found is not None
    assert (found.since, found.until) == expected
    assert found.text == text
    assert question[found.start : found.end] == text


@pytest.mark.parametrize(
    "question",
    [
        "When does Putin land in Alaska?",
        "Wann landet Putin in Alaska?",
        "Putin landet um 11.00 Uhr.",
        "Der Gipfel beginnt um 21.30",
        "1.186 Gefangene wurden freigelassen",
        "2020 bei Massenprotesten festgenommen",
        "How many of the 2020 prisoners were freed?",
        "Was geschah am 31.02.2025?",
        "What happened on 30 February 2025?",
        "Was geschah am 15.13.2025?",
        "Wer sprach in Augsburg 2025?",
        "Was geschah in den letzten 0 Tagen?",
        "Was geschah in Alaska?",
        "",
    ],
)
def test_no_date(question: str) -> None:
    assert find_date_range(question, today=TODAY) is None


def test_first_expression_wins() -> None:
    found = find_date_range("Was geschah gestern, und was am 1. August 2025?", today=TODAY)
    assert found == DateRange(D(2025, 8, 15), D(2025, 8, 15), "gestern", 12, 19)


def test_an_impossible_date_is_skipped_not_replaced_by_its_month() -> None:
    found = find_date_range("Was war am 31.02.2025 oder gestern?", today=TODAY)
    assert found is not None and found.text == "gestern"


def test_relative_dates_cross_month_and_year_boundaries() -> None:
    new_year = date(2025, 1, 1)  # a Wednesday
    assert _bounds("yesterday", new_year) == (D(2024, 12, 31), D(2024, 12, 31))
    assert _bounds("last month", new_year) == (D(2024, 12, 1), D(2024, 12, 31))
    assert _bounds("last week", new_year) == (D(2024, 12, 23), D(2024, 12, 29))
    assert _bounds("in den letzten 2 Wochen", new_year) == (D(2024, 12, 19), new_year)
    assert _bounds("last month", date(2024, 3, 31)) == (D(2024, 2, 1), D(2024, 2, 29))


def _bounds(question: str, today: date) -> tuple[date | None, date | None]:
    found = find_date_range(question, today=today)
    assert found is not None
    return found.since, found.until


@pytest.mark.parametrize(("name", "month"), sorted(MONTHS.items()))
def test_every_month_name_in_the_lexicon_is_understood(name: str, month: int) -> None:
    # One month table for dates, sentence splitting and answer picking (qabot.lexicon).
    assert _bounds(f"am 3. {name.title()} 2025", TODAY) == (D(2025, month, 3), D(2025, month, 3))
    assert _bounds(f"im {name} 2025", TODAY)[0] == D(2025, month, 1)


def test_parse_iso() -> None:
    assert parse_iso("2025-08-15") == D(2025, 8, 15)
    assert parse_iso(" 2025-08-15 ") == D(2025, 8, 15)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("15.08.2025", "expected a date as YYYY-MM-DD"),
        ("2025-8-15", "expected a date as YYYY-MM-DD"),
        ("", "expected a date as YYYY-MM-DD"),
        ("2025-02-31", "not a valid calendar date"),
    ],
)
def test_parse_iso_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_iso(value)
