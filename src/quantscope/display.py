"""Human-readable renderings of results. Stored values are SI; conversion happens only here."""

from __future__ import annotations

import math

from quantscope.result import Measurement, Result

MiB = float(1 << 20)


def fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def mean_sd(m: Measurement | None, scale: float = 1.0, digits: int = 4) -> str:
    if m is None:
        return "-"
    s = m.stats
    if s.n < 2:
        return fmt(s.mean * scale, digits)
    return f"{fmt(s.mean * scale, digits)} ± {fmt(s.sd * scale, 2)} (N={s.n})"


def quality_lines(r: Result) -> list[str]:
    if r.get("nll") is None:
        note = r.info.get("quality")
        return [f"  quality     {note}"] if note else []
    from quantscope.quality.summary import describe_quality

    return describe_quality(r)


def summary_lines(r: Result) -> list[str]:
    """The block `quantscope run` prints."""
    head = f"{r.spec.label}: {r.status} in {r.duration_s:.1f} s"
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
    mem = f"  memory      peak RSS {fmt(g('peak_rss_bytes').value / MiB, 4)} MiB (worker process)   " \
          f"weights {fmt(g('weight_bytes').value / MiB, 4)} MiB"
    if g("file_bytes"):
        mem += f"   file {fmt(g('file_bytes').value / MiB, 4)} MiB"
    lines.append(mem)
    for name in ("torch_max_allocated_bytes", "torch_max_reserved_bytes", "nvml_process_bytes"):
        if g(name):
            lines.append(f"  {name:<11} {fmt(g(name).value / MiB, 5)} MiB")
    bw, frac = g("achieved_bandwidth_Bps"), g("bandwidth_fraction")
    if bw and frac:
        machine = bw.meta.get("machine_read_Bps", math.nan)
        lines.append(f"  bandwidth   {fmt(bw.value / 1e9)} GB/s achieved (weights x steps/s) = "
                     f"{frac.value * 100:.1f} % of this machine's measured {fmt(machine / 1e9)} GB/s "
                     f"(read-only, {bw.meta.get('threads')} threads)")
    e = g("energy_j_per_token")
    lines.append(f"  energy      {mean_sd(e)} J/token" if e else f"  energy      {info.get('energy')}")
    lines += quality_lines(r)
    return lines
