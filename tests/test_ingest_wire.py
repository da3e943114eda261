"""Agency formats as articles (qabot.ingest.newsml, digitalwires, wire): NewsML-G2, NITF and dpa's
digitalwires JSON, read from the real examples in ../shared/corpora/wire-formats at test time
(their text is dpa's and IPTC's: never copied into the repository), plus small files of our own
for NITF on its own, versions, withdrawals and hostile XML.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from qabot.documents import Article, Problem
from qabot.ingest.archive import iter_articles

from .conftest import SHARED

WIRE = SHARED / "corpora" / "wire-formats"
DPA = WIRE / "dpa-digitalwires"
IPTC = WIRE / "iptc-newsml-g2-examples"
GUID = "urn:newsml:dpa.com:20090101:250128-930-357319"


@pytest.fixture(scope="module", autouse=True)
def _wire_formats_present() -> None:
    assert DPA.is_dir() and IPTC.is_dir(), f"{WIRE} is missing: ../shared/corpora must be beside the repository"


def read(path: Path) -> tuple[list[Article], list[Problem]]:
    problems: list[Problem] = []
    return list(iter_articles(path, on_problem=problems.append)), problems


def test_a_dpa_newsml_item_is_an_article_with_its_guid_headline_dateline_and_byline() -> None:
    [article], problems = read(DPA / "newsml-g2" / "with_dateline.xml")
    assert not problems
    assert article.id == GUID
    assert article.title == "DeepSeek-Schock aus China: Zeichen für KI-Zeitenwende?"
    assert (article.date, article.source, article.url, article.line) == ("2025-01-28", "dpa", None, 5)
    paragraphs = article.text.split("\n\n")
    assert paragraphs[0] == "Von Andrej Sokolow, dpa"  # the byline
    assert paragraphs[1].startswith("Dass ein Start-up aus China")  # the teaser
    assert paragraphs[2].startswith("New York (dpa) - Ein Chatbot aus China")  # the dateline opens the body
    assert "Notizblock" not in article.text and "sokolow.andrej@dpa.com" not in article.text  # editors' notes stay out


def test_the_same_dpa_item_reads_the_same_as_digitalwires_json_and_as_newsml(tmp_path: Path) -> None:
    same = 0
    for source in sorted((DPA / "input").glob("*.json")):
        xml = DPA / "newsml-g2" / f"{source.stem}.xml"
        from_json, _ = read(source)
        if not xml.exists() or not from_json:
            continue
        from_xml, _ = read(xml)
        assert [a.id for a in from_json] == [a.id for a in from_xml]
        assert [(a.title, a.date) for a in from_json] == [(a.title, a.date) for a in from_xml]
        same += from_json[0].text == from_xml[0].text
    assert same >= 13  # two differ as dpa's converter changes them: an infobox, a split dateline paragraph


def test_digitalwires_entries_without_text_are_skipped_with_a_reason(tmp_path: Path) -> None:
    articles, problems = read(DPA / "input")
    texts = {a.id for a in articles}
    assert len(texts) == 15
    reasons = {Path(p.path).name: p.reason for p in problems}
    assert set(reasons) == {"audio.json", "image.json", "image2.json", "no_content.json"}
    assert all("no text in the item" in r for r in reasons.values())
    entries = {"entries": [json.loads((DPA / "input" / "eil.json").read_text()), "kein Objekt"]}
    (tmp_path / "api.json").write_text(json.dumps(entries), encoding="utf-8")
    articles, problems = read(tmp_path)
    assert [(a.id, a.line) for a in articles] == [("urn:newsml:dpa.com:20090101:240925-930-242744", 1)]
    assert [(p.line, p.reason) for p in problems] == [(2, "entry 2: not a JSON object but str")]


def test_iptc_listings_that_are_not_text_articles_are_skipped_with_their_reason() -> None:
    articles, problems = read(IPTC)
    assert {a.id for a in articles} == {
        "tag:xmlteam.com,2016:xt.5932656-preview", "urn:newsml:acmenews.com:20161121:US-FINANCE-FED",
        "urn:newsml:NAG.com:20161121:US-FINANCE-FED", "tag:example.com,2008:407624"}
    reasons = {Path(p.path).name: p.reason for p in problems}
    assert "a package, not a text article" in reasons["LISTING_6_Simple_NewsML-G2_Package.xml"]
    assert "a planning item, not a text article" in reasons["LISTING_17_Planning_Item_a_CCL.xml"]
    assert "a concept item" in reasons["LISTING_11_Person_Concept_conveyed_in_a_NewsML-G2_Concept_Item.xml"]
    assert "itemClass ninat:picture" in reasons["LISTING_3_Photo_in_NewsML-G2.xml"]
    assert "itemClass ninat:video" in reasons["LISTING_4_Multiple_Renditions_of_a_Video_in_NewsML-G2.xml"]
    assert "not NewsML-G2 or NITF (the root element is <groupSet>)" in reasons[
        "LISTING_7_Group_Set_example_showing_Hierarchical_Package_Structure.xml"]
    assert "no inline text" in reasons["LISTING_29_Hop_History.xml"]
    assert all(p.skipped and p.line is not None for p in problems)
    story = next(a for a in articles if a.id.startswith("urn:newsml:acmenews.com"))
    assert story.title == 'Fed to halt QE to avert "bubble"' and story.date == "2016-11-21"
    assert story.text.startswith("By Meredith Jameson, Staff Reporter\n\n(New York, NY - October 21)")


def _newer(version: int, created: str, sentence: str, status: str = "usable") -> bytes:
    """dpa's with_dateline.xml as a later version would come: another number, time, status and first paragraph."""
    data = (DPA / "newsml-g2" / "with_dateline.xml").read_text(encoding="utf-8")
    data = data.replace('version="2"', f'version="{version}"').replace(
        "<versionCreated>2025-01-28T09:18:34+01:00</versionCreated>", f"<versionCreated>{created}</versionCreated>")
    data = data.replace('qcode="stat:usable"', f'qcode="stat:{status}"')
    return data.replace("Ein Chatbot aus China schockt die Wall Street", sentence).encode()


