"""The roofline per phase: bytes moved, FLOPs, the bound that applies, and memory held.

Each formula is a small function naming its source; hardware peaks come in as arguments (from the
catalog or this machine's microbenchmarks), never as literals. `shape` is a models.shape.ModelShape,
`lay` a formats.Layout.

Roofline (Williams, Waterman & Patterson, "Roofline", CACM 2009): a phase takes
max(bytes / bandwidth, FLOPs / peak); it is compute-bound when its arithmetic intensity FLOPs/byte
exceeds the ridge point peak / bandwidth. Here both roofs are scaled by efficiencies fitted from
measurements (calibrate.py) and a per-step overhead is added (kernel launches, Python).

>>> round(ridge_intensity(312e12, 2.039e12), 1)  # A100-80GB SXM, bf16: FLOPs per byte at the ridge
153.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FP32_LOGITS = 4  # transformers upcasts logits to fp32 (LlamaForCausalLM.forward: logits.float())


def ridge_intensity(peak_flops: float, bandwidth_Bps: float) -> float:
    """FLOPs per byte above which a kernel is compute-bound (Roofline, CACM 2009, fig. 1)."""
    return peak_flops / bandwidth_Bps


def linear_flops(shape: Any, tokens: int, logits_tokens: int | None = None) -> float:
    """2 FLOPs per weight per token for every matmul weight (Kaplan et al. 2020, Table 1: C = 2N).

    `logits_tokens`: positions whose output projection is computed (all, or only the last).
    """
    head = shape.embed_params * (tokens if logits_tokens is None else logits_tokens)
    return 2.0 * (shape.block_linear_params * tokens + head)


def attention_flops(shape: Any, queries: int, context: int, causal: bool = False) -> float:
    """QK^T and (softmax) V: each n_ctx x d_attn multiply-adds per query per layer = 4 n_ctx d_attn FLOPs
    (Kaplan et al. 2020, Table 1 counts 2 n_layer n_ctx d_attn for the QK part alone).

    A causal prefill of P queries over P keys averages P/2 keys per query.
    """
    d_attn = shape.heads * shape.head_dim
    keys = context / 2 if causal else context
    return 4.0 * shape.layers * queries * keys * d_attn


def decode_flops(shape: Any, batch: int, context: int) -> float:
    """One decode step of `batch` sequences each attending to `context` cached tokens."""
    return batch * (linear_flops(shape, 1) + attention_flops(shape, 1, context))


def prefill_flops(shape: Any, batch: int, prompt: int, all_logits: bool) -> float:
    """A prompt of `prompt` tokens in `batch` sequences (causal attention over the prompt)."""
    logits = prompt if all_logits else 1
    return batch * (linear_flops(shape, prompt, logits) + attention_flops(shape, prompt, prompt, causal=True))


def kv_cache_bytes(shape: Any, lay: Any, batch: int, tokens: int) -> float:
    """K and V of every layer for `tokens` positions of `batch` sequences (2 x layers x kv_heads x head_dim)."""
    return float(batch * tokens * shape.kv_bytes_per_token(lay.kv_bytes))


def decode_bytes(shape: Any, lay: Any, batch: int, context: int) -> float:
    """Bytes one decode step moves: the streamed weights once for the whole batch (gpt-fast's
    "memory bandwidth" figure), every sequence's KV cache read, and the new token's K/V written."""
    return lay.streamed_bytes(shape) + kv_cache_bytes(shape, lay, batch, context + 1)


def prefill_bytes(shape: Any, lay: Any, batch: int, prompt: int) -> float:
    """Weights once, plus the prompt's K/V written (activations stay in cache for one layer at a time)."""
    return lay.streamed_bytes(shape) + kv_cache_bytes(shape, lay, batch, prompt)


def activation_bytes(shape: Any, lay: Any, batch: int, prompt: int) -> float:
    """Peak activations of a prefill: one layer's working set alive at a time in inference (hidden in
    and out, q/k/v, the MLP's gate and up outputs), plus the logits (fp32, every position when the
    runtime computes all of them). Compute-dtype bytes; attention scores are not materialised
    (SDPA / flash attention)."""
    d = 4 if lay.compute == "fp32" else 2
    qkv = (shape.heads + 2 * shape.kv_heads) * shape.head_dim
    mlp = (2 if shape.gated else 1) * shape.intermediate
    per_token = d * (2 * shape.hidden + qkv + mlp)
    logits = shape.vocab * FP32_LOGITS * (prompt if lay.all_logits else 1)
    return float(batch * (prompt * per_token + logits))


@dataclass(frozen=True)
class Memory:
    weights: float
    kv_cache: float
    activations: float
    reserve: float

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.activations + self.reserve


def memory_needed(shape: Any, lay: Any, batch: int, prompt: int, context: int, reserve: float) -> Memory:
    """What must fit: weights with scales, the KV cache at the full context, prefill activations,
    and the runtime's own reserve (CUDA context, allocator; an assumption from the catalog)."""
    return Memory(float(lay.weight_bytes(shape)), kv_cache_bytes(shape, lay, batch, context),
                  activation_bytes(shape, lay, batch, prompt), float(reserve))


@dataclass(frozen=True)
class PhaseTime:
    seconds: float
    memory_s: float
    compute_s: float
    overhead_s: float

    @property
    def bound(self) -> str:
        """Which term decides the time: memory, compute, or the per-step overhead."""
        roof = max(self.memory_s, self.compute_s)
        if self.overhead_s > roof:
            return "overhead"
        return "memory" if self.memory_s >= self.compute_s else "compute"


def phase_time(bytes_: float, flops: float, bandwidth_Bps: float, peak_flops: float, bw_share: float,
               compute_share: float, overhead_s: float) -> PhaseTime:
    """Roofline time with achieved shares of each roof: max(bytes/(BW*eta), FLOPs/(peak*kappa)) + overhead."""
    memory_s = bytes_ / (bandwidth_Bps * bw_share)
    compute_s = flops / (peak_flops * compute_share)
    return PhaseTime(max(memory_s, compute_s) + overhead_s, memory_s, compute_s, overhead_s)
