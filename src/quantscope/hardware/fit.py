"""Memory fit: whether a configuration fits a piece of hardware, and the largest batch x context that does.

Memory (roofline.memory_needed) = weights with their scales + KV cache at the context + prefill
activations + the runtime's reserve. It grows linearly in batch and context, so each limit is found
by bisection.

>>> from quantscope.models.shape import model_shape
>>> from quantscope.hardware.catalog import get_hardware
>>> largest_fit(model_shape("synthetic:llama2-70b"), get_hardware("a100-80gb-sxm"), "torch", "none", "fp16")["fits"]
False
"""

from __future__ import annotations

from typing import Any

from quantscope.hardware import roofline
from quantscope.hardware.catalog import Hardware
from quantscope.hardware.formats import layout
from quantscope.hardware.project import GEN_TOKENS


def largest_fit(shape: Any, hw: Hardware, backend: str, quant: str, dtype: str, params: Any = (), *,
                prompt: int = 128, context: int | None = None, batch: int = 1) -> dict[str, Any]:
    """The largest context at `batch` and the largest batch at `context` that fit in `hw`'s memory.

    Memory grows linearly in both (KV cache, activations), so each bound is found by bisection on
    memory_needed; 0 means not even the smallest case fits.
    """
    context = context or prompt + GEN_TOKENS
    lay = layout(backend, quant, dtype, shape, params)
    reason = hw.unsupported(lay.compute)

    def need(b: int, ctx: int) -> float:
        return roofline.memory_needed(shape, lay, b, min(prompt, ctx), ctx, hw.reserve_bytes).total

    def bisect(f, hi: int) -> int:
        if not f(1):
            return 0
        lo = 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if f(mid) else (lo, mid - 1)
        return lo

    cap = hw.memory_bytes
    limit = shape.max_positions or 1 << 24  # a context beyond the model's positions is not a real option
    context = min(context, limit)
    max_ctx = bisect(lambda c: need(batch, c) <= cap, limit)
    max_batch = bisect(lambda b: need(b, context) <= cap, 1 << 20)
    total = need(batch, context)
    return {"hardware": hw.id, "model": shape.name, "format": lay.key, "supported": reason is None,
            "reason": reason, "memory_bytes": total, "capacity_bytes": cap, "fits": total <= cap and reason is None,
            "weights_bytes": float(lay.weight_bytes(shape)), "max_context_at_batch": max_ctx,
            "batch": batch, "max_batch_at_context": max_batch, "context": context,
            "shortfall_bytes": max(0.0, total - cap), "model_max_positions": shape.max_positions,
            "context_capped_by_model": max_ctx == limit and shape.max_positions is not None}