def test_a_later_version_of_a_guid_replaces_the_earlier_and_a_withdrawal_removes_it(tmp_path: Path) -> None:
    (tmp_path / "a-v2.xml").write_bytes((DPA / "newsml-g2" / "with_dateline.xml").read_bytes())
    (tmp_path / "b-v3.xml").write_bytes(_newer(3, "2025-01-28T11:00:00+01:00", "Version drei berichtet neu"))
    (tmp_path / "c.json").write_text((DPA / "input" / "with_dateline.json").read_text(encoding="utf-8"), encoding="utf-8")
    articles, problems = read(tmp_path)
    assert not problems
    assert [(Path(a.path).name, a.id) for a in articles] == [("b-v3.xml", GUID)]
    assert "Version drei berichtet neu" in articles[0].text
    (tmp_path / "d-v4.xml").write_bytes(_newer(4, "2025-01-28T12:00:00+01:00", "egal", status="canceled"))
    articles, problems = read(tmp_path)
    assert articles == []
    assert [(Path(p.path).name, p.reason) for p in problems] == [
        ("d-v4.xml", f"item {GUID}: withdrawn by the agency (pubStatus canceled); not indexed")]


NITF = """<?xml version="1.0" encoding="UTF-8"?>
<nitf xmlns="http://iptc.org/std/NITF/2006-10-18/" xml:lang="de">
  <head>
    <title>Neue Brücke über die Elbe</title>
    <docdata>
      <doc-id id-string="urn:example:elbkurier:2025-0314-bruecke"/>
      <du-key version="{version}"/>
      <date.issue norm="20250314T083000+0100"/>
      <doc.copyright holder="Elbkurier"/>
    </docdata>
  </head>
  <body>
    <body.head>
      <hedline><hl1>Neue Brücke über die Elbe eröffnet</hl1></hedline>
      <byline>Von Clara Beispiel</byline>
      <dateline>Magdeburg</dateline>
    </body.head>
    <body.content>
      <p>Nach vier Jahren Bauzeit ist die neue Brücke über die Elbe eröffnet worden.</p>
      <hl2>{subhead}</hl2>
      <p>Die Brücke ist 320 Meter lang und hat rund 28 Millionen Euro gekostet.</p>
      <table><tr><td>Länge</td><td>320 m</td></tr></table>
    </body.content>
  </body>
</nitf>
"""


def test_an_nitf_file_on_its_own(tmp_path: Path) -> None:
    (tmp_path / "v1.xml").write_text(NITF.format(version=1, subhead="Ein Fest am Wochenende"), encoding="utf-8")
    (tmp_path / "v2.xml").write_text(NITF.format(version=2, subhead="Ein Fest am Sonntag"), encoding="utf-8")
    [article], problems = read(tmp_path)
    assert not problems
    assert (article.id, article.title, article.date, article.source) == (
        "urn:example:elbkurier:2025-0314-bruecke", "Neue Brücke über die Elbe eröffnet", "2025-03-14", "Elbkurier")
    assert article.text.split("\n\n") == [
        "Von Clara Beispiel", "Magdeburg – Nach vier Jahren Bauzeit ist die neue Brücke über die Elbe eröffnet worden.",
        "Ein Fest am Sonntag", "Die Brücke ist 320 Meter lang und hat rund 28 Millionen Euro gekostet.", "Länge | 320 m"]


@pytest.mark.timing
def test_xml_that_is_not_newsml_is_malformed_or_declares_entities_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "rss.xml").write_text('<?xml version="1.0"?><rss version="2.0"><channel/></rss>', encoding="utf-8")
    (tmp_path / "kaputt.xml").write_text("<nitf><body><p>offen</body>", encoding="utf-8")
    secret = tmp_path / "geheim.txt"
    secret.write_text(" date 2025-01-01 GEHEIMES-PASSWORT-4711", encoding="utf-8")
    (tmp_path / "xxe.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE nitf [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<nitf><body><body.content><p>&xxe; und noch ein paar Worte mehr für den Absatz</p></body.content></body></nitf>',
        encoding="utf-8")
    laughs = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    (tmp_path / "lol.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE nitf [<!ENTITY l0 "lol">{laughs}]><nitf><body><p>&l9;</p></body></nitf>',
        encoding="utf-8")
    start = time.perf_counter()
    articles, problems = read(tmp_path)
    assert time.perf_counter() - start < 5
    assert [a.id for a in articles] == ["geheim"]  # only the seed file: nothing from the XML
    reasons = {Path(p.path).name: p.reason for p in problems}
    assert reasons["rss.xml"] == "not NewsML-G2 or NITF (the root element is <rss>)"
    assert reasons["kaputt.xml"].startswith("malformed XML")
    assert "declares entities" in reasons["xxe.xml"]
    # libxml2 stops the billion laughs while parsing (its amplification limit stays on: no huge_tree)
    assert "declares entities" in reasons["lol.xml"] or "entity amplification" in reasons["lol.xml"]
