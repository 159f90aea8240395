"""The block `quantscope run` prints for one result. Stored values are SI; present.units converts them."""

from __future__ import annotations

import math

from quantscope.present.labels import run_label
from quantscope.present.units import MiB, fmt_num, fmt_rate_gbps, fmt_seconds
from quantscope.result import Measurement, Result


def mean_sd(m: Measurement | None, scale: float = 1.0, digits: int = 4) -> str:
    if m is None:
        return "-"
    s = m.stats
    if s.n < 2:
        return fmt_num(s.mean * scale, digits)
    return f"{fmt_num(s.mean * scale, digits)} ± {fmt_num(s.sd * scale, 2)} (N={s.n})"


def quality_lines(r: Result) -> list[str]:
    if r.get("nll") is None:
        note = r.info.get("quality")
        return [f"  quality     {note}"] if note else []
    from quantscope.quality.summary import describe_quality

    return describe_quality(r)


def summary_lines(r: Result) -> list[str]:
    """The block `quantscope run` prints."""
    head = f"{run_label(r.spec)}: {r.status} in {fmt_seconds(r.duration_s)}"
    if r.status != "ok":
        return [head, f"  reason: {r.reason}"]
    g = r.get
    info = r.info
    lines = [head + f"  ({info.get('reps')} reps, stopped by {info.get('stop_rule')}"
             + (f", {info['discarded_stalls']} stalled reps redone" if info.get("discarded_stalls") else "") + ")"]
    lat = g("token_latency_s").stats
    lines.append(f"  decode      {mean_sd(g('decode_tps'))} tok/s   per-token p50/p90/p99 "
                 f"{lat.p50 * 1e3:.2f}/{lat.p90 * 1e3:.2f}/{lat.p99 * 1e3:.2f} ms")
    lines.append(f"  prefill     {mean_sd(g('prefill_tps'))} tok/s   TTFT {mean_sd(g('ttft_s'), 1e3)} ms")
    mem = f"  memory      peak RSS {fmt_num(g('peak_rss_bytes').value / MiB, 4)} MiB (worker process)   " \
          f"weights {fmt_num(g('weight_bytes').value / MiB, 4)} MiB"
    if g("file_bytes"):
        mem += f"   file {fmt_num(g('file_bytes').value / MiB, 4)} MiB"
    lines.append(mem)
    for name in ("torch_max_allocated_bytes", "torch_max_reserved_bytes", "nvml_process_bytes"):
        if g(name):
            lines.append(f"  {name:<11} {fmt_num(g(name).value / MiB, 5)} MiB")
    bw, frac = g("achieved_bandwidth_Bps"), g("bandwidth_fraction")
    if bw and frac:
        machine = bw.meta.get("machine_read_Bps", math.nan)
        lines.append(f"  bandwidth   {fmt_rate_gbps(bw.value)} achieved (weights x steps/s) = "
                     f"{frac.value * 100:.1f} % of this machine's measured {fmt_rate_gbps(machine)} "
                     f"(read-only, {bw.meta.get('threads')} threads)")
    e = g("energy_j_per_token")
    lines.append(f"  energy      {mean_sd(e)} J/token" if e else f"  energy      {info.get('energy')}")
    lines += quality_lines(r)
    return lines
