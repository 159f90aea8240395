"""SmoothQuant W8A8 on one model: FP32, BF16, naive `w8a8` and `smoothquant-w8a8` at several α, each
with dynamic (per-token) and static (per-tensor) int8 activations, as one table.

Each configuration runs through `quantscope.runner.run_spec` (its own worker, the timed workload and
quality pass of `quantscope run`); the FP32 torch run goes first and is the KLD reference. The int8
rows run torchao's int8 kernels (torch._int_mm on CPU). A configuration whose kernel does not run
here is measured for quality on a simulated (fake-quant) model in this process, and its speed
column says "unsupported" with torchao's reason: a simulated speed is never shown.

--outliers K first writes a function-preserving outlier variant of the model (some channels of each
smoothed norm's weight x K, the matching input columns of the Linears it feeds / K; FP32 logits
checked unchanged) as an HF folder, runs the same table on it through --model, and on the original,
and prints how each configuration's perplexity moved. The paper's claim: naive static W8A8 degrades
strongly there, smoothquant-w8a8 does not (the smoothing scales absorb K exactly).

On a CPU without AVX-512 VNNI (the AMD EPYC machines of FACTS.md) the int8 path is slower than FP32:
profiled on 2026-11-30 (docs/measurements/smoothquant-2026-11-30/profile.txt) a w8a8 decode step took
264 ms against FP32's 152, `torch._int_mm` 47 ms of it and the per-Linear dynamic activation
quantization (choose_qparams, quantize, rounding, dtype copies) most of the rest. The speed columns
still show it as measured; --quality-on simulated then takes the int8 rows' quality
from a fake-quant model in this process (torchao's rounding, smooth.simulate_w8a8) instead of hours of
int8 prefill, and says so in the row.

--cross-check also compares ours with torchao's prototype SmoothQuantConfig (scale kept per Linear,
applied to the activation at run time) at the same α, dynamic activations, same calibration tokens:
quality only, in this process.

    .venv/bin/python benchmarks/smoothquant_table.py                          # the full table (~1 h)
    .venv/bin/python benchmarks/smoothquant_table.py --outliers 64 --cross-check
    .venv/bin/python benchmarks/smoothquant_table.py --quick --gen-tokens 4 --prompt-tokens 8 --alphas 0.5 \\
        --activations static --only activation=static --quality-tokens 256 --quality-on simulated \\
        --cross-check                                                         # a smoke test
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

MiB = 1 << 20
HEADER = ["config", "status", "PPL ± SE", "KLD ± SE (nat)", "same top-1", "decode t/s ± SD", "prefill t/s",
          "calib s", "α per group", "note"]


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def quality_cells(ms: dict[str, Any], is_reference: bool) -> list[str]:
    from quantscope.quality.perplexity import ppl_with_se

    nll, kld, top1 = ms.get("nll"), ms.get("kld"), ms.get("same_top1")
    ppl = "–" if nll is None else "{:.4g} ± {:.2g}".format(*ppl_with_se(nll.samples))
    if is_reference:
        return [ppl, "reference", "reference"]
    return [ppl, f"{kld.stats.mean:.5f} ± {kld.stats.se:.5f}" if kld else "–",
            f"{100 * top1.stats.mean:.2f} %" if top1 else "–"]


def alpha_cell(info: dict[str, Any]) -> str:
    sq = info.get("smoothquant")
    if not sq:
        return ""
    alphas = list(sq["alpha_per_group"].values())
    if sq["alpha"] != "auto" or not alphas:
        return str(sq["alpha"])
    return f"auto: min {min(alphas)} / median {statistics.median(alphas)} / max {max(alphas)}"


def row(result: Any, is_reference: bool = False, simulated: dict[str, Any] | None = None) -> list[str]:
    spec, info = result.spec, result.info
    name = f"{spec.backend}/{spec.quant.label}"
    if simulated is not None and result.status == "ok":  # --quality-on simulated: real speed, simulated quality
        ms = {m.name: m for m in result.measurements}
        decode, prefill = ms.get("decode_tps"), ms.get("prefill_tps")
        calib = info.get("calibration", {}).get("calibrate_s")
        return [name, "ok", *quality_cells(simulated["measurements"], False),
                f"{fmt(decode.stats.mean)} ± {fmt(decode.stats.sd)} (N={decode.stats.n})" if decode else "–",
                fmt(prefill.stats.mean, 1) if prefill else "–", fmt(calib, 1) if calib is not None else "",
                alpha_cell(info), "speed: torchao int8 kernel; quality: simulated int8 (fake-quant)"]
    if simulated is not None:  # no kernel here: quality from fake-quant, speed unsupported
        return [name, "quality only", *quality_cells(simulated["measurements"], False),
                f"unsupported: {result.reason}"[:120], "–", "–", alpha_cell(simulated["facts"]),
                "quality simulated (fake-quant); speed not measured"]
    if result.status != "ok":
        return [name, result.status, "", "", "", "", "", "", "", (result.reason or "").replace("|", "/")[:160]]
    ms = {m.name: m for m in result.measurements}
    decode, prefill = ms.get("decode_tps"), ms.get("prefill_tps")
    calib = info.get("calibration", {}).get("calibrate_s")
    return [name, "ok", *quality_cells(ms, is_reference),
            f"{fmt(decode.stats.mean)} ± {fmt(decode.stats.sd)} (N={decode.stats.n})" if decode else "–",
            fmt(prefill.stats.mean, 1) if prefill else "–", fmt(calib, 1) if calib is not None else "",
            alpha_cell(info), info.get("activation", "")]


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def configurations(alphas: list[str], activations: list[str]) -> list[tuple[str, str, tuple]]:
    out: list[tuple[str, str, tuple]] = [("torch", "none", ()), ("torch", "none-bf16", ())]
    for act in activations:
        out.append(("torchao", "w8a8", (("activation", act),)))
        out += [("torchao", "smoothquant-w8a8", (("alpha", a), ("activation", act))) for a in alphas]
    return out


# --- in-process helpers: the outlier variant, simulated rows, the torchao cross-check ----------------
def load_fp32(model_spec: Any) -> Any:
    from quantscope.backends.torch.backend import TorchBackend
    from quantscope.models import resolve
    from quantscope.spec import QuantSpec, RunSpec

    backend = TorchBackend()
    backend.load(RunSpec(model=model_spec, backend="torch", quant=QuantSpec(dtype="fp32")), resolve(model_spec))
    return backend


def make_outlier_variant(model_spec: Any, k: float, channels: int, folder: Path) -> Path:
    """Norm weight x K on `channels` fixed channels of every smoothed norm, the Linears' columns / K."""
    import torch

    from quantscope.methods.smoothquant.mappings import groups_for

    backend = load_fp32(model_spec)
    model = backend.model
    x = torch.tensor([backend.tokenize("def f(x):\n    return x * 2  # doubles its argument\n" * 6)[:64]])
    with torch.no_grad():
        before = model(input_ids=x).logits.float()
        groups = groups_for(model)
        width = groups[0].norm.weight.numel()
        picked = torch.randperm(width, generator=torch.Generator().manual_seed(0))[:channels].tolist()
        for g in groups:
            g.norm.weight[picked] *= k
            if getattr(g.norm, "bias", None) is not None:
                g.norm.bias[picked] *= k
            for m in g.linears:
                m.weight[:, picked] /= k
        rel = float((model(input_ids=x).logits.float() - before).norm() / before.norm())
    if rel > 1e-4:
        raise SystemExit(f"the outlier transform changed the FP32 logits by {rel:.2g}: not function-preserving")
    model.save_pretrained(folder)
    backend.tokenizer.save_pretrained(folder)
    print(f"outlier variant: K={k:g} on channels {sorted(picked)} of {len(groups)} norms, FP32 logits moved "
          f"{rel:.1e} (relative); saved to {folder}", file=sys.stderr)
    return folder


