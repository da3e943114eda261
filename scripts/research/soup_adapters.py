"""Average reranker adapters into one (a "model soup"): the mean of their LoRA deltas and heads.

    .venv/bin/python -m scripts.research.soup_adapters --out DIR ADAPTER_DIR ADAPTER_DIR [...]

Each ADAPTER_DIR is what ``scripts/train_reranker.py --out`` writes (or qabot/adapters/reranker).
The adapters must share the base model's adapted matrices, pair length and prefixes. The soup's
delta on each matrix is the mean of theirs, ``mean_i(alpha_i / rank_i * B_i @ A_i)``, stored
exactly as one LoRA pair of rank ``sum_i rank_i`` (A stacked, B side by side and scaled), so
``qabot.models.reranker_build.merge`` and ``scripts/research/eval_sentence_choice.py --adapter``
read it like any other; the pooler and the head are the mean of theirs. Measured in
docs/models.md (training the reranker).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qabot.errors import ModelError
from qabot.models.reranker_build import read_adapter, write_adapter

SHARED = ("max_length", "prefixes", "targets")


def soup(adapters: Sequence[tuple[Mapping[str, Any], Mapping[str, np.ndarray]]]) -> tuple[dict[str, np.ndarray], int]:
    """(tensors, rank) of the mean of ``adapters`` ((config, tensors) pairs); scaling alpha / rank = 1.
    ValueError when they adapt different matrices or were trained for different inputs."""
    if len(adapters) < 2:
        raise ValueError("a soup needs at least two adapters")
    first_config, first = adapters[0]
    for config, tensors in adapters[1:]:
        if set(tensors) != set(first):
            raise ValueError("the adapters adapt different matrices (trained with other --modules or --from-layer)")
        for key in SHARED:
            if config.get(key) != first_config.get(key):
                raise ValueError(f"the adapters differ in {key}: {first_config.get(key)!r} vs {config.get(key)!r}")
    n = len(adapters)
    out: dict[str, np.ndarray] = {}
    for name in first:
        if name.endswith(".lora_A"):
            out[name] = np.concatenate([np.asarray(t[name], np.float32) for _, t in adapters], axis=0)
        elif name.endswith(".lora_B"):
            out[name] = np.concatenate([np.asarray(t[name], np.float32) * (float(c["alpha"]) / float(c["rank"]) / n)
                                        for c, t in adapters], axis=1)
        else:
            out[name] = np.mean([np.asarray(t[name], np.float32) for _, t in adapters], axis=0)
    return out, sum(int(c["rank"]) for c, _ in adapters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("adapters", type=Path, nargs="+", help="adapter folders (train_reranker.py --out)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        adapters = [read_adapter(folder) for folder in args.adapters]
        tensors, rank = soup(adapters)
    except (ModelError, ValueError) as exc:  # a damaged or missing adapter; adapters that do not match
        print(f"soup_adapters: {exc}", file=sys.stderr)
        return 2
    config = adapters[0][0]
    written = write_adapter(tensors, args.out, rank=rank, alpha=rank, max_length=int(config["max_length"]),
                            prefixes=bool(config["prefixes"]), targets=str(config["targets"]))
    print(f"wrote {args.out} (rank {rank}, adapter_sha256 {written['adapter_sha256']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
