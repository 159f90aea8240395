"""Kernel rates of this machine per torch format: a stack of Linear layers quantized by the format's own
handler (methods/), timed at a decode step's one row and at a prompt's rows.

Why: on a CPU the formats of one runtime differ by their kernels, not their bytes. In the default sweep
here (AMD EPYC Zen 3, AVX2) torchao's float8-weight-only decoded 1.8 tok/s and int4-weight-only 14.6
from fewer bytes than bf16's 15.8: a roofline through bytes alone, fitted on a runtime's other formats,
missed them by -80 % to +300 %. A format's kernel timed on a synthetic stack is to its projection what
the bandwidth microbenchmark is to the whole machine: measured apart from the row it projects, so a
leave-one-out error stays honest. calibrate.py uses the prefill rates (a fitted format's compute share
scaled by the two kernels' rates: default-sweep leave-one-out prefill error 76 % -> 26 %); the decode
rates are kept for the record only, since scaling a whole eager decode step by them was worse than
not (calibrate.Calibration._kernel_kappa says why).

The stack: LAYERS x Linear(SIZE, SIZE) without bias in the spec's dtype, 64 M parameters (256 MB in
fp32, 64 MB in int8: larger than the L3 caches of these CPUs, so weights stream from memory as a
model's do). Decode: one row through the stack, best of REPS timings each >= MIN_TIMED_S; prefill:
PROMPT rows. Rates: weight bytes of the stack (formats.Layout.bytes_per_weight) per decode second,
and 2 * parameters * rows FLOPs per prefill second. Cached per machine, thread count and library
versions beside the GEMM figures; measured only when asked (`projection_error.py --kernels`,
`measure_kernels`), never during a sweep.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import time
from typing import Any

from quantscope import paths
from quantscope.errors import UserError

LAYERS, SIZE, PROMPT, REPS = 16, 2048, 128, 3
MIN_TIMED_S = 0.05
RUNTIMES = ("torch", "torchao")  # formats whose handler quantizes any nn.Module (bnb goes through transformers)
METHOD = (f"{LAYERS} x Linear({SIZE}, {SIZE}) quantized by the format's handler; decode 1 row, prefill "
          f"{PROMPT} rows; best of {REPS}")


def _time(fn: Any) -> float:
    """Best seconds of one call over REPS timings, each repeated to at least MIN_TIMED_S."""
    t0 = time.perf_counter()
    fn()  # warm-up: packing caches, thread pool
    inner = max(1, int(MIN_TIMED_S / max(time.perf_counter() - t0, 1e-7)))
    best = float("inf")
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def measure_format(backend: str, method: str, dtype: str, params: tuple = ()) -> dict[str, Any]:
    """Decode and prefill rates of one format's kernels on the stack (module docstring)."""
    import torch

    from quantscope.hardware.formats import layout
    from quantscope.methods import config_from_spec, handler_for, is_calibrated
    from quantscope.spec import QuantSpec

    if backend not in RUNTIMES:
        raise UserError(f"kernel rates: {backend} is not a torch runtime whose handler quantizes a bare module")
    tdt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    torch.manual_seed(0)
    with torch.no_grad():
        stack = torch.nn.Sequential(*[torch.nn.Linear(SIZE, SIZE, bias=False) for _ in range(LAYERS)]).to(tdt)
        if method != "none":
            config = config_from_spec(QuantSpec(dtype=dtype, method=method, params=tuple(params)), backend)
            if is_calibrated(config):
                raise UserError(f"kernel rates: {method} needs calibration data; not timed on a bare stack")
            handler_for(config)(config, stack, _CpuSpec(), None)
        x1, xp = torch.randn(1, SIZE).to(tdt), torch.randn(PROMPT, SIZE).to(tdt)
        out = stack(x1)
        if not bool(torch.isfinite(out.float()).all()):
            raise RuntimeError(f"kernel rates: {backend}/{method} gave non-finite outputs")
        decode_s = _time(lambda: stack(x1))
        prefill_s = _time(lambda: stack(xp))
    lay = layout(backend, method, dtype, _stack_shape(), tuple(params))
    weights = LAYERS * SIZE * SIZE
    return {"decode_s": decode_s, "prefill_s": prefill_s, "decode_Bps": weights * lay.linear_bpw / decode_s,
            "prefill_flops": 2.0 * weights * PROMPT / prefill_s, "bytes_per_weight": lay.linear_bpw,
            "compute": lay.compute, "runtime": backend}


class _CpuSpec:
    """What a torchao handler reads of a RunSpec: the device (int4's packing follows it)."""

    device = "cpu"


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for lib in ("torch", "torchao"):
        try:
            out[lib] = md.version(lib)
        except md.PackageNotFoundError:
            out[lib] = "absent"
    return out


def machine_kernels(machine_id: str, threads: int, wanted: list[tuple[str, str, str, str, tuple]] = (),
                    measure: bool = False) -> dict[str, dict[str, Any]]:
    """{format key: rates} of this machine from the cache; with `measure`, each (key, backend, method,
    dtype, params) of `wanted` not cached yet is measured (alone: the bandwidth lock) and added. A format
    whose handler fails here is cached with its reason and no rates."""
    import torch

    from quantscope.hardware.bandwidth import _SAFE_ID, data_dir

    if not _SAFE_ID.match(machine_id):
        raise UserError(f"machine id {machine_id!r} is not a short hash: pass EnvFingerprint.machine_id")
    folder = data_dir()
    path = folder / f"kernels-{machine_id}-t{threads}.json"
    stamp = {"method": METHOD, "versions": versions(), "machine_id": machine_id, "threads": threads}
    try:
        cached = json.loads(path.read_text())
        formats = cached["formats"] if all(cached.get(k) == v for k, v in stamp.items()) else {}
    except (OSError, ValueError, KeyError, TypeError):
        formats = {}
    todo = [w for w in wanted if w[0] not in formats]
    if measure and todo:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f".bandwidth-{machine_id}.lock", "w") as lock:  # never beside another microbenchmark
            fcntl.flock(lock, fcntl.LOCK_EX)
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                for key, backend, method, dtype, params in todo:
                    try:
                        formats[key] = measure_format(backend, method, dtype, params)
                    except Exception as e:  # noqa: BLE001 - a kernel that does not run here is a fact to keep
                        formats[key] = {"reason": f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"}
            finally:
                torch.set_num_threads(before)
            stamp["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            paths.write_text(path, json.dumps({**stamp, "formats": formats}, indent=2))
    return {k: v for k, v in formats.items() if "decode_Bps" in v}


def format_key(backend: str, method: str, dtype: str, params: tuple = ()) -> str:
    """The calibration's format key (formats.Layout.key) of a configuration."""
    from quantscope.hardware.formats import layout

    return layout(backend, method, dtype, _stack_shape(), tuple(params)).key


def _stack_shape() -> Any:
    """The stack as a one-layer model shape: what formats.layout needs to give a format's bytes and key."""
    from quantscope.models.shape import shape_from_config

    return shape_from_config({"model_type": "llama", "hidden_size": SIZE, "intermediate_size": SIZE,
                               "num_hidden_layers": 1, "num_attention_heads": 16, "vocab_size": 32}, "stack")


def wanted_from_rows(rows: list[tuple[int, Any]], machine_id: str) -> list[tuple[str, str, str, str, tuple]]:
    """(key, backend, method, dtype, params) of this machine's stored CPU rows of the torch runtimes, once each."""
    out: dict[str, tuple[str, str, str, str, tuple]] = {}
    for _, r in rows:
        s = r.spec
        if r.env.machine_id != machine_id or s.device != "cpu" or s.backend not in RUNTIMES or s.options:
            continue
        key = format_key(s.backend, s.quant.method, s.quant.dtype, s.quant.params)
        out.setdefault(key, (key, s.backend, s.quant.method, s.quant.dtype, tuple(s.quant.params)))
    return list(out.values())


def rates_for_calibration(machine_id: str, threads: int, peaks: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The cached rates of this machine, each with the compute roof its format's prefill share is read
    against (observations.local_peak, as the calibration reads a measured row's)."""
    from quantscope.hardware.observations import local_peak

    out = {}
    for key, r in machine_kernels(machine_id, threads).items():
        peak = local_peak(peaks, r.get("compute", "fp32"), r.get("runtime", "torch")) if peaks else None
        out[key] = {**r, "peak": peak}
    return out