def quality_in_process(backend: Any, spec: Any, ref_file: str) -> dict[str, Any]:
    from quantscope.quality import read_reference, run_quality

    ms, _ = run_quality(backend, spec.quality, model_digest="", tokenizer_name="", reference=read_reference(ref_file),
                        add_bos=False, model_ctx=backend.max_context)
    return {m.name: m for m in ms}


def calibrated(backend: Any, config: Any, apply: Any) -> None:
    """prepare (apply("prepare")) -> the config's calibration batches -> convert (apply("convert"))."""
    import torch

    from quantscope.methods.calibration import calibration_batches

    apply("prepare")
    cal = calibration_batches(config.calibration, backend.tokenize, backend.vocab_size)
    with torch.no_grad():
        for ids in cal.batches:
            backend.model(input_ids=torch.tensor([ids]))
    apply("convert")


def ours(fp32: Any, spec: Any, simulated: bool) -> tuple[Any, dict[str, Any]]:
    from quantscope.methods import config_from_spec, handler_for

    backend, config = copy.deepcopy(fp32), config_from_spec(spec.quant, "torchao")
    handler, facts = handler_for(config), {}

    def apply(step: str) -> None:
        if step == "prepare":
            handler.prepare(config, backend.model, spec, None)
        else:
            facts.update(handler.convert_simulated(config, backend.model) if simulated
                         else handler.convert(config, backend.model, spec, None))

    calibrated(backend, config, apply)
    return backend, facts


