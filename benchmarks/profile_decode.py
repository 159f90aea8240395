"""Where does a decode step's time go? torch.profiler over a few greedy steps of one configuration.

Explains rows of the sweep that surprise (on this CPU some int8 paths are slower than FP32): the top
operators by self CPU time per generated token, for each configuration named. On CUDA (--device cuda)
also the GPU's busy time per token (the kernels' own time, summed) and the top kernels: wall time far
above busy time means the step waits on the host (Python, dispatch, launches), not on the GPU.

    .venv/bin/python benchmarks/profile_decode.py torch:fp32 torchao:fp32:int8-dynamic bnb:fp32:int8
    python benchmarks/profile_decode.py --model synthetic:llama-1b --device cuda torch:bf16 torchao:bf16:int8-dynamic
"""

from __future__ import annotations

import argparse
import sys
import time


def device_ms(e) -> float:
    """An event's own device time in ms (torch renamed self_cuda_time_total to self_device_time_total)."""
    return getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)) / 1e3


def profile(backend_name: str, dtype: str, method: str, steps: int, top: int, model: str | None = None,
            device: str = "cpu") -> None:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from quantscope.backends import get_backend
    from quantscope.models import parse_model, resolve
    from quantscope.runner.prompt import prompt_ids
    from quantscope.spec import QualitySpec, QuantSpec, RunSpec

    spec = RunSpec(model=parse_model(model), quant=QuantSpec(dtype=dtype, method=method), backend=backend_name,
                   quality=QualitySpec(enabled=False), device=device)
    backend = get_backend(backend_name)
    reason = backend.supports(spec)
    if reason:
        print(f"{spec.label}: unsupported: {reason}")
        return
    backend.load(spec, resolve(spec.model))
    ids, _ = prompt_ids(backend, spec.workload.prompt_tokens, 1, 0)
    tok = backend.prefill(ids)
    for _ in range(3):  # warm-up steps, not profiled
        tok = backend.decode(tok)
    t0 = time.perf_counter()
    for _ in range(steps):  # the same number of steps without the profiler: its overhead grows with op count
        tok = backend.decode(tok)
    bare = (time.perf_counter() - t0) / steps * 1e3
    t0 = time.perf_counter()
    cuda = device == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            tok = backend.decode(tok)
    wall = time.perf_counter() - t0
    print(f"\n{spec.label}: {wall / steps * 1e3:.1f} ms/token under the profiler, {bare:.1f} without ({steps} steps, "
          f"{torch.get_num_threads()} threads)")
    # Self times exclude children, so their sum is the operators' own time; the rest of the wall is Python
    # between them (modules, tensor-subclass dispatch) and the profiler's own cost.
    own = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e3 / steps
    print(f"operators' own time, summed: {own:.1f} ms/token ({own / (wall / steps * 1e3):.0%} of the profiled wall)")
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    print(f"{'operator':<40} {'self ms/token':>14} {'calls/token':>12}")
    for e in rows:
        print(f"{e.key[:40]:<40} {e.self_cpu_time_total / 1e3 / steps:>14.2f} {e.count / steps:>12.0f}")
    if cuda:
        events = prof.key_averages()
        busy = sum(device_ms(e) for e in events) / steps
        print(f"GPU busy {busy:.2f} ms/token of {wall / steps * 1e3:.1f} ms wall "
              f"({busy / (wall / steps * 1e3):.0%}); top kernels by device time:")
        for e in sorted(events, key=device_ms, reverse=True)[:top]:
            print(f"  {e.key[:60]:<60} {device_ms(e) / steps:>8.3f} ms/token {e.count / steps:>6.0f} calls")
    backend.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", help="backend:dtype[:method], e.g. torchao:fp32:int8-dynamic")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--model", help="as for `quantscope run` (default: the bundled model)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = ap.parse_args()
    for c in args.configs:
        backend, dtype, *rest = c.split(":")
        profile(backend, dtype, rest[0] if rest else "none", args.steps, args.top, args.model, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
