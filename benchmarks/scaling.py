"""The scaling study: the speed-up of each quantization against model size, measured here and projected.

The study quantscope grew from claims quantization only pays above ~1B parameters. This measures the
synthetic shapes that fit this machine (135M ... 3B) with each precision and runtime that runs here,
through `quantscope run` (one isolated worker per configuration, stored with raw samples), then
projects the shapes that do not fit and the GPUs from the calibration those rows feed. Measured and
projected figures are printed (and plotted) apart; projected ones are never stored.

    .venv/bin/python benchmarks/scaling.py --store scaling.sqlite                 # minutes to hours
    .venv/bin/python benchmarks/scaling.py --store s.sqlite --shapes smollm2-135m --tiny   # a smoke test

Speed-up = decode tok/s of the configuration / decode tok/s of the baseline (torch fp32 here, torch
bf16 on GPUs) for the same shape on the same hardware.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

SHAPES = ("smollm2-135m", "qwen2-0.5b", "llama-1b", "llama-3b", "llama3-8b", "llama2-13b", "llama2-70b")
# backend:quant:dtype; the first is the baseline the speed-ups are measured against.
CONFIGS = ("torch:none:fp32", "torch:none:bf16", "torchao:int8-weight-only:fp32", "torchao:int8-dynamic:fp32",
           "llamacpp:q8_0:fp32", "llamacpp:q4_0:fp32")
GPU_CONFIGS = ("torch:none:bf16", "torchao:int8-weight-only:bf16", "torchao:int4-weight-only:bf16")
GPUS = ("t4", "a100-80gb-sxm", "h200")
COPIES = 2  # a converting runtime holds the fp32 model and its converted copy at once


def parse(cfg: str) -> tuple[str, str, str]:
    backend, quant, dtype = cfg.split(":")
    return backend, quant, dtype


def fits_here(name: str) -> bool:
    """Whether the fp32 shape (twice, while converting) fits in 80 % of this machine's RAM."""
    import psutil

    from quantscope.hardware.formats import layout
    from quantscope.models.shape import model_shape

    s = model_shape(f"synthetic:{name}")
    need = COPIES * layout("torch", "none", "fp32", s).weight_bytes(s)
    return need < 0.8 * psutil.virtual_memory().total


def measure(store: Path, name: str, cfg: str, tiny: bool, timeout: float) -> int:
    backend, quant, dtype = parse(cfg)
    work = (["-p", "8", "-g", "4", "--warmup", "0", "--min-reps", "1", "--max-reps", "1"] if tiny
            else ["-p", "128", "-g", "32", "--min-reps", "3", "--max-reps", "5", "--max-seconds", "60"])
    cmd = [sys.executable, "-m", "quantscope.cli", "run", "--model", f"synthetic:{name}", "--backend", backend,
           "--quant", quant, "--dtype", dtype, "--no-quality", "--store", str(store), "--timeout", str(timeout),
           *work]
    print("$", " ".join(cmd[2:]), flush=True)
    return subprocess.run(cmd).returncode


def measured_table(store: Path) -> dict[tuple[str, str], float]:
    """(shape, backend:quant:dtype) -> mean decode tok/s of the newest ok row."""
    from quantscope.store import Store

    out: dict[tuple[str, str], float] = {}
    with Store(store, readonly=True) as st:
        for _, r in reversed(st.results(status="ok")):
            s = r.spec
            if s.model.source == "synthetic" and r.get("decode_tps") is not None:
                out[(s.model.ref, f"{s.backend}:{s.quant.method}:{s.quant.dtype}")] = r.get("decode_tps").value
    return out


def gpu_configs(hw_id: str) -> tuple[str, ...]:
    """GPU_CONFIGS, in fp16 on a GPU without bf16 (T4, V100: the study ran its T4 in fp16)."""
    from quantscope.hardware.catalog import get_hardware

    if get_hardware(hw_id).unsupported("bf16"):
        return tuple(c.replace(":bf16", ":fp16") for c in GPU_CONFIGS)
    return GPU_CONFIGS


def projected_table(store: Path, shapes, configs, hw_ids) -> dict[tuple[str, str, str], tuple[float, float, float]]:
    """(hardware, shape, config) -> (tok/s, low, high), projected with the store's and published calibration."""
    from quantscope.env import fingerprint, physical_cores
    from quantscope.errors import QuantscopeError
    from quantscope.hardware.calibrate import build_calibration
    from quantscope.hardware.catalog import get_hardware
    from quantscope.hardware.observations import cached_peaks
    from quantscope.hardware.project import project
    from quantscope.models.shape import model_shape
    from quantscope.store import Store

    with Store(store, readonly=True) as st:
        rows = st.results(status="ok")
    machine = fingerprint().machine_id
    calib = build_calibration(rows, machine, cached_peaks(machine, physical_cores()))
    out = {}
    for hw_id in hw_ids:
        hw = get_hardware(hw_id)
        for name in shapes:
            shape = model_shape(f"synthetic:{name}")
            for cfg in configs:
                backend, quant, dtype = parse(cfg)
                try:
                    p = project(shape, hw, backend, quant, dtype, calibration=calib, machine_id=machine)
                except QuantscopeError as e:
                    print(f"  {hw_id} {name} {cfg}: {e}")
                    continue
                if p.supported and p.fits:
                    out[(hw_id, name, cfg)] = (p.decode_tps, p.decode_tps_low, p.decode_tps_high)
    return out


