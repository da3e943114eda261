#!/usr/bin/env python
"""Time raw encoding of the indexer's chunk texts, one candidate precision/backend against another.

    .venv/bin/python -m scripts.bench.bench_encode [ARCHIVE] [--limit 400] [--rounds 3]
        [--candidates fp32,bf16,bf16-autocast,int8-dynamic,onnx-fp32,onnx-int8]
        [--threads 0,1] [--batch-sizes 16,32,64]

ARCHIVE defaults to ../shared/corpora/10kgnad-test.csv (beside the repository). The texts are
exactly what ``build_index`` embeds: ``iter_articles`` -> ``chunks_for`` (``chunk_article`` with
the configured QABOT_CHUNK_TOKENS/OVERLAP and the model's token limit), the first ``--limit``
chunks, each with the embedder's passage prompt. Candidates:

- ``fp32``: the float32 sentence-transformers model (the baseline);
- ``bf16``: the transformer in bfloat16, pooling in float32 (``QABOT_PRECISION=bf16``);
- ``bf16-autocast``: the float32 model under ``torch.autocast(bfloat16)``;
- ``int8-dynamic``: ``torch.ao.quantization.quantize_dynamic`` of the Linear layers (qint8);
- ``onnx-fp32`` / ``onnx-int8``: the transformer exported with ``torch.onnx.export`` (mean
  pooling and normalisation in the graph), run by ONNX Runtime; int8 is ORT's dynamic
  per-channel quantisation (VNNI kernels). Needs ``onnxruntime`` and ``onnx``; skipped without.

Every configuration (candidate x threads x batch size) runs once per round, all of them back to
back in one process, the order rotated each round; ``ratio_vs_fp32`` is the median over rounds
of the fp32 baseline's time in that same round divided by the candidate's, so load from other
jobs on a shared machine hits both sides of each ratio. ``cos_min``/``cos_mean`` compare each
candidate's vectors with the fp32 baseline's, text by text. Threads 0 means torch's default.
Prints one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from qabot.config import Settings
from qabot.indexer import chunks_for
from qabot.ingest.archive import iter_articles
from qabot.models.embedding import (
    SentenceTransformerEmbedder,
    bf16_supported,
    load_embedder,
)

DEFAULT_ARCHIVE = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "10kgnad-test.csv"
CANDIDATES = ("fp32", "bf16", "bf16-autocast", "int8-dynamic", "onnx-fp32", "onnx-int8")
Encode = Callable[[list[str], int], np.ndarray]  # (passage texts without prompt, batch size) -> vectors


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def chunk_texts(archive: Path, embedder: SentenceTransformerEmbedder, *, limit: int, settings: Settings) -> list[str]:
    """The first ``limit`` chunk texts exactly as the indexer makes them (without the prompt)."""
    texts: list[str] = []
    for article in iter_articles(archive, on_problem=lambda problem: None):
        chunks = chunks_for(article, embedder, chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap)
        texts.extend(chunk.text for chunk in chunks)
        if len(texts) >= limit:
            break
    return texts[:limit]


# ----------------------------------------------------------------------------- candidates


def torch_candidate(folder: Path, *, precision: str) -> Encode:
    embedder = SentenceTransformerEmbedder(folder, precision=precision)
    if embedder.precision != precision:
        raise RuntimeError(f"{precision} is not available here (resolved to {embedder.precision})")
    return lambda texts, batch_size: embedder.embed_passages(texts, batch_size=batch_size)


def autocast_candidate(folder: Path) -> Encode:
    import torch

    embedder = SentenceTransformerEmbedder(folder, precision="fp32")

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            vectors = embedder.embed_passages(texts, batch_size=batch_size)
        return _normalised(vectors)

    return encode


def int8_dynamic_candidate(folder: Path) -> Encode:
    import torch

    embedder = SentenceTransformerEmbedder(folder, precision="fp32")
    transformer = embedder.sentence_transformer[0].auto_model
    torch.ao.quantization.quantize_dynamic(transformer, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return lambda texts, batch_size: embedder.embed_passages(texts, batch_size=batch_size)


class OnnxCandidate:
    """The fp32 model exported once to ONNX (and quantised to int8), run by ONNX Runtime."""

    def __init__(self, folder: Path, workdir: Path) -> None:
        import onnxruntime  # noqa: F401 - fail early (skipped) when it is missing
        import torch

        self.embedder = SentenceTransformerEmbedder(folder, precision="fp32")
        self.paths: dict[str, Path] = {"onnx-fp32": workdir / "model.onnx", "onnx-int8": workdir / "model-int8.onnx"}
        self.export_seconds: dict[str, float] = {}
        self._sessions: dict[tuple[str, int], object] = {}
        transformer = self.embedder.sentence_transformer[0].auto_model.eval()

        class Pooled(torch.nn.Module):
            def __init__(self, bert: torch.nn.Module) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, p=2, dim=1)

        started = time.perf_counter()
        ids = torch.randint(5, 1000, (2, 16))
        with warnings_hidden():
            # the TorchScript exporter: the dynamo one needs onnxscript and gave the same graph
            torch.onnx.export(
                Pooled(transformer).eval(), (ids, torch.ones_like(ids)), str(self.paths["onnx-fp32"]),
                input_names=["input_ids", "attention_mask"], output_names=["embedding"], opset_version=17,
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                              "embedding": {0: "batch"}},
                dynamo=False,
            )
        self.export_seconds["onnx-fp32"] = round(time.perf_counter() - started, 1)

    def quantise(self) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        started = time.perf_counter()
        with warnings_hidden():
            quantize_dynamic(str(self.paths["onnx-fp32"]), str(self.paths["onnx-int8"]),
                             weight_type=QuantType.QInt8, per_channel=True)
        self.export_seconds["onnx-int8"] = round(time.perf_counter() - started, 1)

    def encoder(self, name: str) -> Callable[[list[str], int, int], np.ndarray]:
        def encode(texts: list[str], batch_size: int, threads: int) -> np.ndarray:
            session = self._session(name, threads)
            inputs = [self.embedder.passage_prompt + t for t in texts]
            order = np.argsort([-len(t) for t in inputs], kind="stable")  # like sentence-transformers
            out = np.zeros((len(inputs), self.embedder.dimension), dtype=np.float32)
            tokenizer = self.embedder.sentence_transformer.tokenizer
            for start in range(0, len(inputs), batch_size):
                rows = order[start : start + batch_size]
                enc = tokenizer([inputs[i] for i in rows], padding=True, truncation=True,
                                max_length=self.embedder.max_seq_length, return_tensors="np")
                feed = {"input_ids": enc["input_ids"].astype(np.int64),
                        "attention_mask": enc["attention_mask"].astype(np.int64)}
                out[rows] = session.run(None, feed)[0]
            return out

        return encode

    def _session(self, name: str, threads: int) -> object:
        import onnxruntime as ort

        key = (name, threads)
        if key not in self._sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads  # 0: ORT's default (one per core)
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._sessions[key] = ort.InferenceSession(str(self.paths[name]), options, providers=["CPUExecutionProvider"])
        return self._sessions[key]


@contextlib.contextmanager
def warnings_hidden() -> Iterator[None]:
    import logging
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization warns through the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- timing


def set_threads(threads: int, default: int) -> None:
    import torch

    torch.set_num_threads(threads or default)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path, nargs="?", default=DEFAULT_ARCHIVE, help="archive file or folder")
    parser.add_argument("--limit", type=int, default=400, help="chunks to encode per run (default 400)")
    parser.add_argument("--rounds", type=int, default=3, help="times every configuration runs (default 3)")
    parser.add_argument("--candidates", default="fp32,bf16,bf16-autocast,int8-dynamic,onnx-fp32,onnx-int8",
                        help=f"comma-separated, from {', '.join(CANDIDATES)}")
    parser.add_argument("--threads", default="0", help="comma-separated torch/ORT thread counts; 0 = default")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default: QABOT_BATCH_SIZE)")
    args = parser.parse_args(argv)

    import torch

    settings = Settings.load()
    wanted = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(CANDIDATES))
    if unknown:
        parser.error(f"unknown candidates: {', '.join(unknown)}")
    if "fp32" not in wanted:
        wanted.insert(0, "fp32")  # the baseline every ratio is taken against
    thread_counts = [int(t) for t in args.threads.split(",")]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [settings.batch_size]
    default_threads = torch.get_num_threads()
    baseline = ("fp32", thread_counts[0], batch_sizes[0])

    base = load_embedder(settings.model, cache_dir=settings.model_cache_dir, device="cpu", precision="fp32")
    if not isinstance(base, SentenceTransformerEmbedder):
        parser.error(f"{settings.model} is not a sentence-transformers model")
    folder = _model_folder(base, settings)
    texts = chunk_texts(args.archive, base, limit=args.limit, settings=settings)
    tokens = [base.count_tokens(t) for t in texts]
    say(f"{len(texts)} chunks, {statistics.mean(tokens):.0f} model tokens on average (max {max(tokens)})")

    encoders: dict[str, Callable[[list[str], int, int], np.ndarray]] = {}
    setup_seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    onnx: OnnxCandidate | None = None
    workdir = tempfile.TemporaryDirectory(prefix="qabot-bench-encode-")
    for name in wanted:
        started = time.perf_counter()
        try:
            if name == "fp32":
                encoders[name] = _with_threads(lambda t, b: base.embed_passages(t, batch_size=b), default_threads)
            elif name == "bf16":
                encoders[name] = _with_threads(torch_candidate(folder, precision="bf16"), default_threads)
            elif name == "bf16-autocast":
                encoders[name] = _with_threads(autocast_candidate(folder), default_threads)
            elif name == "int8-dynamic":
                encoders[name] = _with_threads(int8_dynamic_candidate(folder), default_threads)
            else:
                if onnx is None:
                    onnx = OnnxCandidate(folder, Path(workdir.name))
                if name == "onnx-int8":
                    onnx.quantise()
                encoders[name] = onnx.encoder(name)
        except (ImportError, RuntimeError) as exc:
            skipped[name] = " ".join(str(exc).split())[:200]
            say(f"skipped {name}: {skipped[name]}")
            continue
        setup_seconds[name] = round(time.perf_counter() - started, 1)
        say(f"ready: {name} ({setup_seconds[name]}s)")

    configs = [(name, t, b) for name in encoders for t in thread_counts for b in batch_sizes]
    times: dict[tuple[str, int, int], list[float]] = {c: [] for c in configs}
    vectors: dict[tuple[str, int, int], np.ndarray] = {}
    load_start = os.getloadavg()
    with torch.inference_mode():
        for config in configs:  # warm-up: lazy initialisation, oneDNN kernel selection
            name, threads, batch = config
            encoders[name](texts[: batch * 2], batch, threads)
        for round_no in range(args.rounds):
            shift = round_no % len(configs)
            for config in configs[shift:] + configs[:shift]:
                name, threads, batch = config
                started = time.perf_counter()
                out = encoders[name](texts, batch, threads)
                times[config].append(time.perf_counter() - started)
                vectors.setdefault(config, np.asarray(out, dtype=np.float32))
                say(f"round {round_no + 1}: {name} threads={threads or default_threads} batch={batch}: "
                    f"{len(texts) / times[config][-1]:.1f} chunks/s")
    set_threads(0, default_threads)

    reference = vectors[baseline]
    results = []
    for config in configs:
        name, threads, batch = config
        cos = np.sum(vectors[config] * reference, axis=1) / np.linalg.norm(vectors[config], axis=1)
        ratios = [b / c for b, c in zip(times[baseline], times[config])]
        results.append({
            "candidate": name, "threads": threads or default_threads, "batch_size": batch,
            "chunks_per_s": [round(len(texts) / s, 1) for s in times[config]],
            "median_chunks_per_s": round(len(texts) / statistics.median(times[config]), 1),
            "ratio_vs_fp32": round(statistics.median(ratios), 2),
            "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
            "cos_min": round(float(cos.min()), 5), "cos_mean": round(float(cos.mean()), 6),
            "setup_s": setup_seconds.get(name),
        })
    report = {
        "archive": str(args.archive), "chunks": len(texts), "mean_model_tokens": round(statistics.mean(tokens), 1),
        "model": base.name, "chunk_tokens": settings.chunk_tokens, "rounds": args.rounds,
        "baseline": {"candidate": baseline[0], "threads": baseline[1] or default_threads, "batch_size": baseline[2]},
        "cpu": {"cores": os.cpu_count(), "torch_threads_default": default_threads,
                "torch_capability": torch.backends.cpu.get_cpu_capability(), "bf16_hardware": bf16_supported("cpu")},
        "loadavg": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
        "export_s": onnx.export_seconds if onnx else {},
        "results": results, "skipped": skipped,
    }
    print(json.dumps(report, indent=2))
    workdir.cleanup()
    return 0


def _with_threads(encode: Encode, default_threads: int) -> Callable[[list[str], int, int], np.ndarray]:
    def run(texts: list[str], batch_size: int, threads: int) -> np.ndarray:
        set_threads(threads, default_threads)
        return encode(texts, batch_size)

    return run


def _model_folder(embedder: SentenceTransformerEmbedder, settings: Settings) -> Path:
    """The folder the embedder was loaded from, so every candidate loads the same weights."""
    from qabot.models.provision import DEFAULT_MODEL, default_model_dir

    if embedder.name == DEFAULT_MODEL:
        return default_model_dir(settings.model_cache_dir)
    return Path(settings.model)


if __name__ == "__main__":
    raise SystemExit(main())
