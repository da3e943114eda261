"""The dev set: a SQuAD-format file (e.g. XQuAD) to the articles to index (one per paragraph) and
the questions per language, each in half "A" (even-numbered article in the file's ``data``) or "B" (odd).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qabot.documents import Article

HALVES = ("A", "B")  # A: even article index in the SQuAD file's ``data``, B: odd


@dataclass(frozen=True)
class Gold:
    """One SQuAD question: its text, gold paragraph id, answers and half ("A" or "B")."""

    question: str
    paragraph_id: str
    answers: tuple[str, ...]
    half: str


@dataclass(frozen=True)
class Question:
    """One question: its id, language, text, gold paragraph id and (German) gold answers."""

    id: str
    language: str
    text: str
    paragraph_id: str
    answers: tuple[str, ...]
    half: str = "A"


def read_squad(data: dict[str, Any]) -> tuple[list[Article], dict[str, Gold]]:
    """Articles (one per paragraph) and question id -> its Gold from SQuAD JSON; the half is
    "A" for the questions of an even-numbered article (0-based, in ``data``), "B" for odd."""
    articles: list[Article] = []
    questions: dict[str, Gold] = {}
    for number, entry in enumerate(data["data"]):
        half = HALVES[number % 2]
        for index, paragraph in enumerate(entry["paragraphs"]):
            paragraph_id = f"{entry['title']}#{index}"
            articles.append(Article(id=paragraph_id, title=entry["title"].replace("_", " "), text=paragraph["context"]))
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                questions[qa["id"]] = Gold(qa["question"], paragraph_id, answers, half)
    return articles, questions



def load_questions(de: Path, en: Path | None, *, limit: int | None) -> tuple[list[Article], dict[str, list[Question]]]:
    """The paragraphs to index and the questions per language (first ``limit`` of each)."""
    articles, german = read_squad(json.loads(de.read_text(encoding="utf-8")))
    by_language = {"de": [Question(qid, "de", g.question, g.paragraph_id, g.answers, g.half) for qid, g in german.items()]}
    if en is not None:
        _, english = read_squad(json.loads(en.read_text(encoding="utf-8")))
        missing = [qid for qid in english if qid not in german]
        if missing:
            print(f"warning: {len(missing)} English question ids are not in {de}; skipped", file=sys.stderr)
        # The answer sentence comes from the German paragraphs, so it is scored on German answers.
        by_language["en"] = [
            Question(qid, "en", g.question, german[qid].paragraph_id, german[qid].answers, german[qid].half)
            for qid, g in english.items() if qid in german
        ]
    if limit is not None:
        by_language = {lang: qs[:limit] for lang, qs in by_language.items()}
    return articles, by_language
