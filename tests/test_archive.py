"""Reading archives: every format, every bad input reported with path/line/reason, good ones read.

The fixtures live in tests/data/archive/ (see the table in EXPECTED_PROBLEMS and GOOD_IDS).
bad/binary.txt is the first bytes of a PNG (it holds NUL bytes); seed/latin1.txt is a seed
article saved as latin-1; seed/bom-crlf.txt starts with a UTF-8 BOM and has CRLF line ends.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qabot.documents import Article, Problem
from qabot.errors import ArchiveError
from qabot.ingest.archive import decode, iter_articles
from qabot.ingest.cleaning import normalise_text, title_from_text
from qabot.ingest.parsers import parse_csv, parse_date, parse_jsonl, parse_seed

ARCHIVE = Path(__file__).parent / "data" / "archive"
LANDING = (
    "Putin soll nach Kremlangaben pünktlich um 11.00 Uhr Ortszeit (21.00 Uhr MESZ) mit dem Flugzeug in Alaska ankommen."
)

GOOD_IDS = [
    "seed/2025-08-15-alaska-summit",
    "seed/bom-crlf",
    "seed/html-entities",
    "seed/kurzmeldung",
    "seed/latin1",
    "tables/10kgnad-layout.csv:1",
    "tables/10kgnad-layout.csv:2",
    "tables/10kgnad-layout.csv:5",
    "dpa-1",
    "https://example.org/ohne-id",
    "tables/feed.jsonl:3",
    "tables/feed.jsonl:10",
    "t-1",
    "https://example.org/tichanowski",
    "https://example.org/zwei",
]

# (path relative to the archive, line, words in the reason, skipped)
EXPECTED_PROBLEMS = [
    ("bad/binary.txt", None, "binary file", True),
    ("bad/empty.txt", None, "empty file", True),
    ("bad/impossible-date.txt", 1, "impossible date '2025-13-45'", True),
    ("bad/malformed-date.txt", 1, "malformed date '15.08.2025'", True),
    ("bad/no-date-line.txt", 1, "no ' date YYYY-MM-DD ' line at the start", True),
    ("bad/notes.md", None, "unsupported file type .md", True),
    ("bad/whitespace-only.txt", None, "empty file", True),
    ("seed/latin1.txt", None, "not valid UTF-8; read as cp1252", False),
    ("tables/10kgnad-layout.csv", 3, "expected 2 columns", True),
    ("tables/10kgnad-layout.csv", 4, "missing or empty 'text'", True),
    ("tables/feed.jsonl", 4, "bad JSON", True),
    ("tables/feed.jsonl", 6, "not a JSON object", True),
    ("tables/feed.jsonl", 7, "missing or empty 'text'", True),
    ("tables/feed.jsonl", 8, "missing or empty 'text'", True),
    ("tables/feed.jsonl", 9, "malformed date '15. August'", True),
    ("tables/no-text-column.csv", 1, "no header naming a text column", True),
    ("tables/with-header.csv", 6, "expected 4 columns, got 2", True),
    ("tables/with-header.csv", 7, "missing or empty 'text'", True),
]


def read(path: Path) -> tuple[list[Article], list[Problem]]:
    problems: list[Problem] = []
    articles = list(iter_articles(path, on_problem=problems.append))
    return articles, problems


@pytest.fixture(scope="module")
def archive() -> tuple[list[Article], list[Problem]]:
    return read(ARCHIVE)


def by_id(articles: list[Article]) -> dict[str, Article]:
    return {a.id: a for a in articles}


# --- the fixture folder ------------------------------------------------------------------------


def test_every_good_article_is_read_in_stable_order(archive) -> None:
    articles, _ = archive
    assert [a.id for a in articles] == GOOD_IDS


def test_every_bad_input_is_reported_with_path_line_and_reason(archive) -> None:
    _, problems = archive
    got = sorted((Path(p.path).relative_to(ARCHIVE).as_posix(), p.line, p.reason, p.skipped) for p in problems)
    assert len(got) == len(EXPECTED_PROBLEMS)
    for (path, line, reason, skipped), (want_path, want_line, words, want_skipped) in zip(
        got, sorted(EXPECTED_PROBLEMS, key=lambda e: (e[0], e[1] or 0))
    ):
        assert (path, line, skipped) == (want_path, want_line, want_skipped)
        assert words in reason


def test_hidden_files_are_skipped_silently(archive) -> None:
    articles, problems = archive
    assert not any(".hidden" in a.path or ".DS_Store" in a.path for a in articles)
    assert not any(".hidden" in p.path or ".DS_Store" in p.path for p in problems)


def test_problems_are_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="qabot.ingest.archive"):
        list(iter_articles(ARCHIVE / "bad" / "empty.txt"))
    assert "empty.txt: empty file" in caplog.text


def test_ids_and_hashes_are_stable_across_reads(archive) -> None:
    first, _ = archive
    again, _ = read(ARCHIVE)
    assert [(a.id, a.content_hash) for a in first] == [(a.id, a.content_hash) for a in again]
    assert len({a.id for a in first}) == len(first)


def test_ids_do_not_depend_on_where_the_archive_lives(tmp_path: Path) -> None:
    shutil.copytree(ARCHIVE / "seed", tmp_path / "elsewhere" / "seed")
    moved, _ = read(tmp_path / "elsewhere")
    here = by_id(read(ARCHIVE)[0])
    for a in moved:
        assert here[a.id].content_hash == a.content_hash


def test_missing_path_raises_archive_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as error:
        list(iter_articles(tmp_path / "nope"))
    assert error.value.path.endswith("nope") and "no such file" in error.value.reason


# --- each format, through the fixtures -----------------------------------------------------------


def test_seed_article(archive) -> None:
    seed = by_id(archive[0])["seed/2025-08-15-alaska-summit"]
    assert seed.date == "2025-08-15"
    assert seed.text.startswith("Wenige Stunden vor seinem Treffen")
    assert LANDING in seed.text and "\n\n" in seed.text
    assert seed.title.startswith("Wenige Stunden") and seed.title.endswith("…") and len(seed.title) <= 90
    assert seed.line is None and seed.path == str(ARCHIVE / "seed" / "2025-08-15-alaska-summit.txt")


def test_bom_and_crlf(archive) -> None:
    a = by_id(archive[0])["seed/bom-crlf"]
    assert a.date == "2025-08-14"
    assert a.text == (
        "Die Stadt Anchorage bereitet sich auf den Gipfel vor.\n\nDer Flughafen wird am 15. August gesperrt."
    )


def test_html_entities_and_tags(archive) -> None:
    a = by_id(archive[0])["seed/html-entities"]
    assert a.text == (
        'Trump & Putin treffen sich in "Alaska".\n\nDas Treffen beginnt um 11.30\xa0Uhr.\nEs ist das erste seit 2021.'
    )
    assert a.title == 'Trump & Putin treffen sich in "Alaska".'
    jsonl = by_id(archive[0])["tables/feed.jsonl:10"]
    assert jsonl.text == "Lukaschenko & Trump telefonierten.\n\nEs ging um 1.300 Gefangene."
    assert jsonl.title == "HTML"


def test_latin1_is_read_as_cp1252(archive) -> None:
    assert "Die Bürger in Köln äußerten sich" in by_id(archive[0])["seed/latin1"].text


def test_extensionless_file_is_seed_format(archive) -> None:
    assert by_id(archive[0])["seed/kurzmeldung"].date == "2025-08-12"


def test_jsonl_fields_and_ids(archive) -> None:
    articles = by_id(archive[0])
    full = articles["dpa-1"]
    assert (full.title, full.date, full.url, full.source, full.line) == (
        "Gipfel in Alaska", "2025-08-15", "https://example.org/gipfel", "dpa", 1,
    )
    assert articles["https://example.org/ohne-id"].date == "2025-08-15"  # from an ISO datetime
    bare = articles["tables/feed.jsonl:3"]
    assert bare.date is None and bare.title == "Ein Artikel ohne id und URL."


def test_csv_with_header_aliases(archive) -> None:
    a = by_id(archive[0])["https://example.org/tichanowski"]
    assert (a.title, a.date, a.url, a.line) == (
        "Gefangene freigelassen", "2025-06-21", "https://example.org/tichanowski", 2,
    )
    two = by_id(archive[0])["https://example.org/zwei"]
    assert two.line == 3 and two.text == "Der erste Absatz.\n\nDer zweite Absatz, nach einer Leerzeile."


def test_tsv(archive) -> None:
    a = by_id(archive[0])["t-1"]
    assert (a.title, a.line) == ("Tabulator", 2)


def test_headerless_10kgnad_layout(archive) -> None:
    articles = by_id(archive[0])
    first = articles["tables/10kgnad-layout.csv:1"]
    assert first.text == (
        "Salzburg gewinnt 2:1 – der Trainer sagt: 'Ein verdienter Sieg'. Die Fans feiern; die Liga staunt."
    )
    assert first.source is None  # the label is a category, not a source
    assert articles["tables/10kgnad-layout.csv:2"].text.startswith("Eine Zeile ohne Anführungszeichen, mit Komma.")
    assert articles["tables/10kgnad-layout.csv:5"].text == "Ein Text\nüber zwei Zeilen."


# --- single files --------------------------------------------------------------------------------


def test_single_seed_file_id_is_its_stem() -> None:
    articles, problems = read(ARCHIVE / "seed" / "2025-08-15-alaska-summit.txt")
    assert [a.id for a in articles] == ["2025-08-15-alaska-summit"] and problems == []


def test_single_jsonl_file_ids_use_its_name() -> None:
    articles, problems = read(ARCHIVE / "tables" / "feed.jsonl")
    assert [a.id for a in articles] == ["dpa-1", "https://example.org/ohne-id", "feed.jsonl:3", "feed.jsonl:10"]
    assert [p.line for p in problems] == [4, 6, 7, 8, 9]


def test_single_bad_file_is_reported_not_raised() -> None:
    articles, problems = read(ARCHIVE / "bad" / "binary.txt")
    assert articles == [] and [p.reason for p in problems] == ["binary file"]


# --- the pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        " date 2025-08-15 Text auf derselben Zeile.",
        "date 2025-08-15 Text auf derselben Zeile.",
        "\ufeff date 2025-08-15 Text auf derselben Zeile.",
        " date 2025-08-15\r\nText auf derselben Zeile.\r\n",
        "\n date 2025-08-15\n\nText auf derselben Zeile.",
    ],
)
def test_seed_date_line_variants(content: str) -> None:
    [article] = parse_seed(content, rel="x.txt")
    assert (article.id, article.date, article.text) == ("x", "2025-08-15", "Text auf derselben Zeile.")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("Kein Datum hier.", "no ' date YYYY-MM-DD ' line"),
        (" dated 2025-08-15 Text.", "no ' date YYYY-MM-DD ' line"),
        (" date 2025-02-30 Text.", "impossible date '2025-02-30'"),
        (" date 2025/08/15 Text.", "malformed date"),
        (" date 2025-08-15   ", "no text after the date line"),
    ],
)
def test_seed_problems(content: str, reason: str) -> None:
    [problem] = parse_seed(content, rel="sub/x.txt", path="/a/sub/x.txt")
    assert isinstance(problem, Problem)
    assert (problem.path, problem.line, problem.skipped) == ("/a/sub/x.txt", 1, True)
    assert reason in problem.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-08-15", "2025-08-15"),
        (" 2025-08-15 ", "2025-08-15"),
        ("2025-08-15T23:30:00Z", "2025-08-15"),
        ("2025-08-15T23:30:00+02:00", "2025-08-15"),
        ("2025-08-15 10:00", "2025-08-15"),
    ],
)
def test_parse_date(value: str, expected: str) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["15.08.2025", "2025-13-45", "2025-08-15T25:00", "August", ""])
def test_parse_date_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_date(value)


def test_jsonl_text_must_be_a_string() -> None:
    [problem] = parse_jsonl('{"text": ["a", "b"]}', rel="f.jsonl")
    assert isinstance(problem, Problem) and "not a string" in problem.reason and problem.line == 1


def test_jsonl_keeps_line_numbers_across_blank_lines_and_crlf() -> None:
    items = list(parse_jsonl('\r\n{"text": "Eins."}\r\n\r\n{"text": "Zwei."}\r\n', rel="f.jsonl"))
    assert [(a.id, a.line) for a in items] == [("f.jsonl:2", 2), ("f.jsonl:4", 4)]


def test_csv_semicolon_header_with_quotes() -> None:
    content = 'title;text;date\n"Eins";"Text; mit Semikolon.";2025-08-15\n"Zwei";"Noch ein Text.";\n'
    items = list(parse_csv(content, rel="f.csv"))
    assert [(a.title, a.text, a.date, a.id) for a in items] == [
        ("Eins", "Text; mit Semikolon.", "2025-08-15", "f.csv:2"),
        ("Zwei", "Noch ein Text.", None, "f.csv:3"),
    ]


def test_csv_row_numbers_follow_physical_lines() -> None:
    content = 'text,title\n"Zeile zwei\nund drei",A\n\n"Zeile fünf",B\n,C\n'
    items = list(parse_csv(content, rel="f.csv"))
    assert [(type(i).__name__, i.line) for i in items] == [("Article", 2), ("Article", 5), ("Problem", 6)]


def test_decode() -> None:
    assert decode("\ufeffHallo".encode("utf-8")) == ("Hallo", None)
    assert decode("Grüße".encode("cp1252")) == ("Grüße", "not valid UTF-8; read as cp1252")
    # 0x81 is undefined in cp1252: latin-1 reads anything.
    assert decode(b"Gr\xfc\x81e aus K\xf6ln, sagte er. " * 3)[1] == "not valid UTF-8; read as latin-1"
    assert decode("Hallo".encode("utf-16")) == ("Hallo", None)
    for binary in (b"abc\x00def", bytes(range(1, 32)) * 20, b"\x81\x8d\x90\x9d" * 50):
        with pytest.raises(ValueError, match="binary file"):
            decode(binary)
    for empty in (b"", b" \n\t ", "\ufeff".encode("utf-8")):
        with pytest.raises(ValueError, match="empty file"):
            decode(empty)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zeile eins   \r\nZeile zwei\r\n\r\n\r\n\r\nNeuer Absatz\n", "Zeile eins\nZeile zwei\n\nNeuer Absatz"),
        ("AT&amp;T &quot;sagt&quot; &#8211; nichts", 'AT&T "sagt" – nichts'),
        ("<p>Eins</p>\n  <p>Zwei <b>fett</b><br/>Drei</p>", "Eins\n\nZwei fett\nDrei"),
        ("<p>Text</p><script>var x = 1;</script>", "Text"),
        ("x<y und z>w bleibt, &lt;p&gt; auch", "x<y und z>w bleibt, <p> auch"),
        ("Kein Markup, 3 < 4 & 5 > 2.", "Kein Markup, 3 < 4 & 5 > 2."),
    ],
)
def test_normalise_text(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


def test_title_from_text() -> None:
    assert title_from_text("Kurzer Satz. Zweiter Satz.") == "Kurzer Satz."
    long = "Dieser erste Satz ist mit Absicht so lang geschrieben, dass er als Titel gekürzt werden muss, am Wortende."
    title = title_from_text(long)
    assert len(title) <= 90 and title.endswith("…")
    assert long.startswith(title[:-1]) and long[len(title) - 1] == " "
    assert title_from_text("Ein Titel\nüber zwei Zeilen. Rest.") == "Ein Titel über zwei Zeilen."


# --- odd inputs (the full set is in test_bad_corpus.py) ------------------------------------------


def test_decode_odd_bytes() -> None:
    assert decode("Grüße aus ".encode() + "Köln".encode("cp1252")) == (
        "Grüße aus Köln", "mixed encodings: 1 byte not valid UTF-8, read as cp1252",
    )
    text = "Ein Satz vor dem Nullbyte, mit genug Text drum herum, damit die Datei kein Binärformat ist.\x00 Danach."
    assert decode(text.encode()) == (text.replace("\x00", ""), "removed 1 NUL byte")
    assert decode("Hallo".encode("utf-32")) == ("Hallo", None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Fri, 15 Aug 2025 23:30:00 -0500", "2025-08-15"), ("15 Aug 2025 10:00:00 GMT", "2025-08-15")],
)
def test_parse_date_rfc_2822(value: str, expected: str) -> None:
    assert parse_date(value) == expected


def test_parse_date_rejects_an_impossible_rfc_2822_date() -> None:
    with pytest.raises(ValueError, match="impossible date"):
        parse_date("Fri, 45 Aug 2025 10:00:00 +0200")


def test_future_date_is_read_with_a_warning() -> None:
    warning, article = parse_seed(" date 2999-01-01 Text.", rel="x.txt")
    assert isinstance(warning, Problem) and not warning.skipped and "in the future" in warning.reason
    assert isinstance(article, Article) and article.date == "2999-01-01"


def test_jsonl_lenient_strings_and_hostile_values() -> None:
    items = list(parse_jsonl('{"text": "a\tb"}\n{"text": "\\ud800x"}\n[[[' + "[" * 5000 + "\n", rel="f.jsonl"))
    assert [type(i).__name__ for i in items] == ["Article", "Article", "Problem"]
    assert items[0].text == "a\tb" and items[1].text == "\ufffdx"
    assert items[2].line == 3 and "bad JSON" in items[2].reason


def test_json_array_and_pretty_printed_records_keep_their_lines() -> None:
    array = '[\n  {"text": "Eins."},\n  {"text": "Zwei."}, {"text": "Drei."}\n]'
    assert [(a.id, a.line) for a in parse_jsonl(array, rel="f.json")] == [
        ("f.json:2", 2), ("f.json:3:1", 3), ("f.json:3:2", 3),
    ]
    pretty = '{\n  "id": "a",\n  "text": "Eins."\n}\n\n{\n  "id": "b",\n  "text": "Zwei."\n}\n'
    assert [(a.id, a.line) for a in parse_jsonl(pretty, rel="f.jsonl")] == [("a", 1), ("b", 6)]
    [problem] = parse_jsonl('[\n  {"text": "Eins."}\n  {"text": "Zwei."}\n]', rel="f.json")
    assert isinstance(problem, Problem) and problem.line == 3 and "nothing in this JSON document" in problem.reason


def test_jsonl_first_line_broken_is_not_taken_for_a_document() -> None:
    items = list(parse_jsonl('{"text": "kaputt\n{"text": "Gut."}\n', rel="f.jsonl"))
    assert [(type(i).__name__, i.line) for i in items] == [("Problem", 1), ("Article", 2)]


def test_jsonl_wrong_metadata_types_are_ignored_with_a_warning() -> None:
    *warnings, article = parse_jsonl('{"id": [1], "url": {"a": 1}, "text": "Text."}', rel="f.jsonl")
    assert [(w.line, w.reason, w.skipped) for w in warnings] == [
        (1, "ignored 'id': not a string but list", False), (1, "ignored 'url': not a string but dict", False),
    ]
    assert isinstance(article, Article) and (article.id, article.url) == ("f.jsonl:1", None)


@pytest.mark.parametrize("ending", ["\n", ""])
def test_csv_unterminated_quote_is_reported_and_reading_goes_on(ending: str) -> None:
    content = 'id,text\n1,Eins.\n2,"Zwei ohne Ende.\n3,Drei.\n4,"Vier ohne Ende.' + ending
    items = list(parse_csv(content, rel="f.csv"))
    assert [(type(i).__name__, i.line) for i in items] == [
        ("Article", 2), ("Problem", 3), ("Article", 4), ("Problem", 5),
    ]
    assert "unterminated quote" in items[1].reason


def test_a_file_without_articles_is_reported(tmp_path: Path) -> None:
    (tmp_path / "leer.csv").write_text("id,text\n", encoding="utf-8")
    articles, problems = read(tmp_path)
    assert articles == [] and [(p.line, p.reason) for p in problems] == [(None, "no articles in the file")]


def test_a_parser_bug_costs_one_file_not_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qabot.ingest import archive

    def broken(content: str, *, rel: str, path: str):
        raise RuntimeError("bug")
        yield

    (tmp_path / "a.jsonl").write_text('{"text": "Eins."}\n', encoding="utf-8")
    (tmp_path / "b.txt").write_text(" date 2025-08-15 Zwei.", encoding="utf-8")
    monkeypatch.setitem(archive._PARSERS, ".jsonl", broken)
    articles, problems = read(tmp_path)
    assert [a.id for a in articles] == ["b"]
    assert [p.reason for p in problems] == ["cannot parse: RuntimeError: bug"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Bundes\u00adregierung\u200b tagt\x07.", "Bundesregierung tagt."),
        ("Zeile\u2028zwei\u2029Absatz", "Zeile\nzwei\n\nAbsatz"),
        ("\u202eumgedreht\u202c und 👩\u200d💻", "umgedreht und 👩\u200d💻"),
        ("Die <b>Regierung</b> tagt.\nZweite Zeile.", "Die Regierung tagt.\nZweite Zeile."),
        ("<![CDATA[Roh & echt]]>", "Roh & echt"),
        ("Soft&shy;hyphen und &#8203;ZWSP", "Softhyphen und ZWSP"),
        ("<FONT color=red>Rot</FONT> <center>Mitte</center>", "Rot Mitte"),
    ],
)
def test_normalise_text_odd_characters_and_markup(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


def test_long_given_title_is_cut_at_a_word() -> None:
    [article] = parse_jsonl(json.dumps({"title": "Wort " * 100, "text": "Text."}), rel="f.jsonl")
    assert len(article.title) <= 200 and article.title.endswith("Wort…")
