#!/usr/bin/env python
"""Train qabot's reranker: LoRA + a one-logit head on multilingual-e5-small, from public QA data.

    .venv/bin/python scripts/train_reranker.py [--data ../shared/corpora/qa] [--out qabot/adapters/reranker] \\
        [--questions 12000] [--negatives 3] [--passage-share 0.15] [--loss listwise|bce] [--rank 16] \\
        [--epochs 1] [--max-length 96] [--prefixes] [--seed 13] [--budget-minutes 60] [--work /tmp/qabot-train]

One command, seeded, its inputs checksummed. It reads the QA sets under ``--data`` (never
../shared/eval: XQuAD's articles are dropped by title, see :mod:`qabot.training.reranker_data`), cuts each
paragraph with qabot's own sentence splitter, mines the bi-encoder's nearest wrong paragraphs
for every question (multilingual-e5-small itself, cached in ``--work``), builds groups (the
answering sentence, then the paragraph's other sentences and a sentence of a near-miss
paragraph; for a share of the questions also the paragraph against the near misses), and
trains LoRA adapters on the attention and feed-forward matrices (``--modules``) of every layer
or of the upper ones (``--from-layer``) plus the pooler and a one-logit head, with the word
embeddings frozen, in bf16 where the CPU has it. The loss is listwise (softmax over each
group, the positive first) or binary cross-entropy per pair.

It writes ``adapter.safetensors`` and ``reranker.json`` (what ``qabot model install`` merges
into a CrossEncoder folder, :mod:`qabot.models.reranker_build`) and ``training.json`` (the
card's figures: data and checksums, steps, loss curve, wall time, device) into ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from qabot.config import Settings
from qabot.models.embedding import load_embedder
from qabot.models.provision import default_model_dir, install_model
from qabot.models.reranker_build import ADAPTER_FILE, LORA_TARGETS, save_adapter
from qabot.training.reranker_data import (
    QA,
    Group,
    paragraphs_of,
    passage_group,
    read_sources,
    sample,
    sample_with_share,
    sentence_group,
)

log = logging.getLogger("train_reranker")


def mine_neighbours(questions: list[QA], *, embedder, work: Path, top: int) -> list[list[QA]]:
    """For each question, the ``top`` paragraphs of its own source the bi-encoder ranks highest,
    its own paragraph left out; embeddings cached in ``work`` by the texts' hash."""
    paragraphs = paragraphs_of(questions)
    by_source: dict[str, list[int]] = {}
    for i, p in enumerate(paragraphs):
        by_source.setdefault(p.source, []).append(i)
    texts = [p.paragraph for p in paragraphs]
    pvec = _cached(work, "paragraphs", texts, lambda t: embedder.embed_passages(t))
    qvec = _cached(work, "questions", [q.question for q in questions], lambda t: embedder.embed_queries(t))
    out = []
    for qa, vector in zip(questions, qvec):
        pool = by_source[qa.source]
        scores = pvec[pool] @ vector
        order = np.argsort(-scores)
        picked = [paragraphs[pool[j]] for j in order[: top + 1] if paragraphs[pool[j]].paragraph != qa.paragraph]
        out.append(picked[:top])
    return out


def _cached(work: Path, name: str, texts: list[str], embed) -> np.ndarray:
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = work / f"{name}-{key}.npy"
    if path.is_file():
        return np.load(path)
    started = time.monotonic()
    vectors = np.concatenate([embed(texts[i : i + 256]) for i in range(0, len(texts), 256)]).astype(np.float32)
    log.info("embedded %d %s in %.0f s", len(texts), name, time.monotonic() - started)
    work.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def build_groups(questions: list[QA], neighbours: list[list[QA]], *, negatives: int, passage_share: float,
                 seed: int) -> list[Group]:
    rng = random.Random(seed)
    groups = []
    for qa, near in zip(questions, neighbours):
        g = sentence_group(qa, negatives=negatives, other_paragraphs=near, rng=rng)
        if g is not None:
            groups.append(g)
        if rng.random() < passage_share:
            p = passage_group(qa, other_paragraphs=near, negatives=negatives)
            if p is not None:
                groups.append(p)
    rng.shuffle(groups)
    return groups


# Which of a layer's matrices get adapters (--modules); "all" gives LORA_TARGETS.
ATTENTION, FEED_FORWARD = r"attention\.self\.(query|key|value)|attention\.output\.dense", r"intermediate\.dense|output\.dense"
MODULES = {"all": f"{ATTENTION}|{FEED_FORWARD}", "attention": ATTENTION, "feed-forward": FEED_FORWARD}


