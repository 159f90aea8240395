"""How far to trust a projection: project every measured row from the others and print the error.

1. This machine (and any other in the store): every ok row of STORE is projected onto its own machine
   by a calibration fitted WITHOUT that row (leave-one-row-out) from the store's other rows and the
   published GPU data (as `estimate` calibrates), from the row's shape, format and the machine's
   measured bandwidth (a GPU row: its catalog entry's). Each row's decode and prefill error, then the median |error|.
2. The published GPU data (hardware/published.toml): leave one GPU out at a time, i.e. project every
   published row of a GPU from the other GPUs' data only (the case of a GPU we have no data for),
   and leave one row out within the full set (the intervals `estimate` prints come from these).

Errors are projected / measured - 1 on tokens/s: + means the projection was optimistic.

--kernels first times the kernels of this machine's torch and torchao formats in the store on a
synthetic Linear stack (hardware/kernels.py; cached, a few seconds a format, run alone), so a format
left out is projected from its runtime's other formats scaled by the two kernels' rates. Without it,
kernel rates cached before are used, as `estimate` uses them.

    .venv/bin/python benchmarks/projection_error.py ~/.local/share/quantscope/results.sqlite [--kernels]
    .venv/bin/python benchmarks/projection_error.py --published-only
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path


def pct(log_err: float | None) -> str:
    return "-" if log_err is None else f"{math.expm1(log_err):+.1%}"


def med_abs(values: list[float]) -> str:
    vals = [abs(math.expm1(v)) for v in values if v is not None]
    return f"{statistics.median(vals):.1%} (n={len(vals)})" if vals else "- (n=0)"


def store_part(path: Path, measure_kernels: bool = False) -> None:
    from quantscope.env import fingerprint, physical_cores
    from quantscope.hardware import kernels
    from quantscope.hardware.calibrate import Calibration
    from quantscope.hardware.gemm import machine_gemm
    from quantscope.hardware.observations import cached_peaks, published_observations, store_observations
    from quantscope.store import Store

    with Store(path, readonly=True) as st:
        rows = st.results(status="ok")
    machine, threads = fingerprint().machine_id, physical_cores()
    if measure_kernels:
        machine_gemm(machine, threads)  # the compute roofs the prefill shares are read against
        wanted = kernels.wanted_from_rows(rows, machine)
        print(f"timing the kernels of {len(wanted)} format(s) on this machine (cached) ...", file=sys.stderr)
        kernels.machine_kernels(machine, threads, wanted, measure=True)
    peaks = cached_peaks(machine, threads)
    rates = kernels.rates_for_calibration(machine, threads, peaks)
    skipped: list[str] = []
    obs = store_observations(rows, {machine: peaks}, skipped)
    print(f"== {path}: {len(rows)} ok rows, {len(obs)} usable (each projected from all the others)")
    for line in skipped:
        print(f"   skipped {line}")
    if not obs:
        return
    # as `estimate` calibrates: the published GPU rows beside the store's (only store rows are left out)
    if rates:
        print(f"   kernel rates timed here for {len(rates)} format(s): {', '.join(sorted(rates))}")
    calibration = Calibration(obs + published_observations(), {f"local:{machine}": rates})
    errs = [e for e in calibration.loo_errors() if e["obs"].run_id is not None]
    print(f"{'run':>5} {'runtime':<16} {'format':<30} {'model':<22} {'decode t/s':>10} {'err':>8} "
          f"{'prefill t/s':>11} {'err':>8} {'lvl':>3} {'weights: ours/stored':>21}")
    for e in errs:
        o = e["obs"]
        wb = (f"{o.computed_weight_bytes / o.measured_weight_bytes:.3f}" if o.measured_weight_bytes else "-")
        print(f"{o.run_id or '-':>5} {o.runtime:<16} {o.fmt:<30} {o.model[:22]:<22} {o.decode_tps:>10.3g} "
              f"{pct(e['decode_log_err']):>8} {o.prefill_tps or 0:>11.3g} {pct(e['prefill_log_err']):>8} "
              f"{e['level']:>3} {wb:>21}")
    print(f"median |error|: decode {med_abs([e['decode_log_err'] for e in errs])}, "
          f"prefill {med_abs([e['prefill_log_err'] for e in errs])}")
    for level in sorted({e["level"] for e in errs}):
        sub = [e for e in errs if e["level"] == level]
        print(f"  level {level}: decode {med_abs([e['decode_log_err'] for e in sub])}")
    for hw in sorted({e["obs"].hw for e in errs}):
        sub = [e for e in errs if e["obs"].hw == hw]
        print(f"  on {hw}: decode {med_abs([e['decode_log_err'] for e in sub])}, "
              f"prefill {med_abs([e['prefill_log_err'] for e in sub])}")


def published_part() -> None:
    from quantscope.hardware.calibrate import Calibration
    from quantscope.hardware.observations import published_observations

    obs = published_observations()
    print(f"\n== published GPU data: {len(obs)} rows on {len({o.hw for o in obs})} GPUs "
          "(decode only: no source times prefill apart)")
    print("-- leave one row out (what `estimate`'s intervals are built from)")
    errs = Calibration(obs).loo_errors()
    for e in errs:
        o = e["obs"]
        print(f"   {o.hw:<15} {o.runtime:<9} {o.fmt:<28} {o.model:<11} {o.decode_tps:>7.4g} t/s "
              f"err {pct(e['decode_log_err']):>7}  level {e['level']}")
    print(f"   median |error| {med_abs([e['decode_log_err'] for e in errs])}")
    print("-- leave one GPU out (all of its rows; the case of a GPU without data)")
    all_logo = []
    for gpu in sorted({o.hw for o in obs}):
        rest = Calibration([o for o in obs if o.hw != gpu])
        from quantscope.hardware.calibrate import predict_step

        logs = []
        for o in (o for o in obs if o.hw == gpu):
            eff = rest.point(o.hw, o.kind, o.runtime, o.fmt)
            t = predict_step(o.decode_bytes, o.decode_flops, o.bandwidth_Bps, o.peak_flops, eff, "decode", o.layers)
            logs.append(math.log(o.decode_s / t.seconds))
            print(f"   {gpu:<15} {o.runtime:<9} {o.fmt:<28} {o.model:<11} err {pct(logs[-1]):>7}  level {eff.level}")
        all_logo += logs
        print(f"   {gpu}: median |error| {med_abs(logs)}")
    print(f"   all GPUs left out in turn: median |error| {med_abs(all_logo)}; with only "
          f"{len({o.hw for o in obs})} GPUs this is coarse")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", nargs="?", type=Path, help="a quantscope result store (SQLite)")
    ap.add_argument("--published-only", action="store_true", help="only the published GPU data")
    ap.add_argument("--kernels", action="store_true", help="time this machine's torch/torchao kernels first")
    args = ap.parse_args(argv)
    if args.store is None and not args.published_only:
        ap.error("give a STORE, or --published-only")
    if args.store is not None:
        if not args.store.is_file():
            print(f"projection_error: no store at {args.store}", file=sys.stderr)
            return 2
        store_part(args.store, args.kernels)
    published_part()
    return 0


if __name__ == "__main__":
    sys.exit(main())