def speedups(values: dict, base: str, configs, shapes) -> list[str]:
    lines = [f"{'shape':<14} " + " ".join(f"{c:>30}" for c in configs)]
    for name in shapes:
        b = values.get((name, base))
        cells = []
        for cfg in configs:
            v = values.get((name, cfg))
            cells.append(f"{v / b:>29.2f}x" if v and b else f"{'-':>30}")
        lines.append(f"{name:<14} " + " ".join(cells))
    return lines


def threshold_lines(values: dict, base: str, configs, shapes, params: dict[str, float]) -> list[str]:
    """For each quantization: the smallest measured shape at which it beats the baseline."""
    out = []
    for cfg in configs[1:]:
        wins = [n for n in shapes if values.get((n, cfg)) and values.get((n, base))
                and values[(n, cfg)] > values[(n, base)]]
        measured = [n for n in shapes if values.get((n, cfg)) and values.get((n, base))]
        if not measured:
            continue
        first = min(wins, key=lambda n: params[n]) if wins else None
        out.append(f"  {cfg}: faster than {base} from {params[first] / 1e9:.3g}B ({first})" if first else
                   f"  {cfg}: never faster than {base} in the measured range")
    return out


def plot(path: Path, measured: dict, projected: dict, params: dict, base: str, configs, gpu_base: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for cfg in configs[1:]:
        xs = [params[n] for n in params if measured.get((n, cfg)) and measured.get((n, base))]
        ys = [measured[(n, cfg)] / measured[(n, base)] for n in params if measured.get((n, cfg))
              and measured.get((n, base))]
        if xs:
            ax.plot(xs, ys, "o-", label=f"measured here: {cfg}")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for k, hw in enumerate(sorted({h for h, _, _ in projected if h != "local"})):
        cfgs = gpu_configs(hw)  # each GPU against its own baseline (fp16 where it has no bf16)
        for j, cfg in enumerate(cfgs[1:]):
            pts = [(params[n], v / projected[(hw, n, cfgs[0])][0]) for (h, n, c), (v, _, _) in projected.items()
                   if h == hw and c == cfg and (hw, n, cfgs[0]) in projected]
            if pts:
                xs, ys = zip(*sorted(pts), strict=True)
                ax.plot(xs, ys, ["--", ":", "-."][k % 3], marker="os^"[j % 3], markerfacecolor="none", color="grey",
                        label=f"projected on {hw}: {cfg}")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(params.values())))  # one tick per shape, named by its size
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e9:.2g}B" if v >= 1e9 else f"{v / 1e6:.3g}M"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("parameters")
    ax.set_ylabel("decode speed-up vs baseline [x]")
    ax.set_title("Speed-up of each quantization against model size\n(solid: measured here vs fp32; hollow grey: "
                 "projected on GPUs vs bf16/fp16, eager runtimes)", fontsize=10)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"figure: {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True, help="store for the measured rows (created if absent)")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="synthetic shapes, comma-separated")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="backend:quant:dtype, the first is the baseline")
    ap.add_argument("--gpus", default=",".join(GPUS))
    ap.add_argument("--tiny", action="store_true", help="1 repetition of 4 tokens: a smoke test, not a result")
    ap.add_argument("--no-measure", action="store_true", help="only read the store and project")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--plot", type=Path, help="write the speed-up figure (PNG) here")
    args = ap.parse_args(argv)
    from quantscope.models.shape import model_shape

    shapes = [s for s in args.shapes.split(",") if s]
    configs = [c for c in args.configs.split(",") if c]
    params = {n: model_shape(f"synthetic:{n}").total_params for n in shapes}
    here = [n for n in shapes if fits_here(n)]
    print(f"measured here: {', '.join(here) or 'none'}; projected only: "
          f"{', '.join(n for n in shapes if n not in here) or 'none'}")
    if not args.no_measure:
        for name in here:
            for cfg in configs:
                measure(args.store, name, cfg, args.tiny, args.timeout)
    if not args.store.is_file():
        print(f"no store at {args.store}: nothing measured")
        return 1
    measured = measured_table(args.store)
    print("\nMEASURED on this machine: decode speed-up vs", configs[0])
    print("\n".join(speedups(measured, configs[0], configs, shapes)))
    print("\n".join(threshold_lines(measured, configs[0], configs, shapes, params)))
    local = projected_table(args.store, [n for n in shapes if n not in here], configs, ["local"])
    proj_local = {(n, c): v[0] for (_, n, c), v in local.items()}
    if proj_local:
        print(f"\nPROJECTED on this machine (shapes too large to measure): speed-up vs {configs[0]}")
        print("\n".join(speedups(proj_local, configs[0], configs, [n for n in shapes if n not in here])))
    gpus = [g for g in args.gpus.split(",") if g]
    gpu_proj = {}
    for g in gpus:
        cfgs = gpu_configs(g)
        table = projected_table(args.store, shapes, cfgs, [g])
        gpu_proj.update(table)
        vals = {(n, c): v[0] for (h, n, c), v in table.items()}
        print(f"\nPROJECTED on {g}: decode speed-up vs {cfgs[0]} (configurations that fit and run there)")
        print("\n".join(speedups(vals, cfgs[0], list(cfgs), shapes)))
    if args.plot:
        plot(args.plot, measured, gpu_proj, params, configs[0], configs, GPU_CONFIGS[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