def torchao_smoothquant(fp32: Any, alpha: float, config: Any, matched: bool = False) -> Any:
    """torchao's prototype SmoothQuantConfig on every Linear but lm_head (its own default); `matched`: only on
    the Linears our mapping smooths (q/k/v, gate/up: the norm-fed ones), the others plain int8 dynamic as
    ours leaves them, so both sides smooth the same layers."""
    from torchao.prototype.smoothquant import SmoothQuantConfig
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    from torchao.quantization.quantize_.common.quantization_step import QuantizationStep

    from quantscope.methods.smoothquant.mappings import groups_for
    from quantscope.methods.torchao_configs import _filter

    backend = copy.deepcopy(fp32)
    keep = _filter(backend.model, config)
    smoothed = {n for g in groups_for(backend.model) for n in g.linear_names} if matched else None

    def chosen(module: Any, fqn: str) -> bool:
        return keep(module, fqn) and (smoothed is None or fqn in smoothed)

    def apply(step: str) -> None:
        which = QuantizationStep.PREPARE if step == "prepare" else QuantizationStep.CONVERT
        quantize_(backend.model, SmoothQuantConfig(base_config=Int8DynamicActivationInt8WeightConfig(), step=which,
                                                   alpha=alpha), filter_fn=chosen if step == "prepare" else None)
        if step == "convert" and matched:
            quantize_(backend.model, Int8DynamicActivationInt8WeightConfig(),
                      filter_fn=lambda m, fqn: keep(m, fqn) and fqn not in smoothed)

    calibrated(backend, config, apply)
    return backend


def cross_check(base: Any, ref_file: str, alpha: float, tokens: int, matched: bool = False) -> list[list[str]]:
    """Ours vs torchao's prototype SmoothQuantConfig at one α, dynamic activations: quality only, both through
    the real int8 kernels (on a CPU without VNNI ~16 tok/s of prompt: hence its own, smaller token budget)."""
    from quantscope.methods import config_from_spec

    spec = base("torchao", "smoothquant-w8a8", (("alpha", str(alpha)), ("activation", "dynamic")))
    spec = dataclasses.replace(spec, quality=dataclasses.replace(spec.quality, max_tokens=tokens))
    config = config_from_spec(spec.quant, "torchao")
    fp32 = load_fp32(spec.model)
    mine, _ = ours(fp32, spec, simulated=False)
    sides = [(f"ours α={alpha} (folded into the norms)", mine),
             (f"torchao SmoothQuantConfig α={alpha} (scale per Linear at run time, every Linear)",
              torchao_smoothquant(fp32, alpha, config))]
    if matched:
        sides.append((f"torchao SmoothQuantConfig α={alpha} on our smoothed Linears only (q/k/v, gate/up)",
                      torchao_smoothquant(fp32, alpha, config, matched=True)))
    rows = []
    for name, b in sides:
        rows.append([name, "quality only", *quality_cells(quality_in_process(b, spec, ref_file), False),
                     "–", "–", "", str(alpha), f"in process, int8 dynamic, first {tokens} scored tokens; "
                     "speed not measured here"])
        print("  cross-check " + " | ".join(rows[-1][:5]), file=sys.stderr, flush=True)
    return rows


