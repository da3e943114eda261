"""Training groups for qabot's reranker from public QA data; pure steps plus the readers.

    from qabot.training.reranker_data import read_sources, sentence_groups
    questions = read_sources(Path("../shared/corpora/qa"))

A *question* (:class:`QA`) is a question with its paragraph, the paragraph's sentences (cut by
qabot's own splitter, :func:`qabot.ingest.sentences.split_sentences`, as the index cuts them)
and which sentence holds the answer. A *group* (:class:`Group`) is what the listwise loss
reads: one question, one positive text first, then its negatives.

Sources (each folder's PROVENANCE.txt gives origin and licence), read where they lie:
SQuAD-format files (SQuADShifts' new_wiki/reddit/amazon, the SQuAD 2.0 train slice: its
unanswerable questions are kept apart for abstention), SelQA's answer-sentence sets (already
cut into sentences), the GermanQuAD/GermanDPR slice (German; the answer located in the context).
Questions whose article title is one of XQuAD's (SQuAD v1.1 dev's 48 articles) are dropped:
XQuAD is the dev set.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qabot.ingest.sentences import split_sentences

# SQuAD v1.1 dev's 48 articles: XQuAD translates their paragraphs, so no training question may come from them.
XQUAD_TITLES = frozenset(t.lower().replace("_", " ") for t in ["Super_Bowl_50", "Warsaw", "Normans", "Nikola_Tesla", "Computational_complexity_theory", "Teacher", "Martin_Luther", "Southern_California", "Sky_(United_Kingdom)", "Victoria_(Australia)", "Huguenot", "Steam_engine", "Oxygen", "1973_oil_crisis", "Apollo_program", "European_Union_law", "Amazon_rainforest", "Ctenophora", "Fresno,_California", "Packet_switching", "Black_Death", "Geology", "Newcastle_upon_Tyne", "Victoria_and_Albert_Museum", "American_Broadcasting_Company", "Genghis_Khan", "Pharmacy", "Immune_system", "Civil_disobedience", "Construction", "Private_school", "Harvard_University", "Jacksonville,_Florida", "Economic_inequality", "Doctor_Who", "University_of_Chicago", "Yuan_dynasty", "Kenya", "Intergovernmental_Panel_on_Climate_Change", "Chloroplast", "Prime_number", "Rhine", "Scottish_Parliament", "Islamism", "Imperialism", "United_Methodist_Church", "French_and_Indian_War", "Force"])

SQUAD_FILES = ("squadshifts/new_wiki_v1.0.json", "squadshifts/reddit_v1.0.json", "squadshifts/amazon_reviews_v1.0.json",
               "squad_v2_partial/train-v2.0.first10articles.json")
SOURCE_NAMES = dict(zip(SQUAD_FILES, ("new_wiki", "reddit", "amazon", "squad2")))
SELQA_FILES = ("selqa/selqa-ass-dev.json", "selqa/selqa-ass-test.json")
GERMAN_FILES = ("germanquad_dpr_filtered/GermanQuAD_train_filtered.json",
                "germanquad_dpr_filtered/GermanDPR_train_filtered.json")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class QA:
    """One training question: its paragraph's sentences and which one answers (``answer`` is an index)."""

    source: str
    title: str
    question: str
    paragraph: str
    sentences: tuple[str, ...]
    answer: int
    answer_text: str
    language: str = "en"


@dataclass(frozen=True)
class Group:
    """One question and its texts, the positive first: what the listwise loss reads."""

    question: str
    texts: tuple[str, ...]
    kind: str  # "sentence" or "passage"


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def is_dev_title(title: str) -> bool:
    """True for an article title that XQuAD (the dev set) also holds."""
    return _norm(title.replace("_", " ")) in XQUAD_TITLES


def answering_sentence(paragraph: str, start: int, answer: str) -> tuple[tuple[str, ...], int] | None:
    """The paragraph's sentences (qabot's splitter) and the index of the one holding the answer
    span ``start``..``start + len(answer)``; None when the span crosses a sentence boundary."""
    sentences = split_sentences(paragraph)
    end = start + len(answer)
    for i, s in enumerate(sentences):
        if s.start <= start < s.end:
            if end > s.end + 1:  # the answer runs into the next sentence: no single positive
                return None
            return tuple(x.text for x in sentences), i
    return None


def squad_questions(data: dict, *, source: str) -> tuple[list[QA], list[tuple[str, str]]]:
    """Answerable questions of a SQuAD-format file, and its unanswerable ones as (question, paragraph)."""
    found: list[QA] = []
    unanswerable: list[tuple[str, str]] = []
    for article in data["data"]:
        title = article.get("title", "")
        if is_dev_title(title):
            continue
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = qa.get("answers") or []
                if qa.get("is_impossible") or not answers:
                    unanswerable.append((qa["question"].strip(), context))
                    continue
                first = answers[0]
                located = answering_sentence(context, int(first["answer_start"]), first["text"])
                if located is None:
                    continue
                sentences, index = located
                found.append(QA(source, title, qa["question"].strip(), context, sentences, index, first["text"]))
    return found, unanswerable


def selqa_questions(records: Sequence[dict], *, source: str) -> list[QA]:
    """SelQA answer-sentence records: the candidates are the paragraph's sentences already."""
    found = []
    for r in records:
        if is_dev_title(r.get("article", "")) or not r.get("answers"):
            continue
        sentences = tuple(s.strip() for s in r["candidates"])
        index = int(r["answers"][0])
        found.append(QA(source, r.get("article", ""), r["question"].strip(), " ".join(sentences), sentences, index,
                        sentences[index]))
    return found


