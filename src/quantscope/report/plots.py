"""Plots of stored results. Each function takes results and returns a matplotlib Figure; none reads
or writes a file or touches pyplot's global state (optimum-benchmark's plot_utils does the same).

`rows` is a list of (run id, Result) as Store.results() returns, or of analysis.summary.Summary.
Only ok rows are drawn; error bars are 95 % CIs of the mean for speed, standard errors for quality.

>>> fig = throughput(store.results(status="ok"))  # doctest: +SKIP
>>> fig.savefig(buffer, format="svg")  # the caller decides where it goes  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

from quantscope.analysis.summary import Summary, summarize
from quantscope.present import columns as col
from quantscope.present.units import MiB
from quantscope.report.views import plain_log_ticks, safe  # safe: "$" escaped, or mathtext would eat it

COLORS = ("#3b6ea5", "#e07b39", "#5a9e4b", "#b04a5a", "#7d5ba6")


def _summaries(rows: list[Any]) -> list[Summary]:
    out = [r if isinstance(r, Summary) else summarize(*r) for r in rows]
    return [s for s in out if s.ok]


def _figure(n_rows: int, ncols: int = 1, width: float = 9.0):
    from matplotlib.figure import Figure  # lazy: matplotlib costs ~0.5 s to import

    height = max(2.2, 0.34 * n_rows + 1.3)
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, sharey=True, squeeze=False)[0]
    return fig, list(axes)


def _empty(title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, f"{title}: nothing measured", ha="center", va="center")
    return fig


def _ci(stats) -> float:
    return 0.0 if stats is None or math.isnan(stats.ci95) else stats.ci95


def _barh(ax, labels: list[str], values: list[float], errors: list[float] | None, color: str, title: str) -> None:
    ys = range(len(labels))
    ax.barh(ys, values, xerr=errors, color=color, capsize=3, ecolor="#333")
    ax.set_yticks(list(ys), [safe(x) for x in labels])
    if not ax.yaxis_inverted():  # shared y axes: inverting each panel would flip them back
        ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def throughput(rows: list[Any]):
    """Decode and prefill tok/s per configuration, mean with its 95 % CI."""
    s = [x for x in _summaries(rows) if x.decode]
    if not s:
        return _empty("throughput")
    fig, (a, b) = _figure(len(s), 2)
    labels = [x.label for x in s]
    _barh(a, labels, [x.decode.mean for x in s], [_ci(x.decode) for x in s], COLORS[0], col.DECODE_CI.header)
    _barh(b, labels, [x.prefill.mean if x.prefill else 0 for x in s], [_ci(x.prefill) for x in s], COLORS[1],
          col.PREFILL_CI.header)
    return fig


def speedup(rows: list[Any], baseline: Summary):
    """Decode and prefill speed relative to `baseline`, with the ratio's 95 % CI; 1 = as fast."""
    from quantscope.analysis.compare import ratio_ci

    s = [x for x in _summaries(rows) if x.decode]
    if not s or baseline.decode is None:
        return _empty("speed-up")
    fig, axes = _figure(len(s), 2)
    labels = [x.label for x in s]
    for ax, name, color in zip(axes, ("decode_tps", "prefill_tps"), COLORS, strict=False):
        base = baseline.result.get(name)
        values, errs = [], [[], []]
        for x in s:
            m = x.result.get(name)
            r, lo, hi = ratio_ci(base.samples, m.samples) if base and m else (math.nan,) * 3
            values.append(r if r == r else 0.0)
            errs[0].append(r - lo if lo == lo else 0.0)
            errs[1].append(hi - r if hi == hi else 0.0)
        _barh(ax, labels, values, errs, color, f"{name.split('_')[0]} speed-up vs {safe(baseline.label)} [x]")
        ax.axvline(1.0, color="#333", lw=1)
    return fig