def run_table(args: argparse.Namespace, model: Any, configs: list) -> tuple[list[list[str]], dict[str, Any], Any]:
    """Every configuration through run_spec; rows, {label: PPL}, and the spec builder."""
    from quantscope.quality.perplexity import ppl_with_se
    from quantscope.runner import run_spec
    from quantscope.spec import QualitySpec, QuantSpec, RunSpec, WorkloadSpec

    workload = WorkloadSpec(prompt_tokens=32, gen_tokens=16, max_reps=3, max_seconds=10) if args.quick \
        else WorkloadSpec()
    if args.prompt_tokens or args.gen_tokens:
        workload = dataclasses.replace(workload, prompt_tokens=args.prompt_tokens or workload.prompt_tokens,
                                       gen_tokens=args.gen_tokens or workload.gen_tokens)
    quality = QualitySpec(enabled=not model.synthetic, max_tokens=args.quality_tokens)
    params_extra = (("calib_samples", args.calib_samples),) if args.calib_samples else ()

    def base(backend: str, method: str, params: tuple) -> RunSpec:
        dtype = "bf16" if method == "none-bf16" else "fp32"
        method = "none" if method.startswith("none") else method
        return RunSpec(model=model, backend=backend, workload=workload, quality=quality,
                       quant=QuantSpec(dtype=dtype, method=method,
                                       params=params + (params_extra if method != "none" else ())))

    reference = base("torch", "none", ())
    print(f"reference {reference.label} ...", file=sys.stderr, flush=True)
    ref = run_spec(reference, args.timeout)
    ref_file = ref.info.get("reference_file") if ref.status == "ok" else None
    print("  | " + " | ".join(row(ref, True)) + " |", file=sys.stderr, flush=True)
    results: list[tuple[Any, Any]] = [(ref, None)]
    fp32 = None
    for config in configs:
        spec = base(*config)
        if spec == reference or (args.only and args.only not in spec.label):
            continue
        print(f"{spec.label} ...", file=sys.stderr, flush=True)
        simulate = args.quality_on == "simulated" and spec.backend == "torchao"
        run = dataclasses.replace(spec, quality=QualitySpec(enabled=False)) if simulate else spec
        result = run_spec(run, args.timeout, reference_file=ref_file)
        print(f"  {result.status} in {result.duration_s:.0f} s {result.reason or ''}", file=sys.stderr)
        simulated = None
        if (result.status == "unsupported" or simulate) and spec.backend == "torchao" and ref_file \
                and quality.enabled:
            fp32 = fp32 or load_fp32(model)  # no kernel here: quality on fake-quant, speed stays unsupported
            sim, facts = ours(fp32, spec, simulated=True)
            simulated = {"measurements": quality_in_process(sim, spec, ref_file), "facts": facts}
        results.append((result, simulated))
        print("  | " + " | ".join(row(result, False, simulated)) + " |", file=sys.stderr, flush=True)  # kept if cut
    if args.store:
        from quantscope.store import Store

        with Store(args.store) as st:
            for r, _ in results:
                st.add(r)
    ppl = {}
    for r, sim in results:
        nll = (sim["measurements"] if sim else {m.name: m for m in r.measurements}).get("nll")
        if nll is not None:
            ppl[r.spec.quant.label] = ppl_with_se(nll.samples)[0]
    rows = [row(r, r is ref, sim) for r, sim in results]
    if args.cross_check and ref_file:
        rows += cross_check(base, ref_file, float(args.cross_check_alpha), args.cross_check_tokens,
                            args.cross_check_matched)
    return rows, ppl, (base, workload, quality)


def moved_lines(ppl: dict[str, float], ppl_out: dict[str, float]) -> list[str]:
    return [f"- {label}: PPL {ppl[label]:.4g} -> {p:.4g} with outliers ({100 * (p / ppl[label] - 1):+.1f} %)"
            for label, p in ppl_out.items() if label in ppl]


