"""A radar per configuration (the study's multi-dimensional figure): decode speed, prefill speed, memory
saving, quality and energy where measured, each axis normalised 0..1 over the rows shown and labelled
with its raw range, so a shape is read against the others and the numbers stay visible.

Measured rows only: a projection has no quality or energy of its own.
"""

from __future__ import annotations

import math
from typing import Any

from quantscope.report.views import COLORS, empty, figure, register, safe, summaries


def _axes(s) -> list[tuple[str, str, list[float | None]]]:
    """(name, unit, raw value per row) for each axis some row has; higher is better on every axis."""
    out = [("decode", "tok/s", [x.decode.mean if x.decode else None for x in s]),
           ("prefill", "tok/s", [x.prefill.mean if x.prefill else None for x in s])]
    rss = [x.peak_rss_bytes for x in s]
    top = max((v for v in rss if v), default=None)
    out.append(("memory saving", "x", [top / v if v and top else None for v in rss]))
    if any(x.kld for x in s):  # 1 - KLD share: 1 at the reference, 0 at the worst row's KLD
        out.append(("1 - KLD", "nat", [1 - x.kld[0] if x.kld else None for x in s]))
    elif any(x.top1 for x in s):
        out.append(("same top-1", "fraction", [x.top1[0] if x.top1 else None for x in s]))
    if any(x.energy for x in s):  # tokens per joule: higher is better
        out.append(("energy", "tok/J", [1 / x.energy.mean if x.energy and x.energy.mean else None for x in s]))
    return [a for a in out if any(v is not None for v in a[2])]


def normalise(values: list[float | None]) -> list[float | None]:
    """0..1 over the range (0.5 for all-equal), None kept; a radius of 0.1 at the minimum, so no point
    sits in the centre where the shape would vanish.

    >>> normalise([1.0, 3.0, None, 2.0])
    [0.1, 1.0, None, 0.55]
    """
    have = [v for v in values if v is not None]
    lo, hi = min(have), max(have)
    if hi - lo <= 1e-12 * max(abs(hi), 1):
        return [None if v is None else 0.5 for v in values]
    return [None if v is None else round(0.1 + 0.9 * (v - lo) / (hi - lo), 12) for v in values]


def _fmt(v: float) -> str:
    from quantscope.present.units import fmt_num

    return fmt_num(v, 3)


@register("radar", "Each configuration on every axis",
          "Each axis normalised over the configurations shown (outer = best); the raw range of each axis is in "
          "its label. Quality is 1 - KLD against the FP32 reference; energy only where a counter was readable.",
          applies=lambda s, p: len([x for x in s if x.decode]) >= 2)
def radar(rows: list[Any], projected=()):
    s = [x for x in summaries(rows) if x.decode]
    if not s:
        return empty("radar")
    axes = _axes(s)
    if len(axes) < 3:
        return empty("radar", "fewer than three measured axes")
    n = len(s)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = figure(3.4 * ncols + 0.6, 3.9 * nrows + 0.4)
    angles = [2 * math.pi * k / len(axes) for k in range(len(axes))]
    norm = [normalise(a[2]) for a in axes]
    names = [f"{a[0]}\n[{a[1]}]\n{_fmt(min(v for v in a[2] if v is not None))} to "
             f"{_fmt(max(v for v in a[2] if v is not None))}" for a in axes]
    grid = fig.subplots(nrows, ncols, subplot_kw={"projection": "polar"}, squeeze=False)
    for k, ax in enumerate(grid.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        r = [norm[j][k] if norm[j][k] is not None else 0.0 for j in range(len(axes))]
        color = COLORS[k % len(COLORS)]
        ax.plot(angles + angles[:1], r + r[:1], color=color, lw=1.5)
        ax.fill(angles + angles[:1], r + r[:1], color=color, alpha=0.25)
        ax.set_theta_offset(math.pi / 4)  # spokes on the diagonals: their labels stay clear of the next radar
        ax.set_ylim(0, 1.5)  # the ring at 1 is the best value; the band beyond it holds the spoke labels
        ax.spines["polar"].set_visible(False)
        ax.set_yticks([0.5, 1.0], ["", ""])
        ax.set_xticks(angles, [""] * len(angles))
        for a, text in zip(angles, names, strict=True):
            ax.text(a, 1.3, text, ha="center", va="center", fontsize=7,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        ax.set_title(safe(s[k].label) + f"\n(run {s[k].run_id})", fontsize=8, pad=8)
    return fig
