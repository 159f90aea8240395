"""On CUDA the torch backend keeps the load's peak as a fact and frees what quantization left behind."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_release_load_memory_keeps_the_peak_then_empties_the_cache_and_resets_it(monkeypatch):
    import torch

    from quantscope.backends.torch.backend import release_load_memory

    calls = []
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: calls.append("peak") or 19 << 30)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: calls.append("reset"))
    assert release_load_memory() == {"load_peak_gpu_bytes": 19 << 30}
    assert calls == ["peak", "empty", "reset"]  # the peak is read before the counters restart