def parse_log(path: Path) -> dict[str, float]:
    """{configuration label: PPL} from the rows this script prints as each configuration finishes
    ("  | label | status | PPL ± SE | ..."), for --moved."""
    out = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("  | ") and len(cells) > 2 and cells[1] == "ok" and "±" in cells[2]:
            out[cells[0]] = float(cells[2].split("±")[0].replace(",", ""))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="as quantscope run --model (default: the bundled model)")
    ap.add_argument("--alphas", default="0.3,0.5,0.7,0.85,auto")
    ap.add_argument("--activations", default="dynamic,static")
    ap.add_argument("--only", default=None, help="run only configurations whose label contains this text")
    ap.add_argument("--quality-tokens", type=int, default=16384, help="scored tokens of the quality pass")
    ap.add_argument("--calib-samples", type=int, default=None, help="calibration samples (default: the method's)")
    ap.add_argument("--quick", action="store_true", help="short timed workload (smoke test)")
    ap.add_argument("--prompt-tokens", type=int, default=None, help="timed prompt length (default: the workload's)")
    ap.add_argument("--gen-tokens", type=int, default=None, help="timed generated tokens (default: the workload's)")
    ap.add_argument("--quality-on", choices=("real", "simulated"), default="real",
                    help="int8 rows' quality through torchao's kernels in the run, or on fake-quant in this process "
                         "(where torch._int_mm is far slower than FP32: speed is still the real kernel's)")
    ap.add_argument("--outliers", type=float, default=None, metavar="K",
                    help="also run on an outlier variant: K x some norm channels, / K in the Linears they feed")
    ap.add_argument("--outlier-channels", type=int, default=4)
    ap.add_argument("--outlier-dir", default=None, help="where the variant's HF folder goes (default: a temp dir)")
    ap.add_argument("--cross-check", action="store_true", help="also torchao's prototype SmoothQuantConfig")
    ap.add_argument("--cross-check-alpha", default="0.5")
    ap.add_argument("--cross-check-tokens", type=int, default=1024, help="scored tokens of the cross-check's passes")
    ap.add_argument("--cross-check-matched", action="store_true",
                    help="also torchao's SmoothQuantConfig on the Linears ours smooths only (the rest plain int8)")
    ap.add_argument("--variant-only", action="store_true",
                    help="with --outliers: run the outlier variant's table only (the original's from an earlier run)")
    ap.add_argument("--moved", nargs=2, metavar=("ORIGINAL_LOG", "VARIANT_LOG"), default=None,
                    help="print how each configuration's PPL moved between two saved outputs of this script, and stop")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per configuration, seconds")
    ap.add_argument("--store", default=None, help="also store every result in this SQLite store")
    args = ap.parse_args()

    if args.moved:
        print("\n".join(moved_lines(*(parse_log(Path(f)) for f in args.moved))))
        return 0
    from quantscope.errors import UserError
    from quantscope.models import parse_model

    started = time.perf_counter()
    try:
        model = parse_model(args.model)
        for a in args.alphas.split(","):
            if a != "auto" and not 0.0 <= float(a) <= 1.0:
                raise UserError(f"--alphas: {a} is outside [0, 1]")
        configs = configurations(args.alphas.split(","), args.activations.split(","))
        if args.variant_only and args.outliers is None:
            raise UserError("--variant-only needs --outliers K")
        rows, ppl, workload, quality = [], {}, None, None
        if not args.variant_only:
            rows, ppl, (_, workload, quality) = run_table(args, model, configs)
        outlier_rows, moved = [], []
        if args.outliers is not None:
            import tempfile

            folder = Path(args.outlier_dir or tempfile.mkdtemp(prefix="quantscope-outliers-"))
            variant = parse_model(str(make_outlier_variant(model, args.outliers, args.outlier_channels, folder)))
            outlier_rows, ppl_out, (_, workload, quality) = run_table(args, variant, configs)
            moved = moved_lines(ppl, ppl_out)
    except (UserError, ValueError) as e:
        print(f"smoothquant_table: error: {e}", file=sys.stderr)
        return 2
    if workload is None:
        return 0
    recipe = f"{quality.recipe} recipe, {quality.max_tokens} tokens" if quality.enabled else "off"
    print(f"\nModel {model.label}; P={workload.prompt_tokens} G={workload.gen_tokens}; quality {recipe}; "
          f"total {time.perf_counter() - started:.0f} s; KLD and same-top-1 against torch/fp32.\n")
    print(markdown(rows))
    if outlier_rows:
        print(f"\nOutlier variant (K={args.outliers:g}, {args.outlier_channels} channels per norm):\n")
        print(markdown(outlier_rows))
        print("\nPerplexity moved by the outlier transform (FP32 unchanged by construction):\n" + "\n".join(moved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
