"""Bad input, nothing lost: every odd or broken input is indexed sensibly or reported.

tests/data/bad_corpus/ holds one small file for each kind of bad or odd input (its README
lists them); CASES below says, for each file, exactly what reading it must give: the
articles (id and the properties that matter) and the problems (line, words of the reason,
whether the input was skipped or only warned about), in file order. What cannot be
committed is made in tmp_path: a 5 MB article, link loops, a broken link, a link to a
folder, a named pipe, an unreadable file and folder.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from qabot.documents import Article, Problem
from qabot.frontends.cli import cli
from qabot.indexer import build_index
from qabot.ingest.archive import iter_articles
from qabot.ingest.chunking import chunk_article, count_tokens
from qabot.store import Store
from tests.fakes import HashEmbedder

CORPUS = Path(__file__).parent / "data" / "bad_corpus"
BUDGET = 200  # build_index's default chunk_tokens


@dataclass(frozen=True)
class A:
    """An article the fixture must give; ``text`` is exact, ``has``/``lacks`` are substrings."""

    id: str
    date: str | None = None
    title: str | None = None
    line: int | None = None
    text: str | None = None
    has: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class P:
    """A problem the fixture must give: its line, words of its reason, skipped or only a warning."""

    line: int | None
    words: str
    skipped: bool = True


def W(line: int | None, words: str) -> P:
    """A warning: the input was read all the same."""
    return P(line, words, skipped=False)


@dataclass(frozen=True)
class Case:
    file: str
    kind: str
    expect: tuple[A | P, ...]


def case(file: str, kind: str, *expect: A | P) -> Case:
    return Case(file, kind, expect)


DUP = "Die Nachrichtenagentur meldet: Der Gipfel in Alaska ist vorbei. Beide Seiten sprechen von Fortschritten."
CONTROLS = ("\x00", "\x07", "\x0c", "\u00ad", "\u200b", "\u202e", "\u202c", "\u2060", "\u2028", "\ufeff", "\r")

CASES = [
    # --- seed format: whole files ---
    case("empty.txt", "empty file", P(None, "empty file")),
    case("whitespace-only.txt", "only whitespace", P(None, "empty file")),
    case("binary-png-header.txt", "binary file (PNG bytes, NULs)", P(None, "binary file")),
    case("binary-control-bytes.txt", "binary file without NUL bytes", P(None, "binary file")),
    case("unknown-extension.docx", "unknown file extension", P(None, "unsupported file type .docx")),
    case("README.md", "a README among the articles", P(None, "unsupported file type .md")),
    case(".hidden-draft.txt", "hidden file: skipped silently, by design"),
    # --- encodings ---
    case("latin1-encoded.txt", "latin-1 encoding", W(None, "not valid UTF-8; read as cp1252"),
         A("latin1-encoded", "2025-08-11", text="Die Bürger in Köln äußerten sich über die Straßenbahn.")),
    case("cp1252-euro-and-quotes.txt", "cp1252 with € and „“", W(None, "not valid UTF-8; read as cp1252"),
         A("cp1252-euro-and-quotes", "2025-08-11", has=("5 €.", "„Das ist zu viel“", "– und ging"))),
    case("mixed-utf8-and-cp1252.txt", "UTF-8 with a cp1252 byte pasted in",
         W(None, "mixed encodings: 1 byte not valid UTF-8, read as cp1252"),
         A("mixed-utf8-and-cp1252", text="Grüße aus München: der Bäcker öffnet um 6 Uhr.")),
    case("utf8-bom.txt", "UTF-8 byte order mark",
         A("utf8-bom", "2025-08-12", text="Eine Datei mit Byte Order Mark am Anfang.")),
    case("utf16-le-with-bom.txt", "UTF-16 with a byte order mark",
         A("utf16-le-with-bom", "2025-08-12", has=("UTF-16 mit BOM",))),
    case("nul-bytes-inside-text.txt", "NUL bytes inside text", W(None, "removed 3 NUL bytes"),
         A("nul-bytes-inside-text", has=("Ein Satz vor den Nullbytes. Ein Satz danach",), lacks=("\x00",))),
    # --- line ends and characters ---
    case("crlf-line-endings.txt", "CRLF line endings",
         A("crlf-line-endings", text="Der erste Absatz endet hier.\n\nDer zweite Absatz folgt nach einer Leerzeile.")),
    case("mixed-newlines-cr-lf-crlf.txt", "mixed newline styles (LF, CRLF, CR)",
         A("mixed-newlines-cr-lf-crlf", text="Erste Zeile mit LF.\nZweite Zeile mit CRLF.\nDritte Zeile mit CR.\n\n"
           "Neuer Absatz nach zwei CR.")),
    case("zero-width-and-control-characters.txt", "zero-width, bidi-override and control characters",
         A("zero-width-and-control-characters", title="Die Bundesregierung tagt heute.",
           has=("Die Bundesregierung tagt heute.", "Ein umgedrehter Text", "mittendrin", "Zeilen\ntrenner",
                "Seiten\nvorschub", "👩\u200d💻"), lacks=CONTROLS)),
    case("decomposed-unicode-nfd.txt", "decomposed unicode (NFD)",
         A("decomposed-unicode-nfd", text="Köln und München liegen in Deutschland, Grüße.")),
    case("emoji.txt", "emoji (with ZWJ sequences, flags, skin tones)",
         A("emoji", title="Die Fans feiern den Sieg 🎉🏆!", has=("🎉🏆", "👨\u200d👩\u200d👧", "🇩🇪", "👍🏽"))),
    case("right-to-left-arabic-hebrew.txt", "right-to-left text (Arabic, Hebrew)",
         A("right-to-left-arabic-hebrew", title="Die Agentur meldete auf Arabisch: مرحبا بالعالم.",
           has=("هل هذا صحيح؟", "שלום עולם. זה נכון."))),
    # --- markup ---
    case("html-markup-and-entities.txt", "an HTML page: tags, entities, script, comment",
         A("html-markup-and-entities", "2025-08-14", title="Gipfel in Alaska",
           text="Gipfel in Alaska\n\nTrump & Putin treffen sich in „Anchorage“.\n\n"
                "Der Eintritt kostet 5\xa0€.\nDie Sitzung beginnt um 11.30\xa0Uhr.")),
    case("html-inline-tags-only.txt", "inline tags only: stripped, line breaks kept",
         A("html-inline-tags-only", text="Die Regierung hat heute entschieden.\nEine zweite Zeile mit Betonung.\n\n"
           "Ein neuer Absatz: 3 < 4 und 5 > 2 bleiben stehen.")),
    # --- the date line ---
    case("missing-date-line.txt", "missing date line", P(1, "no ' date YYYY-MM-DD ' line at the start")),
    case("malformed-date-line.txt", "malformed date line (German format)", P(1, "malformed date '15.08.2025'")),
    case("impossible-date.txt", "impossible date (30 February)", P(1, "impossible date '2025-02-30'")),
    case("future-date.txt", "date in the future", W(1, "date 2099-12-31 is in the future"),
         A("future-date", "2099-12-31")),
    case("date-with-time-zone.txt", "date with time and time zone",
         A("date-with-time-zone", "2025-08-15", text="Das Datum trägt eine Uhrzeit und eine Zeitzone.")),
    case("tab-after-date-then-blank-lines.txt", "tab after 'date', blank lines before the body",
         A("tab-after-date-then-blank-lines", "2025-08-13", text="Der Text beginnt erst nach drei Leerzeilen.")),
    # --- sizes and shapes of text ---
    case("date-line-only.txt", "date line only, no text", P(1, "no text after the date line")),
    case("punctuation-only.txt", "punctuation only, no words", P(1, "no words in the text")),
    case("one-word-article.txt", "a 1-word article", A("one-word-article", title="Waldbrand", text="Waldbrand")),
    case("long-line-no-sentence-end.txt", "a very long line with no sentence end",
         A("long-line-no-sentence-end", has=("Punkt 60 der Tagesordnung",), lacks=(".",))),
    case("very-long-word-without-spaces.txt", "a 3000-character word (URL) without spaces",
         A("very-long-word-without-spaces", title="Der Link lautet…", has=("0123456789abcdefghij" * 100,))),
    case("duplicate-content-copy-a.txt", "duplicate content, first id", A("duplicate-content-copy-a", text=DUP)),
    case("duplicate-content-copy-b.txt", "duplicate content under another id", A("duplicate-content-copy-b", text=DUP)),
    # --- file names and folders ---
    case("seed-without-extension", "file without extension (seed format)", A("seed-without-extension", "2025-08-14")),
    case("UPPERCASE-EXTENSION.TXT", "upper-case extension", A("UPPERCASE-EXTENSION", "2025-08-14")),
    case("file name with spaces.txt", "spaces in the file name", A("file name with spaces", "2025-08-14")),
    case("nested/deeper/article-in-nested-folder.txt", "nested directory",
         A("nested/deeper/article-in-nested-folder", "2025-08-14")),
    # --- JSON Lines ---
    case("jsonl-truncated-line.jsonl", "truncated JSON line",
         A("trunc-ok-1", line=1), P(2, "bad JSON: Unterminated string"), A("trunc-ok-3", line=3)),
    case("jsonl-not-an-object.jsonl", "JSON values that are not objects",
         P(1, "not a JSON object but list"), P(2, "not a JSON object but str"), P(3, "not a JSON object but int"),
         P(4, "not a JSON object but NoneType"), A("object-ok", line=5)),
    case("jsonl-missing-text-field.jsonl", "missing text field, title-only record, blank or markup-only text",
         P(1, "missing or empty 'text'"), P(2, "missing or empty 'text'"), P(3, "missing or empty 'text'"),
         A("text-ok", line=4)),
    case("jsonl-wrong-types.jsonl", "wrong JSON types in fields",
         P(1, "'text' is not a string but int"), P(2, "'text' is not a string but list"),
         W(3, "ignored 'title': not a string but list"),
         A("wt-3", title="Der Titel ist eine Liste und wird ignoriert.", line=3),
         W(4, "ignored 'id': not a string but dict"), A("jsonl-wrong-types.jsonl:4", line=4),
         A("4711", line=5), P(6, "malformed date '20250815'"),
         W(7, "ignored 'source': not a string but bool"), A("wt-7", line=7)),
    case("jsonl-empty-object.jsonl", "an empty JSON object", P(1, "missing or empty 'text'")),
    case("jsonl-blank-lines-between-records.jsonl", "blank lines between records",
         A("blank-1", line=1), A("blank-3", line=3), A("blank-6", line=6)),
    case("jsonl-bom-and-crlf.jsonl", "JSONL with a BOM and CRLF", A("crlf-1", line=1), A("crlf-3", line=3)),
    case("jsonl-duplicate-ids.jsonl", "duplicate ids (the indexer reports them)",
         A("dup-1", line=1, text="Die erste Fassung der Meldung."),
         A("dup-1", line=2, text="Eine zweite Meldung mit derselben id.")),
    case("duplicate-id-across-files.csv", "an id that another file uses too", A("dup-1", line=2)),
    case("jsonl-raw-control-characters-in-string.jsonl", "raw tab and BEL inside a JSON string",
         A("raw-tab", text="Spalte eins\tSpalte zwei, roh im JSON-String.")),
    case("jsonl-lone-surrogate-escape.jsonl", "lone UTF-16 surrogate escapes",
         A("surrogate", title="Kaputtes \ufffd Zeichen", text="Ein halbes Emoji \ufffd steht hier.")),
    case("jsonl-deeply-nested.jsonl", "JSON nested 3000 deep",
         A("deep-ok-1"), P(2, "bad JSON: nested too deeply"), A("deep-ok-3")),
    case("jsonl-huge-integer.jsonl", "a 5000-digit JSON number",
         P(1, "bad JSON: Exceeds the limit (4300 digits)"), A("huge-ok", line=2)),
    case("jsonl-html-title-and-text.jsonl", "HTML in a JSON title and text",
         A("html-jsonl", title="Gipfel & Gespräch",
           text="Lukaschenko & Trump telefonierten.\n\nEs ging um 1.300\xa0Gefangene.")),
    case("jsonl-rfc2822-and-time-zone-dates.jsonl", "RSS (RFC 2822) date, time zones, Z with milliseconds",
         A("rss-date", "2025-08-15"), A("tz-west", "2025-08-15"), A("tz-zulu", "2025-08-15")),
    case("jsonl-overlong-title.jsonl", "a 1000-character title",
         A("long-title", title=("Sehr langer Titel " * 11).strip() + "…")),
    case("jsonl-pretty-printed-objects.jsonl", "JSON objects pretty-printed over several lines",
         A("pretty-1", line=1), A("pretty-2", line=5)),
    case("json-array-pretty-printed.json", "a .json file holding a pretty-printed array",
         A("array-1", line=2, title="Erstes Element"),
         A("json-array-pretty-printed.json:7", line=7, title="Zweites Element ohne id")),
    case("json-pretty-printed-broken.json", "a broken pretty-printed JSON document",
         P(6, "bad JSON: Expecting ',' delimiter; nothing in this JSON document was read")),
    case("json-empty-array.json", "an empty JSON array", P(None, "no articles in the file")),
    # --- CSV ---
    case("csv-missing-text-column.csv", "CSV without a text column", P(1, "no header naming a text column")),
    case("csv-short-row-missing-columns.csv", "CSV row with missing columns",
         A("short-1", "2025-08-15", line=2), P(3, "expected 4 columns, got 2"), A("short-3", line=4)),
    case("csv-extra-columns.csv", "CSV row with extra columns (unquoted commas)",
         A("extra-1", line=2), P(3, "expected 3 columns, got 5"),
         A("extra-3", line=4, text="Ein Text, mit Komma, richtig zitiert.")),
    case("csv-unterminated-quote.csv", "unterminated CSV quote",
         A("open-1", line=2), P(3, "unterminated quote"), A("open-3", line=4), A("open-4", line=5)),
    case("csv-header-only.csv", "CSV with a header and no rows", P(None, "no articles in the file")),
    case("csv-title-only-row.csv", "title-only CSV row", P(2, "missing or empty 'text'"), A("to-2", line=3)),
    case("csv-excel-semicolon-cp1252-crlf.csv", "Excel export: semicolons, cp1252, CRLF",
         W(None, "not valid UTF-8; read as cp1252"),
         A("xl-1", "2025-08-15", title="Preise", text="„Das kostet 5 €“, sagte die Händlerin.")),
    case("csv-10kgnad-headerless.csv", "headerless 10kGNAD layout with bad rows",
         A("csv-10kgnad-headerless.csv:1", text="Salzburg gewinnt 2:1 – der Trainer sagt: 'Ein verdienter Sieg'."),
         A("csv-10kgnad-headerless.csv:2"), P(3, "expected 2 columns (label;text), got 4"),
         P(4, "missing or empty 'text'")),
]

CASES_BY_FILE = {c.file: c for c in CASES}


def rel(path: str, root: Path = CORPUS) -> str:
    return Path(path).relative_to(root).as_posix()


def read(root: Path) -> tuple[list[Article], list[Problem]]:
    problems: list[Problem] = []
    return list(iter_articles(root, on_problem=problems.append)), problems


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[Article | Problem]]:
    """What reading the whole corpus gives, per file, in the order it was given."""
    found: dict[str, list[Article | Problem]] = {}

    def note(item: Article | Problem) -> None:
        found.setdefault(rel(item.path), []).append(item)

    for article in iter_articles(CORPUS, on_problem=note):
        note(article)
    return found


def check(got: list[Article | Problem], expect: tuple[A | P, ...]) -> None:
    """``got`` matches ``expect`` item by item: kind, then every property the table names."""
    assert [type(g).__name__ for g in got] == [{"A": "Article", "P": "Problem"}[type(e).__name__] for e in expect]
    for g, e in zip(got, expect):
        if isinstance(e, P):
            assert isinstance(g, Problem)
            assert (g.line, g.skipped) == (e.line, e.skipped), g
            assert e.words in g.reason, g
            continue
        assert isinstance(g, Article)
        assert g.id == e.id
        assert g.text and g.title
        if e.date is not None:
            assert g.date == e.date
        if e.title is not None:
            assert g.title == e.title
        if e.line is not None:
            assert g.line == e.line
        if e.text is not None:
            assert g.text == e.text
        for part in e.has:
            assert part in g.text
        for part in e.lacks:
            assert part not in g.text and part not in g.title


# --- every committed fixture -----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_fixture_is_indexed_sensibly_or_reported(corpus, case: Case) -> None:
    check(corpus.get(case.file, []), case.expect)


def test_every_fixture_has_a_case_and_a_readme_line() -> None:
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()}
    assert files == set(CASES_BY_FILE)
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    missing = [c.file for c in CASES if f"`{c.file}`" not in readme]
    assert not missing, f"README.md does not list {missing}"
    assert len(CASES) + len(GENERATED) >= 30


def test_nothing_is_read_twice_or_from_nowhere(corpus) -> None:
    assert set(corpus) <= set(CASES_BY_FILE)  # every article and problem names a fixture file
    articles = [item for items in corpus.values() for item in items if isinstance(item, Article)]
    assert len(articles) == sum(isinstance(e, A) for c in CASES for e in c.expect)


def test_text_is_clean_in_every_article(corpus) -> None:
    import unicodedata

    for items in corpus.values():
        for a in (i for i in items if isinstance(i, Article)):
            assert a.text == a.text.strip() and "\r" not in a.text and "\x00" not in a.text
            assert unicodedata.is_normalized("NFC", a.text)
            a.content_hash  # encodable as UTF-8: no lone surrogates left  # noqa: B018
            assert "\n" not in a.title and len(a.title) <= 200


@pytest.mark.parametrize("name", ["long-line-no-sentence-end", "very-long-word-without-spaces"])
def test_long_lines_are_chunked_by_tokens_under_the_budget(corpus, name: str) -> None:
    [article] = [i for i in corpus[f"{name}.txt"] if isinstance(i, Article)]
    assert count_tokens(article.text) > BUDGET
    chunks = chunk_article(article, max_tokens=BUDGET)
    assert len(chunks) > 1
    for c in chunks:
        assert c.text == article.text[c.start : c.end]
        assert c.n_tokens == count_tokens(c.text) <= BUDGET
    assert chunks[0].start == 0 and chunks[-1].end == len(article.text)
    covered = "".join(article.text[a.end : b.start] for a, b in itertools.pairwise(chunks) if b.start > a.end)
    assert not covered.strip()  # the gaps between chunks are whitespace only: nothing lost


# --- what cannot be committed ------------------------------------------------------------------

FIVE_MB = 5_000_000
PARAGRAPH = (
    "Putin und Trump treffen sich am Freitag im US-Staat Alaska. Der Gipfel auf dem Stützpunkt "
    "Elmendorf-Richardson in Anchorage beginnt um 11.30 Uhr Ortszeit (21.30 Uhr MESZ). "
    "Im Anschluss ist eine gemeinsame Pressekonferenz geplant, sagte ein Sprecher des Kreml."
)


def write_five_megabyte_article(path: Path) -> Path:
    """A 5 MB seed article: paragraphs of ordinary sentences, and one 400 kB run-on paragraph."""
    run_on = " ".join(f"und weiter ging es mit Punkt {i} der Tagesordnung" for i in range(8_000))
    parts, size = [" date 2025-08-15 "], 17
    while size < FIVE_MB:
        block = run_on if len(parts) == 100 else PARAGRAPH
        parts.append(block + "\n\n")
        size += len(block.encode("utf-8")) + 2
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _readable_anyway(path: Path) -> bool:
    """Whether a chmod 000 ``path`` can still be read: as root (root reads anything)."""
    try:
        path.read_bytes() if path.is_file() else os.listdir(path)
    except OSError:
        return False
    return True


def make_special_files(root: Path) -> list[tuple[str, P]]:
    """Links and a pipe under ``root``; the problems each must give (unreadable entries:
    :func:`make_unreadable_files`, which needs a user that is not root)."""
    expected = []
    (root / "link-loop.txt").symlink_to("link-loop.txt")
    expected.append(("link-loop.txt", P(None, "link loop")))
    (root / "link-loop-a.txt").symlink_to("link-loop-b.txt")
    (root / "link-loop-b.txt").symlink_to("link-loop-a.txt")
    expected += [("link-loop-a.txt", P(None, "link loop")), ("link-loop-b.txt", P(None, "link loop"))]
    (root / "broken-link.txt").symlink_to("no-such-file.txt")
    expected.append(("broken-link.txt", P(None, "broken link: No such file or directory")))
    (root / "link-to-folder").symlink_to(CORPUS / "nested", target_is_directory=True)
    expected.append(("link-to-folder", P(None, "link to a folder: not followed")))
    os.mkfifo(root / "named-pipe.txt")
    expected.append(("named-pipe.txt", P(None, "not a regular file")))
    return expected


def make_unreadable_files(root: Path) -> list[tuple[str, P]]:
    """An unreadable file and an unreadable folder under ``root`` and their problems.

    Skips the calling test, saying why, where they cannot be made: root reads anything.
    """
    locked = root / "unreadable.txt"
    locked.write_text(" date 2025-08-15 Gesperrt.", encoding="utf-8")
    locked.chmod(0)
    folder = root / "unreadable-folder"
    folder.mkdir()
    (folder / "inside.txt").write_text(" date 2025-08-15 Im gesperrten Ordner.", encoding="utf-8")
    folder.chmod(0)
    if _readable_anyway(locked) or _readable_anyway(folder):
        pytest.skip("running as root, which reads chmod 000 files and folders: 'cannot read' cannot be tested here")
    return [("unreadable.txt", P(None, "cannot read: Permission denied")),
            ("unreadable-folder", P(None, "cannot read folder: Permission denied"))]


GENERATED = [
    "5 MB article", "link loop", "link loop through two links", "broken link", "link to a folder",
    "named pipe (FIFO)", "unreadable file (chmod 000)", "unreadable folder (chmod 000)",
]


@pytest.fixture
def special():
    """``make(root)``: the special files under ``root`` and their expected problems; unlocked afterwards."""
    roots: list[Path] = []

    def make(root: Path, *, unreadable: bool = False) -> list[tuple[str, P]]:
        root.mkdir(parents=True, exist_ok=True)
        roots.append(root)
        return make_special_files(root) + (make_unreadable_files(root) if unreadable else [])

    yield make
    for root in roots:  # let pytest clean up what was locked
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink() and path.exists():
                path.chmod(0o755)
        locked = root / "unreadable-folder"
        if locked.exists():
            locked.chmod(0o755)


@pytest.mark.parametrize("unreadable", [False, True], ids=["links and pipes", "unreadable (not as root)"])
def test_links_pipes_and_unreadable_files_are_reported(tmp_path: Path, special, unreadable: bool) -> None:
    root = tmp_path / "special"
    expected = special(root, unreadable=unreadable)
    articles, problems = read(root)
    assert articles == []
    got = sorted((rel(p.path, root), p.line, p.reason, p.skipped) for p in problems)
    assert [g[0] for g in got] == sorted(name for name, _ in expected)
    for (name, line, reason, skipped), (_, want) in zip(got, sorted(expected, key=lambda e: e[0])):
        assert (line, skipped) == (want.line, want.skipped) and want.words in reason, (name, reason)


@pytest.mark.timing
def test_five_megabyte_article_is_read_and_chunked_in_reasonable_time(tmp_path: Path) -> None:
    path = write_five_megabyte_article(tmp_path / "five-megabyte-article.txt")
    assert path.stat().st_size >= FIVE_MB
    started = time.perf_counter()
    [article] = list(iter_articles(path))
    embedder = HashEmbedder()
    chunks = chunk_article(
        article, max_tokens=BUDGET, model_limit=embedder.max_seq_length, count_model_tokens=embedder.count_tokens
    )
    seconds = time.perf_counter() - started
    assert len(article.text) > 4_900_000 and article.title == "Putin und Trump treffen sich am Freitag im US-Staat Alaska."
    assert max(c.n_tokens for c in chunks) <= BUDGET
    assert chunks[-1].end == len(article.text)
    assert seconds < 60  # a few seconds on a laptop; quadratic cutting of the run-on part took minutes


# --- end to end --------------------------------------------------------------------------------


def good_ids() -> set[str]:
    return {e.id for c in CASES for e in c.expect if isinstance(e, A)}


def expected_problems() -> list[tuple[str, P]]:
    return [(c.file, e) for c in CASES for e in c.expect if isinstance(e, P)]


def test_build_index_over_the_whole_corpus(tmp_path: Path, special) -> None:
    """Everything good is in the index, everything bad is reported, nothing crashes."""
    archive = tmp_path / "archive"
    shutil.copytree(CORPUS, archive)
    write_five_megabyte_article(archive / "five-megabyte-article.txt")
    special_expected = special(archive / "special")
    index = tmp_path / "index"

    report = build_index(archive, index, embedder=HashEmbedder())

    with Store.open(index) as store:
        ids = set(store.article_hashes())
    assert ids == good_ids() | {"five-megabyte-article"}

    got = [(rel(p.path, archive), p) for p in report.errors]
    duplicates = [
        ("jsonl-duplicate-ids.jsonl", P(1, "duplicate article id 'dup-1' (first read from")),
        ("jsonl-duplicate-ids.jsonl", P(2, "duplicate article id 'dup-1' (first read from")),
    ]
    wanted = expected_problems() + [(f"special/{name}", p) for name, p in special_expected] + duplicates
    unmatched = list(got)
    for name, want in wanted:
        match = next(
            (g for g in unmatched if g[0] == name and g[1].line == want.line and want.words in g[1].reason), None
        )
        assert match is not None, f"not reported: {name}:{want.line}: {want.words}"
        assert match[1].skipped == want.skipped
        unmatched.remove(match)
    assert unmatched == [], "reported but not expected"


def test_cli_prints_each_problem_with_path_line_and_reason(cli_env: Path) -> None:
    result = CliRunner().invoke(cli, ["index", str(CORPUS), "--index", str(cli_env / "ix")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert f"{len(expected_problems()) + 2} problems:" in err  # + the two duplicate ids
    for line in (
        f"{CORPUS / 'jsonl-truncated-line.jsonl'}:2: bad JSON: Unterminated string",
        f"{CORPUS / 'csv-unterminated-quote.csv'}:3: unterminated quote",
        f"{CORPUS / 'malformed-date-line.txt'}:1: malformed date '15.08.2025'",
        f"{CORPUS / 'empty.txt'}: empty file",
        f"{CORPUS / 'latin1-encoded.txt'}: not valid UTF-8; read as cp1252 (read anyway)",
        f"{CORPUS / 'jsonl-duplicate-ids.jsonl'}:2: duplicate article id 'dup-1'",
    ):
        assert line in err, line
    assert f"indexed {len(good_ids())} articles" in result.stdout