def german_questions(records: Sequence[dict], *, source: str) -> list[QA]:
    """GermanQuAD/GermanDPR records: the context's first line is the title; the answer is found in it."""
    found = []
    seen: set[str] = set()
    for r in records:
        title, _, body = r["context"].partition("\n")
        question, answer = r["question"].strip(), r["answer"].strip()
        start = body.find(answer)
        if start < 0 or not answer or question in seen or is_dev_title(title):
            continue
        located = answering_sentence(body, start, answer)
        if located is None:
            continue
        seen.add(question)
        sentences, index = located
        found.append(QA(source, title, question, body, sentences, index, answer, "de"))
    return found


def read_sources(root: Path) -> tuple[list[QA], list[tuple[str, str]], dict[str, str]]:
    """Every training question under ``root`` (../shared/corpora/qa), the unanswerable
    (question, paragraph) pairs, and each file's sha256 (for the training card)."""
    questions: list[QA] = []
    unanswerable: list[tuple[str, str]] = []
    checksums: dict[str, str] = {}

    def load(name: str) -> object:
        raw = (root / name).read_bytes()
        checksums[name] = hashlib.sha256(raw).hexdigest()
        return json.loads(raw)

    for name in SQUAD_FILES:
        found, impossible = squad_questions(load(name), source=SOURCE_NAMES[name])  # type: ignore[arg-type]
        questions += found
        unanswerable += impossible
    for name in SELQA_FILES:
        questions += selqa_questions(load(name), source="selqa")  # type: ignore[arg-type]
    for name in GERMAN_FILES:
        questions += german_questions(load(name), source=name.split("/")[-1].split("_")[0].lower())  # type: ignore[arg-type]
    return questions, unanswerable, checksums


def _overlap(question: str, sentence: str) -> float:
    q = {w for w in re.findall(r"\w+", question.lower()) if len(w) > 3}
    s = set(re.findall(r"\w+", sentence.lower()))
    return len(q & s) / (len(q) or 1)


def sentence_group(qa: QA, *, negatives: int, other_paragraphs: Sequence[QA], rng: random.Random) -> Group | None:
    """The answering sentence, then up to ``negatives`` wrong ones: the paragraph's other
    sentences first (the decision the bi-encoder gets wrong), one from ``other_paragraphs``
    (the bi-encoder's nearest wrong paragraphs: its sentence sharing most question words).
    Sentences that hold the answer text too are never negatives. None: no negative at all."""
    answer = _norm(qa.answer_text)
    positive = qa.sentences[qa.answer]
    inside = [s for i, s in enumerate(qa.sentences) if i != qa.answer and answer not in _norm(s) and len(s) > 15]
    outside = [s for other in other_paragraphs for s in other.sentences if answer not in _norm(s) and len(s) > 15]
    chosen: list[str] = []
    if outside and negatives > 1:
        chosen.append(max(outside, key=lambda s: _overlap(qa.question, s)))
    rng.shuffle(inside)
    chosen = inside[: negatives - len(chosen)] + chosen
    if len(chosen) < negatives and outside:
        rest = [s for s in outside if s not in chosen]
        rng.shuffle(rest)
        chosen += rest[: negatives - len(chosen)]
    if not chosen:
        return None
    return Group(qa.question, (positive, *chosen), "sentence")


def passage_group(qa: QA, *, other_paragraphs: Sequence[QA], negatives: int) -> Group | None:
    """The question's paragraph, then the bi-encoder's nearest wrong paragraphs (not holding the answer)."""
    answer = _norm(qa.answer_text)
    wrong = list(dict.fromkeys(o.paragraph for o in other_paragraphs if answer not in _norm(o.paragraph)))[:negatives]
    return Group(qa.question, (qa.paragraph, *wrong), "passage") if wrong else None


def sample(questions: Sequence[QA], limit: int, *, seed: int, per_source: dict[str, int] | None = None) -> list[QA]:
    """Up to ``limit`` questions drawn with ``seed``, at most ``per_source[source]`` from a source."""
    rng = random.Random(seed)
    pool = list(questions)
    rng.shuffle(pool)
    taken: dict[str, int] = {}
    out = []
    for qa in pool:
        cap = (per_source or {}).get(qa.source)
        if cap is not None and taken.get(qa.source, 0) >= cap:
            continue
        taken[qa.source] = taken.get(qa.source, 0) + 1
        out.append(qa)
        if len(out) >= limit:
            break
    return out


def sample_with_share(questions: Sequence[QA], limit: int, *, seed: int, language: str, share: float,
                      per_source: dict[str, int] | None = None) -> list[QA]:
    """``limit`` questions of which ``round(limit * share)`` are in ``language``: each of those once in
    a seeded order, then again in a fresh order while more are wanted (oversampling a small set); the
    rest drawn by :func:`sample` from the other languages. ``share`` 0 leaves ``language`` out."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be within [0, 1], got {share}")
    rng = random.Random(seed)
    own = [q for q in questions if q.language == language]
    want = round(limit * share) if own else 0
    picked: list[QA] = []
    while len(picked) < want:
        order = list(own)
        rng.shuffle(order)
        picked += order[: want - len(picked)]
    rest = sample([q for q in questions if q.language != language], limit - len(picked), seed=seed, per_source=per_source)
    out = picked + rest
    rng.shuffle(out)
    return out


def paragraphs_of(questions: Iterable[QA]) -> list[QA]:
    """One representative question per distinct (source, paragraph), in first-seen order."""
    seen: dict[tuple[str, str], QA] = {}
    for qa in questions:
        seen.setdefault((qa.source, qa.paragraph), qa)
    return list(seen.values())
