"""Bits per layer of the mixed-precision rows (a policy from `quantscope search` or --override/--policy):
each quantized block's weight bits, layer by layer, one line per configuration (HAQ's figure 4)."""

from __future__ import annotations

import re
from typing import Any

from quantscope.report.views import COLORS, empty, figure, register, safe, summaries

LAYER = re.compile(r"(?:^|\.)(?:layers|blk|h|block)\.(\d+)\.")
TORCHAO_BITS = {"int4": 4.0, "int8": 8.0, "float8": 8.0, "intx": None, "w8a8": 8.0, "smoothquant": 8.0}
DTYPE_BITS = {"fp32": 32.0, "bf16": 16.0, "fp16": 16.0}


def llamacpp_bits(type_name: str) -> float | None:
    """Bits per weight of a GGML type, from the gguf package's block sizes (Q4_0: 18 bytes / 32 = 4.5)."""
    import gguf

    try:
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name.upper()]]
    except KeyError:
        return None
    return size * 8 / block


def torchao_bits(described: str, dtype: str) -> float | None:
    if described == "none":
        return DTYPE_BITS.get(dtype)
    m = re.match(r"intx-weight-only\(bits=(\d)", described)
    if m:
        return float(m.group(1))
    return next((b for k, b in TORCHAO_BITS.items() if described.startswith(k)), None)


def layer_bits(s: Any) -> dict[int, float]:
    """Layer index -> mean weight bits of its quantizable tensors, for a policy row; {} otherwise."""
    info, dtype = s.result.info, s.result.spec.quant.dtype
    per: dict[str, float | None] = {}
    if info.get("policy_types"):  # llama.cpp: tensor -> GGML type
        per = {n: llamacpp_bits(t) for n, t in info["policy_types"].items()}
    elif info.get("quant_modules"):  # torchao: module -> config
        per = {n: torchao_bits(v.get("config", ""), dtype) for n, v in info["quant_modules"].items()}
    by_layer: dict[int, list[float]] = {}
    for name, bits in per.items():
        m = LAYER.search(name)
        if m and bits is not None:
            by_layer.setdefault(int(m.group(1)), []).append(bits)
    return {i: sum(v) / len(v) for i, v in sorted(by_layer.items())}


@register("bits-per-layer", "Bits per layer of the mixed-precision configurations",
          "Mean weight bits of each transformer block's quantized tensors (llama.cpp: the GGML type's bits "
          "per weight, scales included; torchao: the config's weight bits), as the policy placed them.",
          applies=lambda s, p: any(layer_bits(x) for x in s))
def bits_per_layer(rows: list[Any], projected=()):
    s = [(x, layer_bits(x)) for x in summaries(rows)]
    s = [(x, b) for x, b in s if b]
    if not s:
        return empty("bits per layer", "no mixed-precision configuration among these rows")
    fig = figure(9, 3.6)
    ax = fig.subplots()
    for k, (x, bits) in enumerate(s):
        ax.step(list(bits), list(bits.values()), where="mid", color=COLORS[k % len(COLORS)], lw=1.8,
                label=f"{safe(x.label)} (run {x.run_id})")
    ax.set_xlabel("transformer block [index]")
    ax.set_ylabel("weight [bits per weight]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig
