"""GEMM throughput of this machine per dtype through torch: fp32, bf16 and int8 (`torch._int_mm`).

The compute roof of `local` (the catalog's peaks for GPUs come from datasheets). An (M x K) @ (K x N)
matmul does 2*M*N*K operations (one multiply and one add per inner-product term, the convention of
every FLOPS datasheet and of nanoGPT's estimate_mfu). Each dtype is timed at three shapes whose
operands stay in cache: a decode step's matrix-vector product (M = 1), a prompt's (M = 128) and a
square one (M = K = N = 1024); the dtype's peak is the best of them. One square shape is not the
roof of the others, and the product is F.linear's (x @ W^T with W stored [out, in], as every nn.Linear
runs it), not `a @ b`: on an AVX2 CPU without AVX512-BF16 torch's bf16 `a @ b` ran 0.8-0.9 GFLOP/s at
every M while its decode of the bundled model computed ~4.3 GFLOP/s, so that figure made every bf16
decode look compute-bound, projected 5x too slow. Best of `reps`
after an untimed warm-up, each timing long enough for the clock (repeated to >= 20 ms); the result is
checked against a float64 product so a broken kernel cannot pass. Cached per machine and thread
count beside the bandwidth figure, with the same lock and the same refusal to keep a measurement
disturbed by other work (bandwidth.py); a cache written by another method is measured again.

>>> g = measure_gemm(threads=1, size=128, reps=1)  # doctest: +SKIP
>>> sorted(g["flops"])  # doctest: +SKIP
['bf16', 'fp32', 'int8']
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import time
from typing import Any

from quantscope import paths
from quantscope.errors import UserError

SIZE = 1024
REPS = 5
DTYPES = ("fp32", "bf16", "int8")
ROWS = (1, 128, SIZE)  # M of the (M x SIZE) @ (SIZE x SIZE) products: decode, prompt, square
MIN_TIMED_S = 0.02
METHOD = (f"torch linear (M x {SIZE}) @ ({SIZE} x {SIZE})^T, M in {ROWS}: best shape, best of {REPS} after a "
          "warm-up, 2*M*N*K operations; int8 via torch._int_mm")


def gemm_flops(m: int, n: int, k: int) -> int:
    """Operations of an (m x k) @ (k x n) product: 2 m n k (a multiply and an add per term)."""
    return 2 * m * n * k


def _one(dtype: str, m: int, size: int, reps: int) -> tuple[float, float]:
    """(best seconds of one product, max relative error vs float64) for one dtype and (m x size) @ (size x size)."""
    import torch

    g = torch.Generator().manual_seed(0)
    if dtype == "int8":
        a = torch.randint(-8, 8, (m, size), dtype=torch.int8, generator=g)
        b = torch.randint(-8, 8, (size, size), dtype=torch.int8, generator=g)

        def fn():
            return torch._int_mm(a, b)
    else:
        tdt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        a = torch.randn(m, size, generator=g).to(tdt)
        w = torch.randn(size, size, generator=g).to(tdt)  # [out, in], as nn.Linear keeps it
        b = w.t()

        def fn():
            return torch.nn.functional.linear(a, w)  # a model's matmul: x @ W^T, another kernel than a @ b
    t0 = time.perf_counter()
    out = fn()  # warm-up: thread pool start, first-touch of the output
    inner = max(1, int(MIN_TIMED_S / max(time.perf_counter() - t0, 1e-7)))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            out = fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    ref = a.double() @ b.double()
    err = float((out.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
    return best, err


# Tolerances: int8 products are exact in int32; bf16 keeps 8 mantissa bits of each input.
TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2, "int8": 0.0}


def measure_gemm(threads: int, size: int = SIZE, reps: int = REPS, dtypes: tuple[str, ...] = DTYPES) -> dict[str, Any]:
    """FLOP/s per dtype with `threads` torch threads; a dtype torch cannot run here is left out with why."""
    import torch

    if threads < 1:
        raise UserError(f"GEMM threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    flops: dict[str, float] = {}
    by_shape: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    try:
        for dtype in dtypes:
            for m in sorted({min(r, size) for r in ROWS}):
                try:
                    seconds, err = _one(dtype, m, size, reps)
                except (RuntimeError, NotImplementedError) as e:  # e.g. _int_mm without a kernel (for this M) here
                    skipped[f"{dtype} M={m}"] = " ".join(str(e).split())[:200]
                    continue
                if err > TOLERANCE[dtype]:
                    raise RuntimeError(f"GEMM {dtype} M={m} computed wrong values (relative error {err:.2g}): "
                                       "not valid")
                by_shape.setdefault(dtype, {})[f"{m}x{size}x{size}"] = gemm_flops(m, size, size) / seconds
            if dtype in by_shape:
                flops[dtype] = max(by_shape[dtype].values())
    finally:
        torch.set_num_threads(before)
    return {"flops": flops, "by_shape": by_shape, "skipped": skipped, "threads": threads, "size": size,
            "reps": reps, "method": METHOD, "torch": torch.__version__}


def machine_gemm(machine_id: str, threads: int) -> dict[str, Any]:
    """This machine's GEMM throughput: measured once, then read from $XDG_DATA_HOME/quantscope."""
    from quantscope.hardware.bandwidth import _SAFE_ID, data_dir

    if not _SAFE_ID.match(machine_id):
        raise UserError(f"machine id {machine_id!r} is not a short hash: pass EnvFingerprint.machine_id")
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"gemm-{machine_id}-t{threads}.json"
    with open(folder / f".bandwidth-{machine_id}.lock", "w") as lock:  # the same lock: never measure at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            cached = json.loads(path.read_text())
            if cached.get("machine_id") == machine_id and cached.get("flops") and cached.get("method") == METHOD:
                return cached
        except (OSError, ValueError):
            pass
        result = measure_gemm(threads)
        result.update(machine_id=machine_id, measured_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        paths.write_text(path, json.dumps(result, indent=2))  # atomic, and no predictable temp name
        return result
