"""The dashboard that opens the report: decode speed, memory, quality and speed-up in four panels, the
measured rows filled and each projected hardware hatched beside them (the study's four-metric figure)."""

from __future__ import annotations

from typing import Any

from quantscope.present import columns as col
from quantscope.present.units import MiB
from quantscope.report.views import (
    COLORS,
    empty,
    figure,
    grouped_barh,
    plain_log_ticks,
    projected_series,
    register,
    safe,
    summaries,
)


def _baseline(s):
    from quantscope.analysis.summary import default_baseline

    return default_baseline(s)


@register("dashboard", "At a glance", "Measured here: filled bars (error bars: 95 % CI of the mean). Projected on "
          "catalog hardware: hatched bars, error bars the projection's interval; never measured, never stored. "
          "Quality is measured here only (it does not depend on the hardware).")
def dashboard(rows: list[Any], projected=()):
    """Four panels: decode tok/s, memory (peak RSS here, projected need there), KLD vs FP32, decode speed-up
    against the baseline (the FP32 reference), each hardware's against its own projected baseline."""
    s = [x for x in summaries(rows) if x.decode]
    if not s:
        return empty("dashboard")
    labels = [x.label for x in s]
    base = _baseline(s)
    fig = figure(11, max(4.5, 0.5 * len(s) * (1 + len({p.hardware for p in projected})) + 2.2))
    (a, b), (c, d) = fig.subplots(2, 2, sharey=True)
    here = {"name": "measured here", "color": COLORS[0], "values": [x.decode.mean for x in s],
            "err": ([col_ci(x) for x in s], [col_ci(x) for x in s])}
    grouped_barh(a, labels, [here, *projected_series(labels, projected, lambda p: p.decode_tps,
                                                     lambda p: p.decode_tps_low, lambda p: p.decode_tps_high)],
                 col.DECODE_CI.header)
    a.set_title("decode speed (higher is better)", fontsize=10)
    spread = here["values"] + [r.p.decode_tps for r in projected if r.ok and not r.scaled]
    if max(spread) > 20 * min(spread):  # a GPU's projection beside a CPU's measurement: bars on one log axis
        a.set_xscale("log")
        plain_log_ticks(a.xaxis)
        a.set_xlabel(col.DECODE_CI.header + " (log)")
    mem = {"name": "measured here (peak RSS)", "color": COLORS[0],
           "values": [x.peak_rss_bytes / MiB if x.peak_rss_bytes else None for x in s]}
    grouped_barh(b, labels, [mem, *projected_series(labels, projected, lambda p: p.memory_bytes / MiB)],
                 "memory [MiB]")
    b.set_title("memory (lower is better)", fontsize=10)
    kld = {"name": "measured here", "color": COLORS[3], "values": [x.kld[0] if x.kld else None for x in s],
           "err": ([x.kld[1] if x.kld else 0 for x in s], [x.kld[1] if x.kld else 0 for x in s])}
    if any(v is not None for v in kld["values"]):
        grouped_barh(c, labels, [kld], f"{col.KLD.name} vs FP32 [{col.KLD.unit}] (± SE)")
    else:
        grouped_barh(c, labels, [], "KLD [nat]")
        c.text(0.5, 0.5, "no quality pass: KLD not measured", ha="center", va="center", transform=c.transAxes)
    c.set_title("quality loss (lower is better)", fontsize=10)
    d.set_title(f"decode speed-up vs {safe(base.label)} (higher is better)" if base else "speed-up: no baseline",
                fontsize=10)
    if base is not None:
        sp = {"name": "measured here", "color": COLORS[0], "values": [x.decode.mean / base.decode.mean for x in s]}
        series = [sp]
        for ser in projected_series(labels, projected, lambda p: p.decode_tps):
            b0 = ser["values"][labels.index(base.label)]  # each hardware against its own projected baseline
            ser["values"] = [v / b0 if v is not None and b0 else None for v in ser["values"]]
            series.append(ser)
        grouped_barh(d, labels, series, "speed-up [x]")
        d.axvline(1.0, color="#333", lw=1)
    handles, names = a.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(4, len(names)), fontsize=8)
    return fig


def col_ci(x) -> float:
    from quantscope.report.views import ci

    return ci(x.decode)
