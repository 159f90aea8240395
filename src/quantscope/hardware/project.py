"""One projection: a configuration's decode and prefill speed, TTFT, memory and fit on a piece of hardware.

Every figure here is projected, never measured: it carries an interval from the calibration's
leave-one-out error, the level of data it rests on, and the assumptions that went into it. It is
never written to the store.

>>> from quantscope.models.shape import model_shape
>>> from quantscope.hardware.catalog import get_hardware
>>> p = project(model_shape("synthetic:llama3-8b"), get_hardware("h200"), "torch", "none", "bf16",
...             calibration=Calibration([]))
>>> p.fits, p.bound, p.projected
(True, 'memory', True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from quantscope.hardware import roofline
from quantscope.hardware.calibrate import LEVEL_TEXT, Calibration, Efficiency, predict_step
from quantscope.hardware.catalog import Hardware
from quantscope.hardware.formats import layout

GEN_TOKENS = 128  # default new tokens held in the KV cache beyond the prompt


@dataclass
class Projection:
    hardware: str
    model: str
    backend: str
    quant: str
    dtype: str
    format: str
    batch: int
    prompt_tokens: int
    context: int
    supported: bool
    reason: str | None = None
    decode_tps: float | None = None
    decode_tps_low: float | None = None
    decode_tps_high: float | None = None
    prefill_tps: float | None = None
    prefill_tps_low: float | None = None
    prefill_tps_high: float | None = None
    ttft_s: float | None = None
    ttft_s_low: float | None = None
    ttft_s_high: float | None = None
    token_latency_s: float | None = None
    memory_bytes: float | None = None
    memory: dict[str, float] = field(default_factory=dict)
    capacity_bytes: float | None = None
    fits: bool | None = None
    bound: str | None = None
    prefill_bound: str | None = None
    bandwidth_share: float | None = None
    compute_share: float | None = None
    calibration_level: int | None = None
    calibration: str | None = None
    cost_per_mtok: float | None = None
    price_per_hour: float | None = None
    notes: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    projected: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _interval(value: float, q: float) -> tuple[float, float]:
    return value * math.exp(-q), value * math.exp(q)


def target_key(hw: Hardware, machine_id: str | None = None) -> str:
    """The calibration key of a hardware: catalog id, or local:<machine id> for this machine."""
    return f"local:{machine_id}" if hw.kind == "cpu" and machine_id else hw.id


def project(shape: Any, hw: Hardware, backend: str, quant: str, dtype: str, params: Any = (), *,
            calibration: Calibration, batch: int = 1, prompt: int = 128, context: int | None = None,
            runtime: str | None = None, machine_id: str | None = None,
            price_per_hour: float | None = None) -> Projection:
    """Project `run --backend B --quant Q --dtype D` of `shape` on `hw` (see the module doc)."""
    context = context or prompt + GEN_TOKENS
    lay = layout(backend, quant, dtype, shape, params)
    p = Projection(hardware=hw.id, model=shape.name, backend=backend, quant=quant, dtype=dtype, format=lay.key,
                   batch=batch,
                   prompt_tokens=prompt, context=context, supported=True, price_per_hour=price_per_hour)
    reason = hw.unsupported(lay.compute)
    if reason:
        p.supported, p.reason = False, f"unsupported: {lay.key} computes in {lay.compute}; {reason}"
        return p
    mem = roofline.memory_needed(shape, lay, batch, prompt, context, hw.reserve_bytes)
    p.memory = {"weights": mem.weights, "kv_cache": mem.kv_cache, "activations": mem.activations,
                "runtime_reserve": mem.reserve}
    p.memory_bytes, p.capacity_bytes = mem.total, hw.memory_bytes
    p.fits = mem.total <= hw.memory_bytes
    if not p.fits:
        p.notes.append(f"does not fit: needs {mem.total / 1e9:.2f} GB, {(mem.total - hw.memory_bytes) / 1e9:.2f} GB "
                       f"more than the {hw.memory_bytes / 1e9:.0f} GB of {hw.id}")
    peak = hw.peak(lay.compute) or hw.peak("fp32") or hw.peak("tf32")
    if hw.kind == "cpu":  # torch-measured peaks bound torch runtimes only (observations.local_peak)
        from quantscope.hardware.observations import local_peak

        peak = local_peak(hw.peak_flops, lay.compute, runtime or backend) or peak
    if hw.kind == "cpu" and not hw.peak(lay.compute):
        p.assumptions.append(f"{lay.compute} GEMM not measured here: fp32's peak is the compute roof")
    eff: Efficiency = calibration.efficiency(target_key(hw, machine_id), hw.kind, runtime or backend, lay.key)
    mean_ctx = (prompt + context) // 2  # decode steps attend to prompt..context tokens: the mean
    dec = predict_step(roofline.decode_bytes(shape, lay, batch, mean_ctx),
                       roofline.decode_flops(shape, batch, mean_ctx), hw.bandwidth_Bps, peak, eff, "decode",
                       shape.layers)
    pre = predict_step(roofline.prefill_bytes(shape, lay, batch, prompt),
                       roofline.prefill_flops(shape, batch, prompt, lay.all_logits), hw.bandwidth_Bps, peak,
                       eff, "prefill", shape.layers)
    p.decode_tps = batch / dec.seconds
    p.decode_tps_low, p.decode_tps_high = _interval(p.decode_tps, eff.q_decode)
    p.token_latency_s = dec.seconds
    p.prefill_tps = batch * prompt / pre.seconds
    p.prefill_tps_low, p.prefill_tps_high = _interval(p.prefill_tps, eff.q_prefill)
    p.ttft_s = pre.seconds
    p.ttft_s_low, p.ttft_s_high = _interval(pre.seconds, eff.q_prefill)
    p.bound, p.prefill_bound = dec.bound, pre.bound
    p.bandwidth_share, p.compute_share = eff.eta, eff.kappa
    p.calibration_level = eff.level
    p.calibration = f"level {eff.level}: {LEVEL_TEXT[eff.level]} (n={eff.n}); prefill level {eff.prefill_level}"
    p.notes += list(eff.notes)
    p.assumptions += [
        f"weights {lay.key}: {lay.linear_bpw:.4g} bytes/weight in block linears ({lay.source})",
        f"KV cache {lay.kv_bytes:g} bytes/value at context {context}; decode at mean context {mean_ctx}",
        f"runtime reserve {hw.reserve_bytes / 2**30:.2g} GiB (assumption, not a datasheet figure)",
        f"bandwidth {hw.bandwidth_Bps / 1e9:.0f} GB/s x share {eff.eta:.2f}; {lay.compute} peak "
        f"{peak / 1e12:.3g} TFLOP/s x share {eff.kappa:.2f}; overhead {eff.decode_overhead_s * 1e3:.2g} ms/layer "
        f"x {shape.layers} layers = {dec.overhead_s * 1e3:.2g} ms/step",
    ]
    if price_per_hour is not None:
        p.cost_per_mtok = price_per_hour / (p.decode_tps * 3600) * 1e6
    return p



def project_results(rows: list[tuple[int, Any]], hw: Hardware, calibration: Calibration,
                    machine_id: str | None = None) -> list[tuple[int, Any, Projection | str]]:
    """Each stored ok run projected onto `hw` with its own model, runtime, format and workload:
    (run id, Result, Projection) or (run id, Result, why it cannot be projected)."""
    from quantscope.errors import QuantscopeError
    from quantscope.hardware.observations import runtime_of
    from quantscope.models.shape import shape_for_spec

    out: list[tuple[int, Any, Projection | str]] = []
    for run_id, r in rows:
        if r.status != "ok":
            continue
        s = r.spec
        try:
            p = project(shape_for_spec(s.model), hw, s.backend, s.quant.method, s.quant.dtype, s.quant.params,
                        calibration=calibration, batch=s.workload.batch, prompt=s.workload.prompt_tokens,
                        context=s.workload.prompt_tokens + s.workload.gen_tokens, runtime=runtime_of(s),
                        machine_id=machine_id)
        except (QuantscopeError, OSError) as e:
            out.append((run_id, r, f"not projected: {e}"))
            continue
        out.append((run_id, r, p))
    return out