def memory(rows: list[Any]):
    """Weights as loaded, the model file, and the run's peak RSS, in MiB."""
    s = [x for x in _summaries(rows) if x.peak_rss_bytes or x.weight_bytes]
    if not s:
        return _empty("memory")
    fig, (ax,) = _figure(len(s) * 2, 1)
    ys = list(range(len(s)))
    h = 0.27
    for k, (name, attr) in enumerate((("weights", "weight_bytes"), ("model file", "file_bytes"),
                                      ("peak RSS", "peak_rss_bytes"))):
        vals = [(getattr(x, attr) or 0) / MiB for x in s]
        ax.barh([y + (k - 1) * h for y in ys], vals, height=h, color=COLORS[k], label=name)
    ax.set_yticks(ys, [safe(x.label) for x in s])
    ax.invert_yaxis()
    ax.set_xlabel(f"memory [{col.PEAK_RSS.unit}]")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return fig


def quality(rows: list[Any]):
    """PPL ± SE, KLD ± SE against the FP32 reference, and the same-top-1 rate ± SE."""
    s = [x for x in _summaries(rows) if x.ppl or x.kld]
    if not s:
        return _empty("quality")
    fig, axes = _figure(len(s), 3, width=10.5)
    labels = [x.label for x in s]
    _barh(axes[0], labels, [x.ppl[0] if x.ppl else 0 for x in s], [x.ppl[1] if x.ppl else 0 for x in s],
          COLORS[0], f"{col.PPL.header} (± SE)")
    _barh(axes[1], labels, [x.kld[0] if x.kld else 0 for x in s], [x.kld[1] if x.kld else 0 for x in s],
          COLORS[3], f"{col.KLD.name} vs FP32 [{col.KLD.unit}] (± SE)")
    _barh(axes[2], labels, [x.top1[0] * 100 if x.top1 else 0 for x in s],
          [x.top1[1] * 100 if x.top1 else 0 for x in s], COLORS[2], f"{col.TOP1.header} (± SE)")
    lows = [x.top1[0] * 100 for x in s if x.top1]
    if lows:
        axes[2].set_xlim(max(0.0, min(lows) - 5), 100.5)
    return fig


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x = KLD, higher y = speed),
    ordered by x.

    >>> pareto_front([(0.0, 10.0), (0.1, 20.0), (0.2, 15.0), (0.3, 30.0)])
    [0, 1, 3]
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def speed_vs_quality(rows: list[Any]):
    """Decode tok/s against KLD, with the Pareto front: nothing else is both faster and closer to FP32."""
    s = [x for x in _summaries(rows) if x.decode and x.kld]
    if not s:
        return _empty("speed vs quality (needs the quality pass)")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.subplots()
    pts = [(x.kld[0], x.decode.mean) for x in s]
    front = set(pareto_front(pts))
    for i, (x, (kx, ky)) in enumerate(zip(s, pts, strict=True)):
        on = i in front
        ax.errorbar(kx, ky, xerr=x.kld[1] if x.kld[1] == x.kld[1] else 0, yerr=_ci(x.decode), fmt="o",
                    color=COLORS[3] if on else COLORS[0], ms=7 if on else 5, capsize=2)
        ax.annotate(safe(x.label), (kx, ky), textcoords="offset points", xytext=(5, 4), fontsize=7)
    line = sorted(pts[i] for i in front)
    ax.step([p[0] for p in line], [p[1] for p in line], where="post", color=COLORS[3], lw=1, alpha=0.7,
            label="Pareto front")
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel(f"{col.KLD.name} vs FP32 reference [{col.KLD.unit}] (symlog; 0 = the reference)")
    ax.set_ylabel(col.DECODE_CI.header)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def token_latency(rows: list[Any]):
    """Distribution of per-token decode latency (every step of every timed repetition), in ms."""
    s = [x for x in _summaries(rows) if x.token_latency]
    if not s:
        return _empty("per-token latency")
    fig, (ax,) = _figure(len(s), 1)
    data = [[v * 1e3 for v in x.result.get("token_latency_s").samples] for x in s]
    ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=True, flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(s) + 1), [safe(x.label) for x in s])
    ax.invert_yaxis()
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_xlabel("per-token decode latency [ms] (box: quartiles, whiskers: p1-p99)")
    ax.grid(axis="x", alpha=0.3)
    return fig
