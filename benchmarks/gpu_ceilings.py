"""This GPU's two ceilings, measured, beside the catalog's datasheet figures for the same GPU.

- Device-memory bandwidth: one large device-to-device copy, counting the bytes read plus written.
- Dense matrix throughput per dtype: fp32 (TF32 off), tf32, fp16, bf16 (torch.matmul), int8
  (torch._int_mm, int32 out) and fp8 e4m3 (torch._scaled_mm, bf16 out), square M = N = K,
  2*M*N*K operations (the datasheets' convention, as hardware/gemm.py for the CPU).

Timed with CUDA events, the median of --reps after --warmup untimed runs (the device notes'
method); inputs are random (a bf16 product on zeros ran 13 % faster on an H200), and each product is
checked on a slice of rows against a float64 product of the same inputs so a broken kernel cannot
pass. The catalog's figures are datasheet peaks (dense); the ratio shows how far the library's
kernels reach them, which is what a roofline's efficiency share stands for.

    python benchmarks/gpu_ceilings.py --out ceilings.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

# rel. error of a slice against float64 that a correct kernel stays under (METHOD.md's bands, widened
# for K = 8192 accumulations; int8 must be exact)
TOLERANCE = {"fp32": 1e-5, "tf32": 5e-3, "fp16": 1e-2, "bf16": 2e-2, "int8": 0.0, "fp8": 2e-2}
CHECK_ROWS = 64


def timed(fn, warmup: int, reps: int) -> list[float]:
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return times


def copy_bandwidth(gib: float, warmup: int, reps: int) -> dict[str, Any]:
    import torch

    n = int(gib * (1 << 30)) // 4
    src = torch.randn(n, device="cuda")
    dst = torch.empty_like(src)
    times = timed(lambda: dst.copy_(src), warmup, reps)
    assert torch.equal(dst[:1024], src[:1024]) and torch.equal(dst[-1024:], src[-1024:])
    moved = 2 * src.numel() * src.element_size()
    return {"bytes_moved": moved, "median_s": statistics.median(times), "min_s": min(times),
            "gbps": moved / statistics.median(times) / 1e9}


def operands(dtype: str, size: int) -> tuple[Any, Any, Any]:
    """(a, b, fn) for one dtype; fn() returns the product."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
    if dtype == "int8":
        a = torch.randint(-64, 64, (size, size), dtype=torch.int8, device="cuda")
        b = torch.randint(-64, 64, (size, size), dtype=torch.int8, device="cuda")
        return a, b, lambda: torch._int_mm(a, b)
    if dtype == "fp8":
        a = torch.randn(size, size, device="cuda").to(torch.float8_e4m3fn)
        b = torch.randn(size, size, device="cuda").to(torch.float8_e4m3fn).t()  # column-major, as cuBLASLt wants
        one = torch.tensor(1.0, device="cuda")
        return a, b, lambda: torch._scaled_mm(a, b, one, one, out_dtype=torch.bfloat16)
    tdt = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    a = torch.randn(size, size, device="cuda", dtype=tdt)
    b = torch.randn(size, size, device="cuda", dtype=tdt)
    return a, b, lambda: torch.matmul(a, b)


def gemm(dtype: str, size: int, warmup: int, reps: int) -> dict[str, Any]:
    import torch

    try:
        a, b, fn = operands(dtype, size)
        out = fn()
    except Exception as exc:  # noqa: BLE001 - an op this torch build or GPU lacks is reported, not fatal
        return {"status": "unsupported", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    ref = a[:CHECK_ROWS].double() @ b.double()
    got = out[:CHECK_ROWS].double()
    err = float((got - ref).norm() / ref.norm())
    times = timed(fn, warmup, reps)
    torch.backends.cuda.matmul.allow_tf32 = False
    flops = 2 * size ** 3
    return {"status": "ok" if err <= TOLERANCE[dtype] else "wrong", "rel_err": err, "size": size,
            "median_s": statistics.median(times), "tflops": flops / statistics.median(times) / 1e12}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--copy-gib", type=float, default=2.0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", help="JSON file for every figure")
    args = ap.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print(f"gpu_ceilings: no CUDA device visible to torch {torch.__version__}", file=sys.stderr)
        return 2
    from quantscope.hardware.catalog import catalog_id_for_gpu, get_hardware

    name = torch.cuda.get_device_name()
    hw_id = catalog_id_for_gpu(name)
    hw = get_hardware(hw_id) if hw_id else None
    result: dict[str, Any] = {"device": name, "catalog_id": hw_id, "torch": torch.__version__,
                              "cuda": torch.version.cuda, "copy": copy_bandwidth(args.copy_gib, args.warmup, args.reps),
                              "gemm": {}}
    for dtype in ("fp32", "tf32", "fp16", "bf16", "int8", "fp8"):
        result["gemm"][dtype] = gemm(dtype, args.size, args.warmup, args.reps)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)

    print(f"{name} (catalog id {hw_id}), torch {torch.__version__}, CUDA {torch.version.cuda}")
    sheet_bw = hw.bandwidth_Bps / 1e9 if hw else None
    bw = result["copy"]["gbps"]
    ratio = f"{bw / sheet_bw:.0%} of the datasheet's {sheet_bw:,.0f}" if sheet_bw else "no catalog figure"
    print(f"copy bandwidth (read + write): {bw:,.0f} GB/s, {ratio}")
    print(f"{'dtype':6} {'status':11} {'TFLOP/s':>9} {'datasheet':>10} {'share':>6} {'rel. err':>9}")
    for dtype, g in result["gemm"].items():
        if g["status"] == "unsupported":
            print(f"{dtype:6} unsupported  {g['reason']}")
            continue
        peak = hw.peak(dtype) if hw else None
        sheet = f"{peak / 1e12:,.0f}" if peak else "-"
        share = f"{g['tflops'] * 1e12 / peak:.0%}" if peak else "-"
        print(f"{dtype:6} {g['status']:11} {g['tflops']:9,.1f} {sheet:>10} {share:>6} {g['rel_err']:9.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
