"""Which precision a model runs in: float32, or bfloat16 where the hardware does it.

Precision: "bf16" runs the transformer's weights and matmuls in bfloat16 (Intel AMX /
AVX512-BF16 on CPU), pooling and normalisation stay float32. On multilingual-e5-small and a
2-core Sapphire Rapids it encodes ~3.4x faster than float32 (1.8x and up with other jobs on
the cores), its vectors at cosine >= 0.9999 to the float32 ones (scripts/bench/bench_encode.py). "auto" (the default) takes bf16 where the device does bf16 in
hardware and float32 elsewhere: emulated bf16 would be slower than float32.

``resolve_precision``  "auto"/"fp32"/"bf16" -> what runs, given the hardware
``bf16_supported``     whether a device does bf16 matmuls in hardware
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qabot.errors import ModelError

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
# /proc/cpuinfo flags that mean bfloat16 matmuls run in hardware (AVX512-BF16, AMX)
_CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def resolve_precision(requested: str, *, bf16_ok: bool) -> str:
    """The precision that runs: "fp32" or "bf16".

    "auto" is bf16 when ``bf16_ok`` (the device does bf16 in hardware), else fp32. An
    explicit "bf16" without hardware support falls back to fp32 with a warning: emulated
    bf16 is slower than fp32, the opposite of what was asked for. Raises ModelError on
    anything not in :data:`PRECISIONS`.
    """
    wanted = requested.strip().lower()
    if wanted not in PRECISIONS:
        raise ModelError(f"unknown precision {requested!r}: use one of {', '.join(PRECISIONS)}")
    if wanted == "fp32":
        return "fp32"
    if bf16_ok:
        return "bf16"
    if wanted == "bf16":
        logger.warning("bf16 was asked for, but this device has no bf16 hardware: using fp32")
    return "fp32"


def bf16_supported(device: str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 matmuls in hardware (CPU: AVX512-BF16 or AMX; CUDA: Ampere+)."""
    try:
        import torch
    except ImportError:
        return False
    kind = str(device).split(":", 1)[0]
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    return bool(_cpu_bf16_flags())


def _cpu_bf16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """Which of AVX512-BF16 and AMX this CPU has: torch's own probe (any OS) where this torch
    has one, else the flags in ``cpuinfo`` (Linux)."""
    import torch

    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_bf16": "_is_amx_tile_supported"}
    if all(callable(getattr(torch.cpu, name, None)) for name in probes.values()):
        return frozenset(flag for flag, name in probes.items() if getattr(torch.cpu, name)())
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    flags = next((line.partition(":")[2].split() for line in text.splitlines() if line.startswith("flags")), [])
    return _CPU_BF16_FLAGS & frozenset(flags)


def _transformer_in_bf16(model: Any) -> None:
    """Cast the transformer (the first module) to bfloat16; its token embeddings go back
    to float32, so pooling, normalisation and any later layers run in float32 as before."""
    import torch

    transformer = model[0]
    transformer.to(torch.bfloat16)

    def to_float32(_module: Any, _inputs: Any, output: Any) -> Any:
        # a dict, or in encode() the tokenizer's BatchEncoding (a mapping, not a dict)
        embeddings = output.get("token_embeddings") if isinstance(output, Mapping) else None
        if torch.is_tensor(embeddings) and embeddings.dtype != torch.float32:
            output["token_embeddings"] = embeddings.float()
        return output

    transformer.register_forward_hook(to_float32)
