"""The citation check's pure parts: splitting a reply, citations, facts and names, verdicts."""

from __future__ import annotations

import pytest

from qabot.answering.citations import (
    Claim,
    citation_problem,
    compose,
    fact_problem,
    is_no_answer,
    judge,
    split_claims,
    support_units,
)
from qabot.answering.normalising import fact_readings, facts, name_key, name_matches, names

LANDING = "Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit (21.00 Uhr MESZ) mit dem Flugzeug in Alaska ankommen."


def test_a_reply_splits_into_sentences_with_their_citations():
    claims = split_claims("Putin landet um 11.00 Uhr. [1] Trump kommt am 15. August an. [2][3]\n- Und dann [1, 4-5].")
    assert [c.citations for c in claims] == [(1,), (2, 3), (1, 4, 5)]
    assert claims[0].text == "Putin landet um 11.00 Uhr. [1]" and claims[0].body == "Putin landet um 11.00 Uhr."
    assert claims[1].body == "Trump kommt am 15. August an."
    assert split_claims("He lands at 11:00 [1]. No marker here.")[1].citations == ()


def test_citations_must_exist_and_point_at_a_passage():
    assert citation_problem(Claim("x", "x", ()), 5) == "no citation"
    assert citation_problem(Claim("x [9]", "x", (9,)), 5) == "cites [9], but there are only 5 passages"
    assert citation_problem(Claim("x [0]", "x", (0,)), 1) == "cites [0], but there is only 1 passage"
    assert citation_problem(Claim("x [2]", "x", (2,)), 5) is None


@pytest.mark.parametrize("written", ["11:00", "11.00 Uhr", "11 Uhr", "11 a.m.", "11.00"])
def test_times_agree_however_they_are_written(written):
    assert fact_problem(f"Putin lands in Alaska at {written} local time.", [LANDING]) is None


def test_afternoon_times_and_wrong_times():
    assert fact_problem("He lands at 9 p.m. CEST.", [LANDING]) is None  # 21.00 Uhr MESZ
    assert fact_problem("He lands at 21:00.", [LANDING]) is None
    assert "12:00" in (fact_problem("He lands at 12:00.", [LANDING]) or "")
    assert "10 p.m." in (fact_problem("He lands at 10 p.m.", [LANDING]) or "")


def test_numbers_with_separators_scales_dates_and_words():
    german = "Am 15.08.2025 kamen 1.186 Gefangene frei; die Hilfe beträgt 1,5 Millionen Euro und drei Flugzeuge."
    for claim in ["On 15 August 2025, 1,186 prisoners were freed.", "On August 15, 2025 1186 were freed.",
                  "The aid is 1.5 million euros.", "The aid is 1,500,000 euros.", "3 planes came.", "It was in August 2025."]:
        assert fact_problem(claim, [german]) is None, claim
    assert fact_problem("On 16 August 2025, 1,186 prisoners were freed.", [german]) is not None
    assert fact_problem("1,187 prisoners were freed.", [german]) is not None
    assert {"1186", "1.186"} <= fact_readings("1.186 Gefangene")
    assert list(dict.fromkeys(f.shown for f in facts("Am 15. August 2025 um 11.30 Uhr"))) == ["15. August 2025", "11.30 Uhr"]


@pytest.mark.parametrize(("a", "b"), [("Lukashenko", "Lukaschenko"), ("Zelensky", "Selenskyj"), ("Zelenskyy", "Selenskyj"),
                                      ("Gorbachev", "Gorbatschow"), ("Chernobyl", "Tschernobyl"), ("Kharkiv", "Charkiw"),
                                      ("Kyiv", "Kiew"), ("Kremlin", "Kreml"), ("Putin's", "Putins"), ("Müller", "Mueller")])
def test_names_match_across_transliterations(a, b):
    assert name_matches(name_key(a.replace("'s", "")), {name_key(b)})


@pytest.mark.parametrize(("a", "b"), [("Putin", "Trump"), ("Merz", "Marx"), ("Moscow", "Washington"), ("Lukashenko", "Selenskyj")])
def test_different_names_do_not_match(a, b):
    assert not name_matches(name_key(a), {name_key(b)})


def test_a_swapped_name_is_caught_even_at_the_start():
    assert fact_problem("Trump lands in Alaska at 11:00.", [LANDING]) == "the name “Trump” is not in the cited passages"
    assert fact_problem("According to the Kremlin, Putin lands in Alaska.", [LANDING]) is None
    assert fact_problem("Laut Kreml landet Putin um 11 Uhr in Alaska.", [LANDING]) is None
    assert "Selenskyj" in names("Laut dem Kreml sagte Präsident Selenskyj, die Verhandlung beginne.")
    assert "Verhandlung" not in names("Laut dem Kreml sagte Präsident Selenskyj, die Verhandlung beginne.")


def test_judge_checks_citations_then_facts_then_meaning():
    claim = split_claims("Putin lands at 11:00 [1].")[0]
    assert judge(claim, 1, [LANDING], 0.9, bar=0.85).supported
    low = judge(claim, 1, [LANDING], 0.7, bar=0.85)
    assert not low.supported and "0.70 < 0.85" in (low.reason or "")
    assert judge(claim, 1, [LANDING], None, bar=0.85).supported  # no meaning check asked for
    assert judge(split_claims("Putin lands at 11:00 [3].")[0], 1, [], 0.99, bar=0.85).reason == "cites [3], but there is only 1 passage"


def test_compose_keeps_only_supported_sentences_and_the_no_answer_sentinel():
    claims = split_claims("A is so [1]. B is not [2].")
    verdicts = [judge(claims[0], 2, ["A is so."], 0.9, bar=0.8), judge(claims[1], 2, ["x"], 0.2, bar=0.8)]
    assert compose(verdicts) == "A is so [1]."
    assert compose(verdicts[1:]) is None
    assert is_no_answer("NOT_IN_ARCHIVE") and is_no_answer("Die Passagen beantworten die Frage nicht.")
    assert not is_no_answer("Putin lands at 11:00 [1].")


def test_support_units_are_sentences_and_neighbouring_pairs():
    assert support_units("Eins ist hier. Zwei ist da. Drei.") == [
        "Eins ist hier.", "Zwei ist da.", "Drei.", "Eins ist hier. Zwei ist da.", "Zwei ist da. Drei."]


def test_a_first_word_capitalised_only_by_its_place_is_no_name():
    assert names("Published in 1522, the Bible sold well.") == ["Bible"]
    assert names("Six-time winner Lady Gaga sang.") == ["Lady", "Gaga"]
    assert names("Behind them, Davis played.") == ["Davis"]
    assert names("Trump lands in Alaska.") == ["Trump", "Alaska"]  # an unknown first word still counts
