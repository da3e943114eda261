"""The reranker seam: a real CrossEncoder folder made here, loaded through Settings and Retriever.open.

The test models' scores are meaningless (random heads); what is tested is the loading, the
batching, the blend, abstention staying with the bi-encoder, the fallbacks and the added latency.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from qabot.answering import ranking_steps
from qabot.answering.picking import Candidate
from qabot.answering.reranker_blend import RERANKER_WEIGHT, blend_reranker
from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.documents import Passage
from qabot.models.optional import Deadline, SlowModelError
from qabot.models.reranker import CrossEncoderReranker, load_reranker, reranker_for
from tests.conftest import LANDING_SENTENCE
from tests.tiny_models import build_tiny_reranker

QUESTIONS = [
    "When does Putin land in Alaska?", "Wann landet Putin in Alaska?", "Who meets Trump in Anchorage?",
    "What is the capital of Australia?", "Wer hat den Super Bowl gewonnen?",
]


@pytest.fixture(scope="module")
def tiny_reranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_reranker(tmp_path_factory.mktemp("reranker") / "tiny-reranker")


def _passage(i: int, score: float, text: str = "Ein Satz über Alaska und Putin.") -> Passage:
    return Passage(chunk_id=i, article_id=f"a{i}", title="t", date=None, url=None, source=None, text=text,
                   start=0, end=len(text), score=score)


# -- the pure steps -----------------------------------------------------------------------------


def test_blend_weights_the_reranker_by_the_named_constant():
    bi, cross = np.array([0.8, 0.9]), np.array([1.0, 0.0])
    assert np.allclose(blend_reranker(bi, cross), (1 - RERANKER_WEIGHT) * bi + RERANKER_WEIGHT * cross)
    assert np.allclose(blend_reranker(bi, cross, weight=0.0), bi)
    with pytest.raises(ValueError, match="one reranker score per item"):
        blend_reranker(bi, np.array([1.0]))


def test_the_reranker_reorders_passages_but_relevance_stays_the_bi_encoders():
    passages = [_passage(1, 0.85), _passage(2, 0.80)]
    sentences = [Candidate(0, 0, 10, "a"), Candidate(1, 0, 10, "b")]
    similarity = np.array([0.85, 0.80], dtype=np.float32)
    plain = ranking_steps.rerank(passages, sentences, similarity, [], sentence_weight=0.5)
    reranked = ranking_steps.rerank(passages, sentences, similarity, [], sentence_weight=0.5, reranker=np.array([0.1, 0.9]))
    assert plain.order == (0, 1) and reranked.order == (1, 0)
    assert np.array_equal(plain.relevance, reranked.relevance), "abstention must not see the reranker's scale"


# -- the seam -------------------------------------------------------------------------------


def test_a_crossencoder_folder_loads_and_scores_in_batches(tiny_reranker: Path):
    reranker = load_reranker(str(tiny_reranker))
    assert isinstance(reranker, CrossEncoderReranker) and reranker.name == "tiny-reranker"
    texts = [f"Putin landet {'in Alaska ' * (i % 7)}um {i} Uhr." for i in range(37)]
    calls: list[int] = []
    real = reranker._model.predict

    def counting(pairs, **kwargs):
        calls.append(len(pairs))
        return real(pairs, **kwargs)

    reranker._model.predict = counting
    batched = reranker.score("Wann landet Putin?", texts)
    assert calls == [16, 16, 5]
    one_by_one = np.array([reranker.score("Wann landet Putin?", [t])[0] for t in texts])
    assert batched.dtype == np.float32 and batched.shape == (37,)
    assert np.allclose(batched, one_by_one, atol=1e-5), "batches sorted by length come back in input order"
    assert len(set(np.round(batched, 5))) > 1, "a wide head: the scores differ between texts"
    with pytest.raises(SlowModelError):
        reranker.score("q", texts, deadline=Deadline(0.0))


def test_settings_name_the_reranker_and_retriever_open_loads_it(tiny_reranker: Path, sample_index: Path, e5,
                                                                model_cache_dir: Path):
    settings = Settings.from_env({"QABOT_RERANKER": str(tiny_reranker), "QABOT_RERANK_POOL": "7"},
                                 cache_dir=model_cache_dir)
    assert reranker_for(settings) is reranker_for(settings), "loaded once per process"
    with Retriever.open(sample_index, settings=settings, embedder=e5) as retriever:
        assert retriever.reranker is not None and retriever.rerank_pool == 7
        answer = retriever.ask("When does Putin land in Alaska?")
        assert answer.models is not None and answer.models.reranker == "tiny-reranker"
        assert answer.to_dict()["models"]["reranker"] == "tiny-reranker"
        scores = [p.score for p in answer.passages]
        assert scores == sorted(scores, reverse=True)
        assert retriever.search("Alaska Gipfel", k=3)


def test_abstention_with_a_reranker_stays_the_bi_encoder_gate(tiny_reranker: Path, sample_index: Path, e5,
                                                             model_cache_dir: Path):
    settings = Settings(reranker=str(tiny_reranker), cache_dir=model_cache_dir)
    without_reranker = Settings(reranker=None, cache_dir=model_cache_dir)  # the default would be the built-in one
    with Retriever.open(sample_index, settings=without_reranker, embedder=e5) as plain, \
            Retriever.open(sample_index, settings=settings, embedder=e5) as rr:
        assert plain.reranker is None
        for question in QUESTIONS:
            assert rr.ask(question).found == plain.ask(question).found, question
        # what scripts/research/eval_abstention.py compares: the same relevance, and the reranker's best score
        from scripts.research.eval_abstention import signals

        with_reranker, without = signals(rr, QUESTIONS[0]), signals(plain, QUESTIONS[0])
        assert without["reranker"] is None and isinstance(with_reranker["reranker"], float)
        assert with_reranker["relevance"] == pytest.approx(without["relevance"])


def test_a_broken_reranker_folder_falls_back_with_one_log_line(tmp_path: Path, sample_index: Path, e5,
                                                              model_cache_dir: Path, caplog: pytest.LogCaptureFixture):
    broken = tmp_path / "broken-reranker"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    settings = Settings(reranker=str(broken), cache_dir=model_cache_dir)
    caplog.set_level(logging.WARNING)
    with Retriever.open(sample_index, settings=settings, embedder=e5) as first, \
            Retriever.open(sample_index, settings=settings, embedder=e5) as second:
        assert first.reranker is None and second.reranker is None
        answer = second.ask("When does Putin land in Alaska?")
    lines = [r for r in caplog.records if "reranker" in r.getMessage()]
    assert len(lines) == 1 and "broken-reranker" in lines[0].getMessage() and "\n" not in lines[0].getMessage()
    assert answer.sentence == LANDING_SENTENCE and answer.models is not None and answer.models.reranker is None


class Raising:
    """A reranker that fails at question time (a model that breaks after loading)."""

    name = "raising"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, question: str, texts: list[str], *, deadline: Deadline | None = None) -> np.ndarray:
        self.calls += 1
        raise RuntimeError("CUDA out of memory")


def test_a_reranker_raising_or_too_slow_at_question_time_falls_back(tiny_reranker: Path, sample_index: Path, e5,
                                                                    caplog: pytest.LogCaptureFixture):
    from qabot.store import Store

    caplog.set_level(logging.WARNING)
    plain = Retriever(Store.open(sample_index, model=e5.name), e5)
    raising = Raising()
    broken = Retriever(plain.store, e5, reranker=raising)
    slow = Retriever(plain.store, e5, reranker=load_reranker(str(tiny_reranker)), seam_seconds=0.0)
    for question in QUESTIONS[:3]:
        expected = plain.ask(question)
        for retriever in (broken, slow):
            answer = retriever.ask(question)
            assert (answer.sentence, answer.passages) == (expected.sentence, expected.passages)
            assert answer.models is not None and answer.models.reranker is None
    assert raising.calls == 3
    warnings = [r.getMessage() for r in caplog.records if "reranker failed" in r.getMessage()]
    assert len(warnings) == 2, "one line per retriever, not per question"
    assert "CUDA out of memory" in warnings[0] and "longer than 0 s" in warnings[1]
    plain.close()
