"""Every PyTorch, torchao and bitsandbytes configuration on one model, one after another, as a table.

Each configuration goes through `quantscope.runner.run_spec` (its own worker process, the same
timed workload and quality pass as `quantscope run`); the FP32 torch run goes first and its
log-probabilities are the KLD reference of the others. Configurations that cannot run here are
rows too, with the library's reason. Nothing runs in parallel (2 cores: see FACTS.md).

    .venv/bin/python benchmarks/torch_runtimes.py                       # bundled SmolLM2, fp32 + bf16
    .venv/bin/python benchmarks/torch_runtimes.py --quick --only int8   # a smoke test
    .venv/bin/python benchmarks/torch_runtimes.py --compile --store results.db

Columns: decode t/s mean ± sample SD over repetitions, prefill t/s mean, peak RSS of the worker,
weight bytes as loaded (packed data, scales, zero points), mean KLD ± SE against the FP32
reference, same-top-1 rate against the reference.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

MiB = 1 << 20
# Methods measured under torch.compile with --compile: FACTS.md notes torchao's int8 paths are
# slower than FP32 in eager mode here and faster compiled.
COMPILED = {"torch": ["none"], "torchao": ["int8-weight-only", "int8-dynamic"], "bnb": []}
# Extra parameter sets worth their own row (the defaults are always measured).
VARIANTS = {"nf4": [(("double_quant", True),)]}


def configurations(dtypes: list[str], compile_too: bool) -> Iterator[tuple[str, str, str, tuple, tuple]]:
    """(backend, method, dtype, params, options) for every registered torch/torchao/bnb method."""
    from quantscope.methods import method_names

    for dtype in dtypes:
        yield "torch", "none", dtype, (), ()
        for backend in ("torchao", "bnb"):
            for method in method_names(backend):
                for params in [(), *VARIANTS.get(method, [])]:
                    yield backend, method, dtype, params, ()
    if compile_too:
        for backend, methods in COMPILED.items():
            for method in methods:
                for dtype in dtypes:
                    yield backend, method, dtype, (), (("compile", True),)


def fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def row(result: Any, is_reference: bool = False) -> list[str]:
    spec = result.spec
    opts = " ".join(f"{k}={v}" for k, v in spec.options)
    name = f"{spec.backend}/{spec.quant.label}" + (f" {opts}" if opts else "")
    if result.status != "ok":
        return [name, result.status, "", "", "", "", "", "", (result.reason or "").replace("|", "/")[:160]]

    def stats(metric: str):
        m = result.get(metric)
        return m.stats if m else None

    decode, prefill, rss, weights = (stats(n) for n in ("decode_tps", "prefill_tps", "peak_rss_bytes",
                                                         "weight_bytes"))
    kld, top1 = stats("kld"), stats("same_top1")
    return [
        name, "ok",
        f"{fmt(decode.mean, 2)} ± {fmt(decode.sd, 2)} (N={decode.n})" if decode else "–",
        fmt(prefill.mean) if prefill else "–",
        fmt(rss.mean / MiB) if rss else "–",
        fmt(weights.mean / MiB) if weights else "–",
        "reference" if is_reference else f"{kld.mean:.5f} ± {kld.se:.5f}" if kld else "–",
        "reference" if is_reference else f"{100 * top1.mean:.2f} %" if top1 else "–",
        f"compile_s={result.info['compile_s']:.0f}" if "compile_s" in result.info else "",
    ]


HEADER = ["config", "status", "decode t/s ± SD", "prefill t/s", "peak RSS MiB", "weights MiB",
          "KLD ± SE (nat)", "same top-1", "note"]


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="as quantscope run --model (default: the bundled model)")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--compile", action="store_true", help="also measure compiled variants (minutes each)")
    ap.add_argument("--only", default=None, help="run only configurations whose label contains this text")
    ap.add_argument("--quick", action="store_true", help="short workload and quality pass (smoke test)")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per configuration, seconds")
    ap.add_argument("--store", default=None, help="also store every result in this SQLite store")
    args = ap.parse_args()

    from quantscope.models import parse_model
    from quantscope.runner import run_spec
    from quantscope.spec import QualitySpec, QuantSpec, RunSpec, WorkloadSpec

    model = parse_model(args.model)
    workload = WorkloadSpec(prompt_tokens=32, gen_tokens=16, max_reps=3, max_seconds=10) if args.quick \
        else WorkloadSpec()
    quality = QualitySpec(enabled=not args.no_quality and not model.synthetic,
                          max_tokens=1024 if args.quick else QualitySpec().max_tokens)

    def spec_of(backend, method, dtype, params, options):
        return RunSpec(model=model, quant=QuantSpec(dtype=dtype, method=method, params=params),
                       backend=backend, workload=workload, quality=quality, options=options)

    store = None
    if args.store:
        from quantscope.store import Store

        store = Store(args.store)
    reference = spec_of("torch", "none", "fp32", (), ())
    started = time.perf_counter()
    print(f"reference {reference.label} ...", file=sys.stderr, flush=True)
    ref_result = run_spec(reference, args.timeout)
    results = [ref_result]
    ref_file = ref_result.info.get("reference_file") if ref_result.status == "ok" else None
    if quality.enabled and ref_file is None:
        print(f"the FP32 reference did not give a reference file ({ref_result.status}: {ref_result.reason}); "
              "KLD columns stay empty", file=sys.stderr)
    for config in configurations(args.dtypes.split(","), args.compile):
        spec = spec_of(*config)
        if spec == reference or (args.only and args.only not in spec.label):
            continue
        print(f"{spec.label} ...", file=sys.stderr, flush=True)
        result = run_spec(spec, args.timeout, reference_file=ref_file)
        print(f"  {result.status} in {result.duration_s:.0f} s {result.reason or ''}", file=sys.stderr)
        results.append(result)
    if store is not None:
        with store as st:
            for r in results:
                st.add(r)
    recipe = f"{quality.recipe} recipe, {quality.max_tokens} tokens" if quality.enabled else "off"
    print(f"\nModel {model.label}; P={workload.prompt_tokens} G={workload.gen_tokens}; quality {recipe}; "
          f"total {time.perf_counter() - started:.0f} s; KLD and same-top-1 against torch/fp32.\n")
    print(markdown([row(r, is_reference=r is ref_result) for r in results]))
    return 0 if all(r.status in ("ok", "unsupported") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
