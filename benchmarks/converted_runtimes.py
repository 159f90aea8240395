"""Every ONNX Runtime and llama.cpp configuration on one model, one after another, as a markdown table.

Each configuration goes through `quantscope.runner.run_spec` (its own worker process, the timed
workload and quality pass of `quantscope run`); the FP32 torch run goes first and its
log-probabilities are the KLD reference of all others. Conversions (ONNX export, ORT quantization,
GGUF writing and quantization) are cached, so a second invocation converts nothing; their time is
in the "convert" column, apart from the measurement. Configurations that cannot run here are rows
too, with the library's reason. Nothing runs in parallel (2 cores: FACTS.md).

    .venv/bin/python benchmarks/converted_runtimes.py                  # bundled SmolLM2-135M
    .venv/bin/python benchmarks/converted_runtimes.py --quick --only q8_0
    .venv/bin/python benchmarks/converted_runtimes.py --all-types      # every type llama.cpp offers

Columns: decode t/s mean ± sample SD (N reps), prefill t/s mean, peak RSS of the worker, size of the
file the runtime loads, mean KLD ± SE against torch FP32, same-top-1 rate. Below the table: the
KV-cache speed-up of ORT FP32 (cache / no cache decode t/s) with its 95 % CI.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vs_llama_bench import ratio_ci95  # noqa: E402  (a sibling script, not a package)

MiB = 1 << 20
# llama.cpp types measured by default: the common ones, each family once. --all-types adds the rest
# (the ones needing an importance matrix become "unsupported" rows with llama.cpp's reason).
DEFAULT_TYPES = ["f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_0", "q4_k_m", "q4_0", "iq4_xs", "iq4_nl",
                 "q3_k_m", "q2_k"]
ORT_CONFIGS = [("none", {"kv_cache": True}), ("none", {"kv_cache": False}), ("int8", {}), ("int4", {})]


def configurations(types: list[str], source_is_gguf: bool) -> list[tuple[str, str, dict[str, Any]]]:
    configs = [("ort", method, opts) for method, opts in ORT_CONFIGS]
    if source_is_gguf:
        configs.append(("llamacpp", "none", {}))  # the source file as it is
    configs += [("llamacpp", t, {}) for t in types]
    return configs


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def row(result: Any) -> list[str]:
    spec = result.spec
    opts = " ".join(f"{k}={v}" for k, v in spec.options if k != "n_threads")
    name = f"{spec.backend}/{spec.quant.method}" + (f" {opts}" if opts else "")
    if result.status != "ok":
        return [name, result.status, "", "", "", "", "", "", (result.reason or "").replace("|", "/")[:200]]

    def stats(metric: str):
        m = result.get(metric)
        return m.stats if m else None

    names = ("decode_tps", "prefill_tps", "peak_rss_bytes", "kld", "same_top1")
    decode, prefill, rss, kld, top1 = (stats(n) for n in names)
    # The file the runtime loads (a converted one's size is in info); else the source file's.
    source_file = stats("file_bytes")
    file_bytes = result.info.get("file_bytes") or (source_file.mean if source_file else None)
    convert = result.info.get("convert_s")
    note = ""
    if convert is not None:
        note = f"convert {convert:.1f} s" + (" (cached)" if result.info.get("cache_hit") else "")
    if result.info.get("bits_per_weight_2d"):
        note += f", {result.info['bits_per_weight_2d']} bits/weight"
    return [
        name, "ok",
        f"{fmt(decode.mean, 2)} ± {fmt(decode.sd, 2)} (N={decode.n})" if decode else "–",
        fmt(prefill.mean) if prefill else "–",
        fmt(rss.mean / MiB) if rss else "–",
        fmt(file_bytes / MiB) if file_bytes else "–",
        f"{kld.mean:.5f} ± {kld.se:.5f}" if kld else "–",
        f"{100 * top1.mean:.2f} %" if top1 else "–",
        note,
    ]


HEADER = ["config", "status", "decode t/s ± SD", "prefill t/s", "peak RSS MiB", "file MiB", "KLD ± SE (nat)",
          "same top-1", "note"]


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def kv_speedup(results: list[Any]) -> str:
    """ORT FP32 decode t/s with the KV cache over without it, with the 95 % CI of the ratio."""
    def decode_of(kv: bool):
        for r in results:
            if (r.spec.backend, r.spec.quant.method, r.spec.option("kv_cache", True), r.status) == \
                    ("ort", "none", kv, "ok"):
                return list(r.get("decode_tps").samples)
        return None

    cache, no_cache = decode_of(True), decode_of(False)
    if not cache or not no_cache:
        return "KV-cache speed-up: not measured (an ORT FP32 run did not finish)"
    ratio, lo, hi = ratio_ci95(cache, no_cache)
    return (f"KV-cache speed-up, ORT FP32 decode (cache / no cache; baseline: ort/none kv_cache=False, "
            f"this machine): {ratio:.2f}x (95 % CI {lo:.2f}-{hi:.2f}, "
            f"N={len(cache)} and {len(no_cache)} reps)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="as quantscope run --model (default: the bundled model)")
    ap.add_argument("--threads", type=int, default=None, help="compute threads (default: the runtime's)")
    ap.add_argument("--types", default=",".join(DEFAULT_TYPES), help="llama.cpp types, comma-separated")
    ap.add_argument("--all-types", action="store_true", help="every file type llama.cpp offers")
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
    types = args.types.split(",")
    if args.all_types:
        from quantscope.backends.llamacpp.convert import llama_ftypes

        types += sorted(set(llama_ftypes()) - set(types))
    workload = WorkloadSpec(prompt_tokens=32, gen_tokens=16, max_reps=3, max_seconds=10,
                            threads=args.threads) if args.quick else WorkloadSpec(threads=args.threads)
    quality = QualitySpec(enabled=not args.no_quality and not model.synthetic,
                          max_tokens=1024 if args.quick else QualitySpec().max_tokens)

    def spec_of(backend: str, method: str, opts: dict[str, Any]) -> RunSpec:
        return RunSpec(model=model, quant=QuantSpec(method=method), backend=backend, workload=workload,
                       quality=quality, options=tuple(opts.items()))

    started = time.perf_counter()
    reference = RunSpec(model=model, workload=workload, quality=quality)
    print(f"reference {reference.label} ...", file=sys.stderr, flush=True)
    ref_result = run_spec(reference, args.timeout)
    ref_file = ref_result.info.get("reference_file") if ref_result.status == "ok" else None
    if quality.enabled and ref_file is None:
        print(f"the FP32 reference gave no reference file ({ref_result.status}: {ref_result.reason}); "
              "KLD columns stay empty", file=sys.stderr)
    results = [ref_result]
    for backend, method, opts in configurations(types, model.source in ("gguf", "bundled")):
        spec = spec_of(backend, method, opts)
        if args.only and args.only not in spec.label:
            continue
        print(f"{spec.label} ...", file=sys.stderr, flush=True)
        result = run_spec(spec, args.timeout, reference_file=ref_file)
        print(f"  {result.status} in {result.duration_s:.0f} s {result.reason or ''}", file=sys.stderr,
              flush=True)
        results.append(result)
    if args.store:
        from quantscope.store import Store

        with Store(args.store) as st:
            for r in results:
                st.add(r)
    recipe = f"{quality.recipe} recipe, {quality.max_tokens} tokens" if quality.enabled else "off"
    print(f"\nModel {model.label}; P={workload.prompt_tokens} G={workload.gen_tokens}; quality {recipe}; "
          f"total {time.perf_counter() - started:.0f} s; KLD and same-top-1 against torch/fp32.\n")
    print(markdown([row(r) for r in results]))
    print("\n" + kv_speedup(results))
    return 0 if all(r.status in ("ok", "unsupported") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
