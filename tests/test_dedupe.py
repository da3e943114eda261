"""Near-duplicate collapse: shingles, similarity, grouping (made-up German news)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from qabot.answering.dedupe import collapse, normalise, shingles, similarity

WIRE = (
    "Der russische Präsident Wladimir Putin ist am Freitag in Anchorage gelandet. "
    "Dort trifft er US-Präsident Donald Trump zu einem Gipfel über den Krieg in der Ukraine. "
    "Das Treffen auf dem Militärstützpunkt Elmendorf-Richardson soll etwa drei Stunden dauern. "
    "Beobachter erwarten keinen Durchbruch, hoffen aber auf eine Waffenruhe. "
    "Kiew ist bei den Gesprächen nicht vertreten. (dpa)"
)
NEW_INTRO = WIRE.replace(
    "Der russische Präsident Wladimir Putin ist am Freitag in Anchorage gelandet.",
    "Kremlchef Putin hat nach einem langen Flug Alaska erreicht.",
)
SHORTENED = WIRE.split(" Beobachter")[0]
EDITED = WIRE.replace("drei Stunden", "vier Stunden").replace("(dpa)", "(AFP)")
OTHER = (
    "Mit großem Aufgebot empfing die amerikanische Seite den Gast aus Moskau in Alaska. "
    "Putin und Trump schüttelten sich auf dem roten Teppich lange die Hände. "
    "Anschließend fuhren beide gemeinsam in der Präsidentenlimousine davon. "
    "Europäische Regierungen verfolgen das Treffen mit Sorge."
)
WEATHER = "In München wird es am Wochenende sonnig und bis zu 30 Grad warm. Am Montag drohen Gewitter."


@dataclass(frozen=True)
class Item:
    article_id: str
    text: str


def sim(a: str, b: str) -> float:
    return similarity(shingles(a), shingles(b))


def test_normalise_strips_punctuation_keeps_umlauts():
    assert normalise("  Präsident  Putin, (dpa)\n- Straße!") == "präsident putin dpa straße"


def test_shingles_are_stable_crc32_values():
    # zlib.crc32(b"wladimir putin landet in alaska"): fixed forever, unlike hash()
    assert shingles("Wladimir Putin landet in Alaska.") == frozenset({1834576528})
    assert shingles("München") == frozenset({1172628735})  # shorter than n: the whole text


def test_shingles_same_in_another_process_with_other_hash_seed():
    code = f"from qabot.answering.dedupe import shingles; print(sorted(shingles({WIRE!r})))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str(sorted(shingles(WIRE)))


def test_shingles_count_and_edge_cases():
    assert len(shingles("eins zwei drei vier fünf sechs sieben")) == 3
    assert shingles("") == frozenset()
    assert shingles(" ... ") == frozenset()
    with pytest.raises(ValueError):
        shingles("x", n=0)


def test_similarity_bounds():
    assert sim(WIRE, WIRE) == 1.0
    assert similarity(frozenset(), frozenset()) == 0.0
    assert sim(WIRE, WEATHER) == 0.0


def test_containment_needs_eight_shingles_in_the_smaller_set():
    small = frozenset(range(3))
    big = frozenset(range(100))
    assert similarity(small, big) == pytest.approx(0.03)  # Jaccard only
    assert similarity(frozenset(range(8)), big) == 1.0  # containment


@pytest.mark.parametrize("copy", [WIRE, NEW_INTRO, SHORTENED, EDITED], ids=["same", "intro", "short", "edit"])
def test_copies_of_a_wire_story_are_similar(copy: str):
    assert sim(WIRE, copy) >= 0.6


def test_different_stories_on_the_same_topic_are_not():
    assert sim(WIRE, OTHER) < 0.2


def test_collapse_groups_copies_under_the_first_keeper_in_order():
    items = [
        Item("a", WIRE),
        Item("b", OTHER),
        Item("c", SHORTENED),
        Item("d", WEATHER),
        Item("e", EDITED),
        Item("f", NEW_INTRO),
    ]
    groups = collapse(items, lambda i: i.text)
    assert [(k.article_id, [d.article_id for d in dups]) for k, dups in groups] == [
        ("a", ["c", "e", "f"]),
        ("b", []),
        ("d", []),
    ]


def test_collapse_joins_the_most_similar_keeper():
    # a round-up that pastes the shortened wire story and all of OTHER: a copy of both
    roundup = SHORTENED + " " + OTHER
    assert 0.6 <= sim(WIRE, roundup) < sim(OTHER, roundup)
    items = [Item("a", WIRE), Item("b", OTHER), Item("c", roundup)]
    groups = collapse(items, lambda i: i.text)
    assert [[d.article_id for d in dups] for _, dups in groups] == [[], ["c"]]


def test_collapse_never_merges_items_with_the_same_key():
    # two overlapping chunks of one article: the short one is contained in the long one
    # a copy from another outlet ties with both: the earlier keeper wins
    items = [Item("a", WIRE), Item("a", SHORTENED), Item("b", WIRE)]
    groups = collapse(items, lambda i: i.text, key=lambda i: i.article_id)
    assert [(k.text, [d.article_id for d in dups]) for k, dups in groups] == [
        (WIRE, ["b"]),
        (SHORTENED, []),
    ]
    assert len(collapse(items, lambda i: i.text)) == 1  # without key: all one story


def test_collapse_threshold_one_keeps_only_exact_copies_together():
    groups = collapse([WIRE, EDITED, WIRE], str, threshold=1.0)
    assert [(k, dups) for k, dups in groups] == [(WIRE, [WIRE]), (EDITED, [])]


def test_collapse_empty_input():
    assert collapse([], str) == []
