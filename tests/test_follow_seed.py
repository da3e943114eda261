"""The seed question, asked of an archive that was *followed*: the seed article served as an HTML
page in a feed on 127.0.0.1, followed into an archive and an index with the real model, then
`qabot ask` answers with the 11.00 sentence, dated 2025-08-15, linking to the page."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qabot.frontends.cli import cli, sample_archive

from .conftest import LANDING_SENTENCE
from .fake_site import Article, FakeSite, page_html

pytestmark = pytest.mark.model


def _seed_page() -> Article:
    text = (sample_archive() / "2025-08-15-alaska-summit.txt").read_text(encoding="utf-8")
    date, body = text.removeprefix(" date ").split(" ", 1)
    paragraphs = tuple(p.strip() for p in body.split("\n\n") if p.strip())
    return Article("Trump telefoniert vor dem Gipfel mit Lukaschenko", date, paragraphs)


def test_the_seed_question_is_answered_from_a_followed_archive(tmp_path, monkeypatch, model_cache_dir):
    monkeypatch.chdir(tmp_path)
    env = {"QABOT_CACHE_DIR": str(model_cache_dir), "QABOT_FOLLOW_CONTACT": "ops@example.org", "QABOT_INDEX": str(tmp_path / "index")}
    with FakeSite() as site:
        seed = _seed_page()
        assert seed.date == "2025-08-15"
        site.route("/politik/alaska-gipfel.html", body=page_html(seed))
        site.add_feed("/feed.xml", ["/politik/alaska-gipfel.html"], items={"/politik/alaska-gipfel.html": seed})
        followed = CliRunner().invoke(cli, ["follow", site.url("/feed.xml"), "--archive", str(tmp_path / "archive"),
                                            "--index", str(tmp_path / "index"), "--once", "--delay", "0", "--json"], env=env)
        page_url = site.url("/politik/alaska-gipfel.html")
    assert followed.exit_code == 0, followed.output
    report = json.loads(followed.stdout)
    assert report["new"] == 1 and report["index"]["articles_indexed"] == 1, followed.stderr

    asked = CliRunner().invoke(cli, ["ask", "When does Putin land in Alaska?", "--json"], env=env)
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert answer["sentence"] == LANDING_SENTENCE
    cited = answer["passages"][answer["citation"]]
    assert cited["date"] == "2025-08-15" and cited["url"] == page_url
