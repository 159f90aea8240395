"""Where static (per-tensor) W8A8 loses its quality: the same configuration with some Linears left in FP32.

smoothquant_table.py found static per-tensor int8 activations far from FP32 on the bundled model even
with smoothing (PPL ~22 against 11.9), and dynamic per-token ones close. Our smoothing reaches the
norm-fed Linears only (q/k/v, gate/up: the paper's folding); o_proj and down_proj keep their raw
inputs. This script measures how much of the static loss each of those kinds carries: the model with
every Linear W8A8 (as the table), then with o_proj, down_proj, or both left in FP32, for naive `w8a8`
and `smoothquant-w8a8` at one α. It also prints, per Linear kind, how spiky the calibration inputs are
(max |X| over the 99.9th percentile of |X|, the median over layers): a per-tensor scale is max / 127,
so values far under the max round to a few levels.

Quality only, in this process, on the simulated (fake-quant) int8 model (smooth.simulate_w8a8, which a
test holds to the real kernels' error): no speed is measured here. KLD against this process's FP32 pass.

    .venv/bin/python benchmarks/smoothquant_static_where.py                   # bundled model, ~6 min
    .venv/bin/python benchmarks/smoothquant_static_where.py --quality-tokens 256 --alpha 0.5   # quicker
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from smoothquant_table import calibrated, load_fp32, quality_cells  # noqa: E402

KINDS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LEFT_OUT = {"none": (), "o_proj": ("o_proj",), "down_proj": ("down_proj",), "o_proj and down_proj":
            ("o_proj", "down_proj")}


def spikiness(fp32: Any, config: Any) -> dict[str, tuple[float, float]]:
    """Linear kind -> (median over layers of max|X|, of max|X| / 99.9th percentile |X|) on the calibration input.
    Its own hooks: smooth.Observer keeps per-channel maxima, not the values a percentile needs."""
    import torch

    from quantscope.methods.torchao_configs import _filter

    keep, seen, hooks = _filter(fp32.model, config), {}, []
    for name, m in fp32.model.named_modules():
        if keep(m, name):
            def hook(_m: Any, args: tuple, name: str = name) -> None:
                seen.setdefault(name, []).append(args[0].detach().abs().flatten().float())
            hooks.append(m.register_forward_pre_hook(hook))
    calibrated(fp32, config, lambda step: None)
    for h in hooks:
        h.remove()
    out = {}
    for kind in KINDS:
        rows = []
        for name, xs in seen.items():
            if name.endswith(kind):
                # torch.quantile takes at most 2**24 values: the percentile is of the first 1M (the first
                # calibration samples' worth; all of them for this model's q/k/v, o and gate/up inputs)
                x = torch.cat(xs)
                rows.append((float(x.max()), float(x.max() / torch.quantile(x[:1_000_000], 0.999))))
        if rows:
            out[kind] = (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
    return out


def quantized(fp32: Any, spec: Any, left_out: tuple[str, ...]) -> Any:
    """A copy of fp32 with spec's W8A8 simulated on every Linear but lm_head and those named in left_out."""
    from quantscope.methods import config_from_spec, handler_for
    from quantscope.methods.torchao_configs import _filter

    backend, config = copy.deepcopy(fp32), config_from_spec(spec.quant, "torchao")
    handler, base = handler_for(config), _filter(backend.model, config)

    def select(module: Any, name: str) -> bool:
        return base(module, name) and not any(name.endswith(kind) for kind in left_out)

    def apply(step: str) -> None:
        if step == "prepare":
            handler.prepare(config, backend.model, spec, select)
        else:
            handler.convert_simulated(config, backend.model, select)

    calibrated(backend, config, apply)
    return backend


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="as quantscope run --model (default: the bundled model)")
    ap.add_argument("--alpha", default="0.5", help="smoothquant-w8a8's α (a number in [0, 1] or auto)")
    ap.add_argument("--quality-tokens", type=int, default=2048, help="scored tokens of each quality pass")
    args = ap.parse_args()

    from quantscope.errors import UserError
    from quantscope.methods import config_from_spec
    from quantscope.models import parse_model
    from quantscope.quality import run_quality
    from quantscope.spec import QualitySpec, QuantSpec, RunSpec

    started = time.perf_counter()
    try:
        model = parse_model(args.model)
        quality = QualitySpec(max_tokens=args.quality_tokens)
        specs = [RunSpec(model=model, backend="torchao", quality=quality, quant=QuantSpec(
            method=method, params=params + (("activation", "static"),)))
            for method, params in (("w8a8", ()), ("smoothquant-w8a8", (("alpha", args.alpha),)))]
        configs = [config_from_spec(s.quant, "torchao") for s in specs]  # refuses a bad α before any work
        fp32 = load_fp32(model)
    except (UserError, ValueError) as e:
        print(f"smoothquant_static_where: error: {e}", file=sys.stderr)
        return 2
    spiky = spikiness(fp32, configs[0])  # its hooks are removed: fp32 is left as it was
    fp32_ms, reference = run_quality(fp32, quality, model_digest="", tokenizer_name="")
    fp32_ppl = quality_cells({m.name: m for m in fp32_ms}, True)[0]
    rows = []
    for spec in specs:
        for label, left_out in LEFT_OUT.items():
            backend = quantized(fp32, spec, left_out)
            ms, _ = run_quality(backend, quality, model_digest="", tokenizer_name="", reference=reference)
            rows.append([spec.quant.label, label, *quality_cells({m.name: m for m in ms}, False)])
            print("  | " + " | ".join(rows[-1]) + " |", file=sys.stderr, flush=True)
    print(f"\nModel {model.label}; activations int8 per tensor, static; quality {quality.recipe} recipe, "
          f"{quality.max_tokens} tokens, simulated int8 (fake-quant), KLD against FP32 in this process; "
          f"total {time.perf_counter() - started:.0f} s.\n")
    print("| Linear kind | max abs X (median over layers) | max / 99.9th pct of abs X |\n|---|---|---|")
    for kind, (amax, ratio) in spiky.items():
        print(f"| {kind} | {amax:,.1f} | {ratio:,.1f} |")
    print("\n| configuration | left in FP32 | PPL ± SE | KLD ± SE (nat) | same top-1 |\n|---|---|---|---|---|")
    print(f"| fp32 (reference) | every Linear | {fp32_ppl} | reference | reference |")
    print("\n".join("| " + " | ".join(r) + " |" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
