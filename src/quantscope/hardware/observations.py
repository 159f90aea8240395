"""Observations for the calibration (calibrate.py): measured configurations reduced to what the fit needs.

Two sources: the store's ok rows (this machine and any other, keyed by machine id; a GPU run of ours
calibrates that catalog GPU) and hardware/published.toml (GPUs, one cited source per row). A CPU's
GEMM peaks are known only where gemm.py measured them (`cached_peaks`).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from quantscope.hardware import roofline
from quantscope.hardware.formats import layout

NOMINAL_PEAK = 1e12  # stands in for an unknown peak: kappa is then achieved FLOP/s over 1 TFLOP/s


@dataclass(frozen=True)
class Obs:
    """One measured configuration reduced to what the fit needs (SI units)."""

    hw: str  # catalog id, or "local:<machine id>"
    kind: str  # gpu | cpu
    runtime: str
    fmt: str  # formats.Layout.key
    model: str
    batch: int
    prompt: int
    bandwidth_Bps: float
    peak_flops: float
    decode_bytes: float
    decode_flops: float
    prefill_flops: float
    prefill_bytes: float
    decode_tps: float | None
    prefill_tps: float | None
    source: str
    run_id: int | None = None
    measured_weight_bytes: float | None = None
    computed_weight_bytes: float | None = None
    layers: int = 1  # transformer blocks: the per-layer overhead's multiplier

    @property
    def decode_x(self) -> float:
        return self.decode_bytes / self.bandwidth_Bps

    @property
    def decode_s(self) -> float | None:
        return self.batch / self.decode_tps if self.decode_tps else None

    @property
    def prefill_x(self) -> float:
        return self.prefill_flops / self.peak_flops

    @property
    def prefill_s(self) -> float | None:
        return self.batch * self.prompt / self.prefill_tps if self.prefill_tps else None


def runtime_of(spec: Any) -> str:
    """The runtime a stored run measured: its backend, plus +compile when torch.compile was on and
    -no-kv when it ran without a KV cache (ONNX Runtime's kv_cache=false re-reads the whole sequence
    each step: the same bytes of weights, another runtime's cost per step)."""
    return spec.backend + ("+compile" if spec.option("compile") else "") + (
        "-no-kv" if spec.option("kv_cache") is False else "")


def observation(*, hw: str, kind: str, runtime: str, shape: Any, lay: Any, batch: int, prompt: int,
                bandwidth_Bps: float, peak_flops: float | None, decode_tps: float | None,
                prefill_tps: float | None, source: str, **extra: Any) -> Obs:
    context = prompt  # decode steps attend to the prompt plus what was generated; the prompt dominates
    return Obs(
        hw=hw, kind=kind, runtime=runtime, fmt=lay.key, model=shape.name, batch=batch, prompt=prompt,
        bandwidth_Bps=bandwidth_Bps, peak_flops=peak_flops or NOMINAL_PEAK,
        decode_bytes=roofline.decode_bytes(shape, lay, batch, context),
        decode_flops=roofline.decode_flops(shape, batch, context),
        prefill_flops=roofline.prefill_flops(shape, batch, prompt, lay.all_logits),
        prefill_bytes=roofline.prefill_bytes(shape, lay, batch, prompt),
        decode_tps=decode_tps, prefill_tps=prefill_tps, source=source,
        computed_weight_bytes=float(lay.weight_bytes(shape)), layers=shape.layers, **extra,
    )


TORCH_RUNTIMES = ("torch", "torchao", "bnb")  # the ones whose matmuls are the torch kernels gemm.py times


def local_peak(peaks: dict[str, float], compute: str, runtime: str = "torch") -> float | None:
    """This CPU's measured GEMM peak for a compute type; types not measured use fp32's.

    The peaks were measured through torch (matmul, torch._int_mm): they bound torch-based runtimes
    only. ONNX Runtime (MLAS) and llama.cpp (ggml) run their own kernels, so their roof is the best
    peak measured here: on an AVX2 CPU without VNNI torch._int_mm reached a few GFLOP/s while ORT's
    int8 and ggml's quantized dot products are not slower than fp32, and the int8 figure made every
    ORT/ortgenai int8/int4 decode look compute-bound, projected 8-17x too slow."""
    if runtime.split("+")[0].split("-")[0] not in TORCH_RUNTIMES and peaks:
        return max(peaks.values())
    return peaks.get(compute) or peaks.get("fp32")


def store_observations(rows: list[tuple[int, Any]], peaks_by_machine: dict[str, dict[str, float]] | None = None,
                       skipped: list[str] | None = None) -> list[Obs]:
    """Observations from stored (run id, Result) pairs: ok rows with decode samples and a bandwidth figure.

    The machine's read bandwidth travels in the row (bandwidth_fraction's meta); GEMM peaks are known
    only for machines in `peaks_by_machine` (this one), else kappa is relative to NOMINAL_PEAK.
    """
    from quantscope.errors import QuantscopeError
    from quantscope.models.shape import shape_for_spec

    peaks_by_machine = peaks_by_machine or {}
    out: list[Obs] = []
    for run_id, r in rows:
        if r.status != "ok" or r.get("decode_tps") is None:
            continue
        if (r.info.get("contention") or {}).get("flagged"):  # its speed is what other processes left
            if skipped is not None:
                skipped.append(f"run {run_id}: measured while other processes competed (contention flag)")
            continue
        spec = r.spec
        frac = r.get("bandwidth_fraction")
        bw = (frac.meta or {}).get("machine_read_Bps") if frac is not None else None
        hw_id, kind, gpu_peaks = f"local:{r.env.machine_id}", "cpu", None
        if spec.device == "cuda":  # a GPU run of ours calibrates that catalog GPU
            from quantscope.hardware.catalog import catalog_id_for_gpu, get_hardware

            gpu_id = catalog_id_for_gpu(r.env.gpu)
            if gpu_id is not None:
                hw = get_hardware(gpu_id)
                hw_id, kind, bw, gpu_peaks = hw.id, "gpu", hw.bandwidth_Bps, hw.peak_flops
        if not bw:
            if skipped is not None:
                skipped.append(f"run {run_id}: no bandwidth known (device {spec.device}, gpu {r.env.gpu})")
            continue
        try:
            shape = shape_for_spec(spec.model)
            lay = layout(spec.backend, spec.quant.method, spec.quant.dtype, shape, spec.quant.params)
        except (QuantscopeError, OSError, KeyError) as e:
            if skipped is not None:
                skipped.append(f"run {run_id}: {e}")
            continue
        peaks = gpu_peaks or peaks_by_machine.get(r.env.machine_id, {})
        prefill = r.get("prefill_tps")
        wb = r.get("weight_bytes")
        out.append(observation(
            hw=hw_id, kind=kind, runtime=runtime_of(spec), shape=shape, lay=lay,
            batch=spec.workload.batch, prompt=spec.workload.prompt_tokens, bandwidth_Bps=float(bw),
            peak_flops=local_peak(peaks, lay.compute, runtime_of(spec) if gpu_peaks is None else "torch"),
            decode_tps=r.get("decode_tps").value,
            prefill_tps=prefill.value if prefill is not None and prefill.samples else None,
            source=f"store run {run_id}", run_id=run_id,
            measured_weight_bytes=wb.value if wb is not None and wb.samples else None,
        ))
    return out


@functools.cache
def published_rows() -> tuple[dict[str, Any], ...]:
    data = tomllib.loads(resources.files("quantscope.hardware").joinpath("published.toml").read_text())
    sources = data["sources"]
    return tuple({**row, "source_title": sources[row["source"]]["title"], "url": sources[row["source"]]["url"]}
                 for row in data["row"])


def published_observations() -> list[Obs]:
    """Observations from published.toml (decode only: none of the sources times a prefill apart)."""
    from quantscope.hardware.catalog import get_hardware
    from quantscope.models.shape import shape_from_config
    from quantscope.models.synthetic import config_for

    out = []
    for row in published_rows():
        hw = get_hardware(row["hardware"])
        shape = shape_from_config(config_for(row["model"]), row["model"])
        spec = row["layout"]
        lay = layout(spec["backend"], spec["quant"], spec["dtype"], shape, tuple(spec.get("params", {}).items()))
        out.append(observation(
            hw=hw.id, kind="gpu", runtime=row["runtime"], shape=shape, lay=lay, batch=row["batch"],
            prompt=row.get("prompt_tokens", 5), bandwidth_Bps=hw.bandwidth_Bps, peak_flops=hw.peak(lay.compute),
            decode_tps=row["decode_tps"], prefill_tps=None, source=f"{row['source']}: {row['url']}",
        ))
    return out


def cached_peaks(machine_id: str, threads: int) -> dict[str, float]:
    """This machine's GEMM peaks if measured before by gemm.py's current method; {} otherwise (nothing
    measured, or measured by a method whose peaks were wrong: gemm.py's docstring)."""
    import json

    from quantscope.hardware.bandwidth import data_dir
    from quantscope.hardware.gemm import METHOD

    try:
        cached = json.loads((data_dir() / f"gemm-{machine_id}-t{threads}.json").read_text())
        return dict(cached["flops"]) if cached.get("method") == METHOD else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
