"""Markdown tables of a lent-GPU session (benchmarks/gpu/session.sh) from what it wrote, never retyped.

Reads the session's result store, its ceilings.json and the projections written before the session
(`quantscope estimate` output, docs/measurements/h200-projected-before.txt), and prints: the
ceilings against the catalog, one row per measured configuration (speed, GPU memory, NVML
telemetry), and each projection made before the session beside the measurement.

    .venv/bin/python benchmarks/gpu/summary.py docs/measurements/h200-2026-11-30
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

MiB = 1 << 20


def ceilings(path: Path) -> list[str]:
    from quantscope.hardware.catalog import get_hardware

    c = json.loads(path.read_text())
    hw = get_hardware(c["catalog_id"])
    out = ["| ceiling | measured | datasheet (catalog) | share |", "|---|---|---|---|",
           f"| copy bandwidth (read + write) | {c['copy']['gbps']:,.0f} GB/s | {hw.bandwidth_Bps / 1e9:,.0f} GB/s "
           f"| {c['copy']['gbps'] * 1e9 / hw.bandwidth_Bps:.0%} |"]
    for dtype, g in c["gemm"].items():
        if g["status"] != "ok":
            out.append(f"| {dtype} GEMM | {g['status']}: {g.get('reason', '')} | | |")
            continue
        peak = hw.peak(dtype)
        out.append(f"| {dtype} GEMM {g['size']}³ | {g['tflops']:,.1f} TFLOP/s (rel. err {g['rel_err']:.1e}) | "
                   f"{peak / 1e12:,.0f} TFLOP/s | {g['tflops'] * 1e12 / peak:.0%} |")
    return out


def _mean_peak(tel: dict, name: str, digits: int = 3) -> str:
    t = tel.get(name)
    return f"{t['mean']:.{digits}g} / {t['peak']:.{digits}g}" if t else "-"


def runs(rows) -> list[str]:
    from quantscope.analysis.summary import summarize

    out = ["| run | model | configuration | decode tok/s ± 95% CI | prefill tok/s | TTFT ms | GPU memory MiB "
           "(NVML) | weights MiB | GPU busy % mean/peak | power W mean/peak | J/token |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run_id, r in sorted(rows, key=lambda x: x[0]):
        s = summarize(run_id, r)
        tel = r.info.get("gpu_telemetry") or {}
        nvml = r.get("nvml_process_bytes")
        d, p, t = s.decode, s.prefill, s.ttft
        out.append(
            f"| {run_id} | {r.spec.model.ref} | {s.label} | {d.mean:.4g} ± {d.ci95:.2g} | {p.mean:.4g} | "
            f"{t.mean * 1e3:.3g} | {nvml.value / MiB:,.0f} | {r.get('weight_bytes').value / MiB:,.0f} | "
            f"{_mean_peak(tel, 'gpu_util_pct')} | {_mean_peak(tel, 'gpu_power_w')} | "
            f"{tel.get('energy_j_per_token', float('nan')):.3g} |")
    return out


def projected_before(path: Path) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(shape, format) -> projected decode tok/s (value, low, high), from the estimate output written
    before the session."""
    found: dict[tuple[str, str], tuple[float, float, float]] = {}
    shape = None
    for line in path.read_text().splitlines():
        m = re.match(r"\$ quantscope estimate -m synthetic:(\S+)", line)
        if m:
            shape = m.group(1)
            continue
        m = re.match(r"h200\s{2,}(\S+)\s+([\d.e+]+) \[([\d.e+]+)-([\d.e+]+)\]", line)
        if m and shape:
            found[(shape, m.group(1))] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    return found


def before_vs_measured(rows, before: dict[tuple[str, str], float]) -> list[str]:
    from quantscope.analysis.summary import summarize

    out = ["| model | configuration | projected before: decode tok/s [interval] | measured | projected / measured "
           "| inside the interval |", "|---|---|---|---|---|---|"]
    for run_id, r in sorted(rows, key=lambda x: x[0]):
        s = summarize(run_id, r)
        key = (r.spec.model.ref, s.label.split("[")[0])
        if key in before:
            value, low, high = before[key]
            inside = "yes" if low <= s.decode.mean <= high else "**no**"
            out.append(f"| {key[0]} | {s.label} | {value:.3g} [{low:.3g}, {high:.3g}] | {s.decode.mean:.3g} | "
                       f"{value / s.decode.mean:.2f}x | {inside} |")
    return out


def main(argv: list[str]) -> int:
    from quantscope.store import Store

    folder = Path(argv[1] if len(argv) > 1 else "docs/measurements/h200-2026-11-30")
    with Store(folder / "h200.sqlite", readonly=True) as st:
        rows = st.results(status="ok")
    print("\n".join(ceilings(folder / "ceilings.json")), end="\n\n")
    print("\n".join(runs(rows)), end="\n\n")
    before = folder.parent / "h200-projected-before.txt"
    if before.exists():
        print("\n".join(before_vs_measured(rows, projected_before(before))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
