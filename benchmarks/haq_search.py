"""HAQ-style search on the bundled model (issue 13): the cost table's error, and the "Must show" runs.

    .venv/bin/python benchmarks/haq_search.py table-error            # held-out mixed policies vs the table
    .venv/bin/python benchmarks/haq_search.py must-show --out /tmp/haq  # searches, exports, commands to judge
    .venv/bin/python benchmarks/haq_search.py hardware               # this CPU vs a projected GPU, one budget

table-error: the measured llama.cpp cost table (methods/haq/measure.py: one shape group switched per
file) predicts the decode step of N held-out mixed policies (random per tensor, and by kind), which
are written, timed through llama.cpp here, and compared; it fails (exit 1) above 10 %.
must-show: for each uniform size (q4_0 .. q5_1) and for llama.cpp's own Q4_K_M file size (quantized
by llama.cpp from the same F32 weights), both searches at that weight-byte budget; proxy KLDs are
printed beside the uniform ones, each policy is exported (GGUF + TOML) and the `quantscope run`
commands that judge them with the full quality pass (KLD +- SE, stored) are printed, to run alone.
hardware: the same budget, "as fast as uniform q5_0 on the target", searched with this CPU's measured
table and with a catalog GPU's projected one; both policies and the per-weight costs behind them.
Nothing here runs in parallel (2 cores: FACTS.md).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from quantscope.backends.llamacpp.convert import ensure_gguf
from quantscope.env import fingerprint
from quantscope.methods.haq.export import Quantized, write_policy_gguf
from quantscope.methods.haq.measure import measure_llamacpp_table, time_files
from quantscope.methods.haq.search import Budget, fixed_bytes, policy_bytes
from quantscope.methods.haq.session import SearchRequest, run_search
from quantscope.methods.haq.space import LLAMACPP_FORMATS, layers_from_shape
from quantscope.models import parse_model, resolve
from quantscope.models.materialize import source_digest
from quantscope.models.shape import shape_for_spec

MiB = 2**20


def held_out_policies(layers, n: int, seed: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    out = {f"random {i}": [LLAMACPP_FORMATS[j] for j in rng.integers(len(LLAMACPP_FORMATS), size=len(layers))]
           for i in range(max(n - 2, 0))}
    out["attn q8_0 / ffn q4_0"] = ["q8_0" if lay.kind.startswith("attn") else "q4_0" for lay in layers]
    out["first half f16 / rest q5_1"] = ["f16" if lay.block < layers[-1].block // 2 else "q5_1" for lay in layers]
    return out


def table_error(args) -> int:
    spec = parse_model(args.model)
    art, shape = resolve(spec), shape_for_spec(spec)
    layers = layers_from_shape(shape)
    src, _, _ = ensure_gguf(art, 0, "f32")
    table = measure_llamacpp_table(src, layers, LLAMACPP_FORMATS, machine_id=fingerprint().machine_id,
                                   model_digest=source_digest(art, 0), tokens=args.tokens, reps=args.reps,
                                   refresh=args.refresh, progress=print)
    print(f"table: base {table.base_s * 1e3:.3f} ms/step; {table.notes[0]}")
    for key, row in table.per_tensor_s.items():
        print(f"  {key:>10}: " + ", ".join(f"{f} {v * 1e6:+.2f} us" for f, v in row.items()))
    policies = held_out_policies(layers, args.policies, args.seed)
    cache = Quantized()
    with tempfile.TemporaryDirectory(prefix="haq-bench-") as tmp:
        paths = []
        for i, policy in enumerate(policies.values()):
            paths.append(Path(tmp) / f"p{i}.gguf")
            write_policy_gguf(src, dict(zip([lay.name for lay in layers], policy, strict=True)), "q8_0", paths[-1],
                              cache)
        timed = time_files([str(p) for p in paths], args.tokens, args.reps)
    print(f"\n{'held-out policy':<30} {'predicted ms':>12} {'measured ms':>18} {'error':>7}")
    errors = []
    for (label, policy), t in zip(policies.items(), timed, strict=True):
        pred, meas = table.policy_s(layers, policy), statistics.median(t["step_s"])
        spread = statistics.stdev(t["step_s"]) if len(t["step_s"]) > 1 else 0.0
        errors.append(abs(pred - meas) / meas)
        print(f"{label:<30} {pred * 1e3:>12.3f} {meas * 1e3:>10.3f} ± {spread * 1e3:<5.3f} {errors[-1]:>7.1%}")
    worst = max(errors)
    print(f"\nworst error {worst:.1%} over {len(errors)} held-out policies (limit 10 %): "
          f"{'ok' if worst <= 0.10 else 'FAILED'}")
    return 0 if worst <= 0.10 else 1


def must_show(args) -> int:
    spec = parse_model(args.model)
    art, shape = resolve(spec), shape_for_spec(spec)
    layers = layers_from_shape(shape)
    fixed = fixed_bytes("llamacpp", shape, "q8_0")
    budgets = {f"uniform {f}": policy_bytes("llamacpp", layers, [f] * len(layers), fixed)
               for f in ("q4_1", "q5_0", "q5_1")}  # q4_0 is the cheapest policy: nothing to search
    _, _, meta = ensure_gguf(art, 0, "q4_k_m")  # llama.cpp's own mix, from the same F32 weights
    budgets["q4_k_m file"] = float(meta["weight_bytes"])
    print(f"Q4_K_M (llama.cpp, from the F32 GGUF): {meta['weight_bytes'] / MiB:.2f} MiB of weights, "
          f"types {meta['tensor_types']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commands = [f"quantscope run --model {spec.label} --backend llamacpp --quant q4_k_m",
                *(f"quantscope run --model {spec.label} --backend llamacpp --quant {f}"
                  for f in ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0"))]
    for label, budget in budgets.items():
        for method in ("ilp", "ddpg"):
            path = out / f"{label.replace(' ', '-')}-{method}.gguf"
            rep = run_search(SearchRequest(spec, "llamacpp", Budget("bytes", budget), methods=(method,),
                                           episodes=args.episodes, export=path, measure=False))
            f = rep.found[0]
            same = min(rep.uniform, key=lambda u: abs(u["bytes"] - budget))
            print(f"{label:<14} {method:<4}: proxy KLD {f.proxy_kld:.5f} at {f.weight_bytes / MiB:.2f} MiB "
                  f"(uniform {same['format']}: {same['proxy_kld']:.5f} at {same['bytes'] / MiB:.2f} MiB); "
                  f"{dict(collections.Counter(f.policy))}")
            toml = path.with_suffix(".toml")
            commands.append(f"quantscope run --model {spec.label} --backend llamacpp --policy {toml}")
    print("\nJudge with the full quality pass (one at a time), then `quantscope compare` / `report`:")
    print("\n".join(commands))
    return 0


def hardware(args) -> int:
    spec = parse_model(args.model)
    reports = {}
    for hw in ("local", args.gpu):
        reports[hw] = run_search(SearchRequest(spec, "llamacpp", Budget("latency_of", args.like), hardware=hw,
                                               methods=("ilp",), measure=False))
    for hw, rep in reports.items():
        t = rep.table
        print(f"\n{hw}: {t.provenance} table, base {t.base_s * 1e3:.3f} ms; per-weight cost (ns) by format:")
        for key, row in t.per_tensor_s.items():
            n = int(key.split("x")[0]) * int(key.split("x")[1])
            print(f"  {key:>10}: " + ", ".join(f"{f} {v / n * 1e9:+.4f}" for f, v in row.items()))
        by_kind = collections.defaultdict(collections.Counter)
        for lay, f in zip(rep.layers, rep.found[0].policy, strict=True):
            by_kind[lay.kind][f] += 1
        print(f"  policy (ILP, proxy KLD {rep.found[0].proxy_kld:.5f}): " +
              "; ".join(f"{k}: {dict(c)}" for k, c in by_kind.items()))
    a, b = (reports[h].found[0].policy for h in reports)
    print(f"\nthe two policies differ in {sum(x != y for x, y in zip(a, b, strict=True))} of {len(a)} tensors")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["table-error", "must-show", "hardware"])
    ap.add_argument("--model", default=None, help="default: the bundled SmolLM2-135M")
    ap.add_argument("--policies", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--refresh", action="store_true", help="re-measure the cost table")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--episodes", type=int, default=120)
    ap.add_argument("--out", default="haq-out")
    ap.add_argument("--gpu", default="a100-80gb-sxm")
    ap.add_argument("--like", default="q5_0", help="the budget: as fast as this uniform format on each target")
    args = ap.parse_args()
    return {"table-error": table_error, "must-show": must_show, "hardware": hardware}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
