"""Bytes of a torch module's tensors as they sit in memory (packed data, scales, zero points)."""

from __future__ import annotations

from typing import Any


def tensor_bytes(t: Any, seen: set[int]) -> int:
    """Storage bytes behind `t`, descending into tensor subclasses (torchao's AffineQuantizedTensor and
    friends implement __tensor_flatten__), each storage counted once (tied embeddings share one)."""
    if hasattr(t, "__tensor_flatten__") and type(t).__name__ not in ("Tensor", "Parameter"):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n), seen) for n in names)
    try:
        storage = t.untyped_storage()
    except (RuntimeError, NotImplementedError):  # exotic subclasses without a storage of their own
        return t.numel() * t.element_size()
    ptr = storage.data_ptr()
    if ptr in seen:
        return 0
    seen.add(ptr)
    return storage.nbytes()


def module_weight_bytes(module: Any) -> int:
    """Sum over parameters and buffers, de-duplicated by storage.

    >>> import torch
    >>> module_weight_bytes(torch.nn.Linear(4, 2, bias=False))
    32
    """
    seen: set[int] = set()
    tensors = [p.data if hasattr(p, "data") else p for p in module.parameters()]
    tensors += list(module.buffers())
    return sum(tensor_bytes(t, seen) for t in tensors)
