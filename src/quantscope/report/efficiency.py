"""Memory reduction against the baseline, and the hardware-efficiency heatmap (configurations x figures:
share of the bandwidth roofline, J/token, NVML means where present), the study's slides 5 and 9."""

from __future__ import annotations

import math
from typing import Any

from quantscope.report.views import COLORS, empty, figure, grouped_barh, projected_series, register, safe, summaries


def _baseline(s):
    from quantscope.analysis.summary import default_baseline

    return default_baseline(s)


@register("memory-reduction", "Memory reduction against the baseline",
          "Baseline bytes / configuration bytes (2x = half the memory): weights as loaded and the run's peak RSS "
          "measured here (filled); projected memory need on catalog hardware (hatched), each against its own "
          "projected baseline.", applies=lambda s, p: _baseline(s) is not None)
def memory_reduction(rows: list[Any], projected=()):
    s = [x for x in summaries(rows) if x.weight_bytes or x.peak_rss_bytes]
    base = _baseline(summaries(rows))
    if not s or base is None:
        return empty("memory reduction", "no baseline with memory figures")
    labels = [x.label for x in s]

    def ratio(b, v):
        return b / v if b and v else None

    series = [{"name": "weights, measured here", "color": COLORS[0],
               "values": [ratio(base.weight_bytes, x.weight_bytes) for x in s]},
              {"name": "peak RSS, measured here", "color": COLORS[2],
               "values": [ratio(base.peak_rss_bytes, x.peak_rss_bytes) for x in s]}]
    for ser in projected_series(labels, projected, lambda p: p.memory_bytes):
        b0 = ser["values"][labels.index(base.label)] if base.label in labels else None
        ser["values"] = [ratio(b0, v) for v in ser["values"]]
        ser["name"] += " (memory need)"
        series.append(ser)
    fig = figure(9, max(2.6, 0.28 * len(s) * len(series) + 1.6))
    ax = fig.subplots()
    grouped_barh(ax, labels, series, f"memory reduction vs {safe(base.label)} [x] (higher is smaller)")
    ax.axvline(1.0, color="#333", lw=1)
    ax.legend(loc="lower right", fontsize=7)
    return fig


def _gpu_mean(name: str):
    return lambda x: (x.result.info.get("gpu_telemetry") or {}).get(name, {}).get("mean")


# (column title with unit, value of a Summary, higher is better)
FIGURES = (
    ("decode [tok/s]", lambda x: x.decode.mean if x.decode else None, True),
    ("of bandwidth roofline [%]", lambda x: x.bandwidth_fraction.mean * 100 if x.bandwidth_fraction else None, True),
    ("achieved [GB/s]", lambda x: x.achieved_bandwidth.mean / 1e9 if x.achieved_bandwidth else None, True),
    ("energy [J/token]", lambda x: x.energy.mean if x.energy else None, False),
    ("GPU busy mean [%]", _gpu_mean("gpu_util_pct"), True),
    ("GPU power mean [W]", _gpu_mean("gpu_power_w"), False),
    ("SM clock mean [MHz]", _gpu_mean("gpu_sm_clock_mhz"), True),
)


@register("efficiency-heatmap", "Hardware efficiency at a glance",
          "Colour: each column's rank from worst (light) to best (dark) among the configurations, its raw value "
          "in the cell; '-' = not measured. Measured here only.",
          applies=lambda s, p: any(x.bandwidth_fraction or x.energy for x in s))
def efficiency_heatmap(rows: list[Any], projected=()):
    s = [x for x in summaries(rows) if x.decode]
    cols = [(t, f, hi) for t, f, hi in FIGURES if any(f(x) is not None for x in s)]
    if not s or len(cols) < 2:
        return empty("efficiency heatmap", "no efficiency figure measured")
    import numpy as np

    raw = [[f(x) for t, f, hi in cols] for x in s]
    shade = np.full((len(s), len(cols)), np.nan)
    for j, (_, _, hi) in enumerate(cols):
        vals = [r[j] for r in raw if r[j] is not None]
        lo, top = min(vals), max(vals)
        for i, r in enumerate(raw):
            if r[j] is not None:
                t = 0.5 if top - lo <= 1e-12 * max(abs(top), 1) else (r[j] - lo) / (top - lo)
                shade[i, j] = t if hi else 1 - t
    fig = figure(1.45 * len(cols) + 3.2, 0.42 * len(s) + 1.6)
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(shade), cmap="Blues", vmin=-0.15, vmax=1.15, aspect="auto")
    for i, r in enumerate(raw):
        for j, v in enumerate(r):
            txt = "-" if v is None else f"{v:.3g}"
            dark = not math.isnan(shade[i, j]) and shade[i, j] > 0.6
            ax.text(j, i, txt, ha="center", va="center", fontsize=8, color="white" if dark else "#1d2430")
    ax.set_xticks(range(len(cols)), [t.replace(" [", "\n[") for t, _, _ in cols], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(s)), [safe(x.label) for x in s], fontsize=8)
    return fig