def lora_targets(from_layer: int, modules: str = "all") -> str:
    """The adapted matrices: every layer's (LORA_TARGETS), or only those of layers ``from_layer`` and up
    (the backward pass then stops there: cheaper, and the lower layers' cross-lingual alignment stays),
    and of each layer only the attention or the feed-forward matrices when ``modules`` says so."""
    targets = rf".*encoder\.layer\.\d+\.({MODULES[modules]})"
    if from_layer <= 0:
        return targets
    layers = "|".join(str(i) for i in range(from_layer, 64))
    return targets.replace(r"layer\.\d+\.", rf"layer\.({layers})\.")


def make_model(base: Path, *, rank: int, alpha: int, dropout: float, seed: int, targets: str = LORA_TARGETS):
    """A CrossEncoder on ``base`` (one logit) with LoRA on every layer; (cross_encoder, peft_model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    ce = CrossEncoder(str(base), num_labels=1, device="cpu", local_files_only=True)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                        modules_to_save=["pooler", "classifier"], bias="none")
    model = get_peft_model(ce.model, config)
    return ce, model


def train(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    started = time.monotonic()
    questions, unanswerable, checksums = read_sources(args.data)
    log.info("read %d questions (%d unanswerable kept apart)", len(questions), len(unanswerable))
    caps = {"reddit": args.questions // 5, "amazon": args.questions // 5}
    if args.german_share is None:
        chosen = sample(questions, args.questions, seed=args.seed, per_source=caps)
    else:
        chosen = sample_with_share(questions, args.questions, seed=args.seed, language="de", share=args.german_share,
                                   per_source=caps)
    cache = Settings.load().model_cache_dir  # QABOT_CACHE_DIR, as qabot itself reads it
    base = args.base if args.base is not None else install_model(default_model_dir(cache))
    embedder = load_embedder("multilingual-e5-small", cache_dir=cache, precision="auto")
    neighbours = mine_neighbours(chosen, embedder=embedder, work=args.work, top=3)
    del embedder
    groups = build_groups(chosen, neighbours, negatives=args.negatives, passage_share=args.passage_share, seed=args.seed)
    kinds = {k: sum(g.kind == k for g in groups) for k in ("sentence", "passage")}
    log.info("%d groups %s from %d questions; %.0f s so far", len(groups), kinds, len(chosen), time.monotonic() - started)

    ce, model = make_model(base, rank=args.rank, alpha=args.alpha, dropout=args.dropout, seed=args.seed,
                           targets=lora_targets(args.from_layer, args.modules))
    tokenizer = ce.tokenizer
    bf16 = args.precision == "bf16" or (args.precision == "auto" and _cpu_bf16())
    trainable = [p for p in model.parameters() if p.requires_grad]
    # Mixed precision by hand: the model (frozen weights and adapters) runs in bf16, which is
    # ~1.8x faster on AMX than autocast over float32 weights (measured, 2 cores); the optimiser
    # keeps float32 master copies of the adapter and head and writes them back each step.
    master = [p.detach().float().clone().requires_grad_(True) for p in trainable]
    if bf16:
        model.to(torch.bfloat16)
    optimiser = torch.optim.AdamW(master, lr=args.lr, weight_decay=0.01)
    steps = math.ceil(len(groups) * args.epochs / args.batch)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(1, steps - warmup)))
    model.eval()  # no dropout: one pass over the data, and dropout costs time on the CPU
    curve, losses, pairs_seen = [], [], 0
    train_started = time.monotonic()
    deadline = train_started + args.budget_minutes * 60
    step = 0
    for step in range(steps):
        batch = [groups[(step * args.batch + i) % len(groups)] for i in range(args.batch)]
        loss = _batch_loss(model, tokenizer, batch, args)
        loss.backward()
        for m, p in zip(master, trainable):
            m.grad = p.grad.float() if p.grad is not None else torch.zeros_like(m)
            p.grad = None
        torch.nn.utils.clip_grad_norm_(master, 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad(set_to_none=True)
        with torch.no_grad():
            for m, p in zip(master, trainable):
                p.copy_(m)
        losses.append(loss.item())
        pairs_seen += sum(len(g.texts) for g in batch)
        if (step + 1) % args.log_every == 0 or step == steps - 1:
            elapsed = time.monotonic() - train_started
            curve.append({"step": step + 1, "loss": round(float(np.mean(losses[-args.log_every:])), 4),
                          "pairs_per_s": round(pairs_seen / elapsed, 1)})
            log.info("step %d/%d loss %.4f (%.1f pairs/s)", step + 1, steps, curve[-1]["loss"], curve[-1]["pairs_per_s"])
        if time.monotonic() > deadline:
            log.warning("time budget reached at step %d of %d", step + 1, steps)
            break
    model.float()
    with torch.no_grad():
        for m, p in zip(master, trainable):
            p.copy_(m)
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    config = save_adapter(model, args.out, rank=args.rank, alpha=args.alpha, max_length=args.max_length,
                          prefixes=args.prefixes, targets=lora_targets(args.from_layer, args.modules))
    card = {
        "command": " ".join(sys.argv), "seed": args.seed, "data": checksums,
        "questions_read": len(questions), "questions_used": len(chosen),
        "questions_by_language": dict(Counter(q.language for q in chosen)),
        "questions_by_source": dict(Counter(q.source for q in chosen)), "groups": kinds,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "steps_done": step + 1, "steps_planned": steps, "pairs_seen": pairs_seen, "loss_curve": curve,
        "wall_seconds": round(time.monotonic() - started, 1), "train_seconds": round(time.monotonic() - train_started, 1),
        "device": f"cpu ({platform.processor() or platform.machine()}, {args.threads} threads, {'bf16' if bf16 else 'fp32'})",
        "adapter_sha256": config["adapter_sha256"],
    }
    (args.out / "training.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s (%d bytes) in %.0f s", args.out / ADAPTER_FILE, (args.out / ADAPTER_FILE).stat().st_size,
             time.monotonic() - started)
    return card


def _batch_loss(model, tokenizer, batch: list[Group], args: argparse.Namespace):
    import torch

    total = []
    for kind in ("sentence", "passage"):
        part = [g for g in batch if g.kind == kind]
        if not part:
            continue
        length = args.max_length if kind == "sentence" else args.passage_length
        qs = [g.question for g in part for _ in g.texts]
        ts = [t for g in part for t in g.texts]
        enc = tokenizer([f"query: {q}" if args.prefixes else q for q in qs],
                        [f"passage: {t}" if args.prefixes else t for t in ts],
                        truncation="longest_first", max_length=length)
        # Pairs sorted by length and run in slices, each padded to its own longest: less padding
        # than one batch padded to the longest pair.
        order = sorted(range(len(ts)), key=lambda i: len(enc["input_ids"][i]))
        parts = []
        for lo in range(0, len(order), args.slice):
            rows = order[lo : lo + args.slice]
            padded = tokenizer.pad({k: [enc[k][i] for i in rows] for k in enc}, return_tensors="pt")
            parts.append(model(**padded).logits.float().reshape(-1))
        logits = torch.cat(parts)[torch.argsort(torch.tensor(order))]
        sizes = [len(g.texts) for g in part]
        pieces = torch.split(logits, sizes)
        for piece in pieces:
            if args.loss == "listwise":
                total.append(-torch.log_softmax(piece, dim=0)[0])
            else:
                labels = torch.zeros_like(piece)
                labels[0] = 1.0
                total.append(torch.nn.functional.binary_cross_entropy_with_logits(piece, labels))
    return torch.stack(total).mean()


def _cpu_bf16() -> bool:
    from qabot.models.precision import bf16_supported

    return bf16_supported("cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/corpora/qa")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "qabot/adapters/reranker")
    parser.add_argument("--base", type=Path, help="the model folder to adapt (default: multilingual-e5-small, built if missing)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/qabot-train"), help="cache of mined embeddings")
    parser.add_argument("--questions", type=int, default=12000)
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--passage-share", type=float, default=0.15)
    parser.add_argument("--german-share", type=float, default=None,
                        help="German questions as this share of --questions, oversampled when there are too few "
                             "(0: none; default: drawn like the rest)")
    parser.add_argument("--loss", choices=("listwise", "bce"), default="listwise")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--from-layer", type=int, default=0, help="adapt only layers N and up (0: all)")
    parser.add_argument("--modules", choices=tuple(MODULES), default="all",
                        help="which matrices of a layer get adapters (default: attention and feed-forward)")
    parser.add_argument("--alpha", type=int, default=32)
    parser.add_argument("--dropout", type=float, default=0.0, help="LoRA dropout (0: measured 1.6x faster)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch", type=int, default=16, help="groups per step")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=96, help="tokens per (question, sentence) pair")
    parser.add_argument("--passage-length", type=int, default=192, help="tokens per (question, passage) pair")
    parser.add_argument("--prefixes", action="store_true", help="e5's 'query: '/'passage: ' before the two texts")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--budget-minutes", type=float, default=120.0, help="stop training (and save) after this long")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--slice", type=int, default=16, help="pairs per forward pass (sorted by length)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
