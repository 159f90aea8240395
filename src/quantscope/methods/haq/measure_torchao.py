"""Measured cost tables for torchao: each quantized Linear timed alone, through torchao, on this CPU.

A decode step multiplies one token by each weight, so each (shape, format) is timed as that: a
Linear of the shape, quantized by the format's registered handler (methods/torchao_configs.py, the
same code the torchao backend runs), called on a [1, in_features] input; median of `reps` runs of
`calls` calls after a warm-up. int4 weight-only runs in bf16 on CPU (FACTS.md), so its Linear and
input are bf16; the others fp32. base_s is 0: the table holds the Linears' time only (attention,
norms and the output head are not in it), which the search prints beside every latency.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from quantscope.methods.haq.cost import CostTable, shape_key
from quantscope.methods.haq.space import Layer


def _linear(rows: int, cols: int, fmt: str, seed: int) -> tuple[Any, Any]:
    import torch

    from quantscope.methods import config_from_spec, handler_for
    from quantscope.spec import QuantSpec, RunSpec

    torch.manual_seed(seed)
    dtype = torch.bfloat16 if fmt == "int4-weight-only" else torch.float32
    model = torch.nn.Sequential(torch.nn.Linear(cols, rows, bias=False)).to(dtype).eval()
    if fmt != "none":
        quant = QuantSpec(dtype="bf16" if dtype == torch.bfloat16 else "fp32", method=fmt)
        config = config_from_spec(quant, "torchao")
        handler_for(config)(config, model, RunSpec(quant=quant, backend="torchao"),
                           lambda m, _n: isinstance(m, torch.nn.Linear))
    return model, torch.randn(1, cols, dtype=dtype)


def time_linear(rows: int, cols: int, fmt: str, calls: int = 50, reps: int = 5, seed: int = 0) -> list[float]:
    """Seconds per call of one quantized Linear on a one-token input, one value per run."""
    import torch

    model, x = _linear(rows, cols, fmt, seed)
    out = []
    with torch.inference_mode():
        for rep in range(reps + 1):
            start = time.perf_counter()
            for _ in range(calls):
                model(x)
            if rep:  # the first run warms up
                out.append((time.perf_counter() - start) / calls)
    return out


def measure_torchao_table(layers: list[Layer], formats: tuple[str, ...], machine_id: str, calls: int = 50,
                          reps: int = 5, progress: Callable[[str], None] = lambda _s: None) -> CostTable:
    shapes = {shape_key(lay): lay.shape for lay in layers}
    per: dict[str, dict[str, float]] = {}
    samples: dict[str, Any] = {}
    for key, (rows, cols) in shapes.items():
        progress(f"timing torchao Linear {key} in {len(formats)} formats")
        runs = {f: time_linear(rows, cols, f, calls, reps) for f in formats}
        per[key] = {f: statistics.median(v) for f, v in runs.items()}
        samples[key] = runs
    note = (f"measured here through torchao: one quantized Linear per shape on a one-token input, median of "
            f"{reps} x {calls} calls; Linear time only (base_s 0: attention, norms and the head are not in it)")
    return CostTable("torchao", f"local:{machine_id}", "measured", formats, 0.0, per, (note,), {"runs": samples})
