"""qabot/training/reranker_data.py (training groups) and scripts/train_reranker.py on a tiny slice.

The training run is real: the real mining model (multilingual-e5-small) finds the near-miss
paragraphs, and a few steps of LoRA training run on the tiny BERT reranker folder; what is
checked is that an adapter comes out that the production code merges and loads, with its card.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from qabot.models.reranker import CrossEncoderReranker
from qabot.models.reranker_build import build_reranker, read_adapter
from qabot.training import reranker_data as data
from tests.tiny_models import build_tiny_reranker

PARAGRAPH = ("Die Stadt liegt am Fluss. Im Jahr 1342 wurde die Altstadt überflutet. "
             "Heute leben dort 20.000 Menschen. Der Bürgermeister heißt Meier.")


def test_the_positive_is_the_sentence_holding_the_answer_span():
    start = PARAGRAPH.index("1342")
    sentences, index = data.answering_sentence(PARAGRAPH, start, "1342")
    assert sentences[index] == "Im Jahr 1342 wurde die Altstadt überflutet." and len(sentences) == 4
    crossing = PARAGRAPH.index("überflutet")
    assert data.answering_sentence(PARAGRAPH, crossing, "überflutet. Heute leben dort") is None


def test_dev_articles_are_never_training_data():
    assert data.is_dev_title("Super_Bowl_50") and data.is_dev_title("doctor who") and data.is_dev_title("Fresno,_California")
    assert not data.is_dev_title("Alaska")
    squad = {"data": [{"title": t, "paragraphs": [{"context": PARAGRAPH, "qas": [
        {"id": t, "question": "Wann?", "answers": [{"text": "1342", "answer_start": PARAGRAPH.index("1342")}]},
        {"id": t + "x", "question": "Wer?", "answers": [], "is_impossible": True}]}]} for t in ("Doctor_Who", "Stadt")]}
    found, unanswerable = data.squad_questions(squad, source="s")
    assert [q.title for q in found] == ["Stadt"] and unanswerable == [("Wer?", PARAGRAPH)]
    selqa = [{"article": "Doctor Who", "question": "q", "answers": [0], "candidates": ["a b c"]},
             {"article": "Rhône", "question": "q", "answers": [1], "candidates": ["x", "y"]}]
    assert [(q.title, q.sentences[q.answer]) for q in data.selqa_questions(selqa, source="selqa")] == [("Rhône", "y")]


def test_a_sentence_group_never_uses_a_sentence_holding_the_answer_as_a_negative():
    text = PARAGRAPH + " Seit 1342 steht das Rathaus."
    sentences, index = data.answering_sentence(text, text.index("1342"), "1342")
    qa = data.QA("s", "Stadt", "Wann wurde die Altstadt überflutet?", text, sentences, index, "1342")
    other = data.QA("s", "Dorf", "?", "Das Dorf wurde 1500 überflutet und die Altstadt blieb trocken.",
                    ("Das Dorf wurde 1500 überflutet und die Altstadt blieb trocken.",), 0, "1500")
    group = data.sentence_group(qa, negatives=3, other_paragraphs=[other], rng=random.Random(1))
    assert group is not None and group.texts[0] == sentences[index] and len(group.texts) == 4
    assert not any("1342" in t for t in group.texts[1:])
    assert other.sentences[0] in group.texts, "the near-miss paragraph's sentence is one negative"
    passages = data.passage_group(qa, other_paragraphs=[other], negatives=2)
    assert passages is not None and passages.texts == (text, other.paragraph) and passages.kind == "passage"


def test_a_language_share_oversamples_a_small_set_and_zero_leaves_it_out():
    def qa(i: int, language: str, source: str) -> data.QA:
        return data.QA(source, "t", f"{language} question {i}", "p", ("p",), 0, "p", language)

    pool = [qa(i, "de", "germanquad") for i in range(3)] + [qa(i, "en", "new_wiki") for i in range(40)]
    chosen = data.sample_with_share(pool, 20, seed=1, language="de", share=0.4)
    german = [q.question for q in chosen if q.language == "de"]
    assert len(chosen) == 20 and len(german) == 8
    assert set(german) == {q.question for q in pool[:3]} and max(german.count(g) for g in german) == 3, \
        "each German question is taken before any is taken again"
    assert len({q.question for q in chosen if q.language == "en"}) == 12, "the rest are drawn once each"
    assert chosen == data.sample_with_share(pool, 20, seed=1, language="de", share=0.4), "seeded"
    assert all(q.language == "en" for q in data.sample_with_share(pool, 20, seed=1, language="de", share=0.0))
    with pytest.raises(ValueError, match="share"):
        data.sample_with_share(pool, 20, seed=1, language="de", share=1.5)


def _tiny_corpus(root: Path) -> None:
    """Every file read_sources reads, each with a few questions (English, German, SelQA)."""
    paragraphs = [PARAGRAPH, "Der Zug fährt um 9 Uhr ab. Er kommt um 12 Uhr an. Die Fahrt kostet 30 Euro.",
                  "The castle was built in 1200. It burned down in 1650. A museum opened there in 1990."]
    questions = [("Wann wurde die Altstadt überflutet?", "1342", 0), ("Wie viele Menschen leben dort?", "20.000", 0),
                 ("Wann kommt der Zug an?", "12 Uhr", 1), ("When did the castle burn down?", "1650", 2),
                 ("When did the museum open?", "1990", 2)]
    squad = {"data": [{"title": f"T{i}", "paragraphs": [{"context": p, "qas": [
        {"id": f"{i}-{j}", "question": q, "answers": [{"text": a, "answer_start": p.index(a)}]}
        for j, (q, a, k) in enumerate(questions) if k == i]}]} for i, p in enumerate(paragraphs)]}
    for name in data.SQUAD_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(squad), encoding="utf-8")
    selqa = [{"article": "Burg", "question": "When did the castle burn?", "answers": [1],
              "candidates": ["The castle was built in 1200.", "It burned down in 1650.", "A museum opened in 1990."]}]
    for name in data.SELQA_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(selqa), encoding="utf-8")
    german = [{"id": "g1", "question": "Wann fährt der Zug ab?", "answer": "9 Uhr", "context": "Zug\n\n" + paragraphs[1]}]
    for name in data.GERMAN_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(german), encoding="utf-8")


@pytest.mark.model
def test_training_on_a_tiny_slice_writes_an_adapter_that_merges_and_loads(tmp_path: Path, e5):
    from scripts import train_reranker

    corpus = tmp_path / "qa"
    _tiny_corpus(corpus)
    questions, unanswerable, checksums = data.read_sources(corpus)
    assert {q.source for q in questions} == {"new_wiki", "reddit", "amazon", "squad2", "selqa", "germanquad", "germandpr"}
    assert len(checksums) == 8 and not unanswerable
    base = build_tiny_reranker(tmp_path / "tiny")
    out = tmp_path / "adapter"
    assert train_reranker.main(["--data", str(corpus), "--base", str(base), "--out", str(out), "--work", str(tmp_path / "w"),
                                "--questions", "12", "--batch", "4", "--epochs", "1", "--rank", "4", "--alpha", "8",
                                "--log-every", "1", "--passage-share", "0.5"]) == 0
    card = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert card["steps_done"] == card["steps_planned"] >= 3 and len(card["loss_curve"]) == card["steps_done"]
    assert set(card["data"]) == set(checksums) and card["adapter_sha256"] == read_adapter(out)[0]["adapter_sha256"]
    assert list((tmp_path / "w").glob("paragraphs-*.npy")), "the mined embeddings are cached"
    merged = CrossEncoderReranker(build_reranker(base, tmp_path / "merged", adapter=out))
    scores = merged.score("Wann kommt der Zug an?", ["Er kommt um 12 Uhr an.", "Die Fahrt kostet 30 Euro."])
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()


def test_modules_and_from_layer_choose_which_matrices_get_adapters():
    import re

    from qabot.models.reranker_build import LORA_TARGETS
    from scripts.train_reranker import lora_targets

    kinds = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
             "intermediate.dense", "output.dense", "attention.output.LayerNorm", "output.LayerNorm"]
    names = [f"bert.encoder.layer.{i}.{k}" for i in (2, 6, 11) for k in kinds] + ["bert.pooler.dense", "classifier"]

    def adapted(pattern: str) -> set[tuple[int, str]]:
        return {(int(n.split(".")[3]), n.split(".", 4)[4]) for n in names if re.fullmatch(pattern, n)}

    assert lora_targets(0) == LORA_TARGETS  # what the shipped adapter's reranker.json records
    attention, feed_forward = set(kinds[:4]), set(kinds[4:6])
    assert adapted(lora_targets(0)) == {(i, k) for i in (2, 6, 11) for k in attention | feed_forward}
    assert adapted(lora_targets(6)) == {(i, k) for i in (6, 11) for k in attention | feed_forward}
    assert adapted(lora_targets(6, "attention")) == {(i, k) for i in (6, 11) for k in attention}
    assert adapted(lora_targets(0, "feed-forward")) == {(i, k) for i in (2, 6, 11) for k in feed_forward}
