"""Every view of the report, registered by name: a function (rows, projected) -> matplotlib Figure.

`rows` are (run id, Result) pairs or analysis.summary.Summary; `projected` are report.projected.
ProjectedRow (never stored). A view reads and writes no file and touches no pyplot state; the page
(html.py) and `quantscope plot NAME` draw the same Figure.

Measured and projected never look alike: a measured bar is filled and a measured point is solid; a
projected bar is hatched with no fill and a projected point hollow, its legend entry says "projected"
and its error bar is the projection's interval (PROJECTED_STYLE, projected_label).

>>> VIEWS.get("dashboard").draw(rows, projected)  # doctest: +SKIP
<Figure ...>
>>> sorted(VIEWS.names())[:3]  # doctest: +SKIP
['dashboard', 'decision-tree', 'efficiency-heatmap']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quantscope.analysis.summary import Summary, summarize
from quantscope.registry import Registry

COLORS = ("#3b6ea5", "#e07b39", "#5a9e4b", "#b04a5a", "#7d5ba6", "#8c6d31", "#4a8f9e")
HATCH = "////"
MEASURED_STYLE = {"marker": "o", "linestyle": "none"}
PROJECTED_STYLE = {"marker": "o", "linestyle": "none", "markerfacecolor": "none", "markeredgewidth": 1.5}


@dataclass(frozen=True)
class View:
    name: str
    title: str
    caption: str
    draw: Callable[..., Any]  # (rows, projected=()) -> Figure
    applies: Callable[[list[Summary], list[Any]], bool]  # whether the page shows it for these rows


VIEWS: Registry[View] = Registry("view")


def register(name: str, title: str, caption: str, applies: Callable[[list[Summary], list[Any]], bool] | None = None):
    """Register a view function under `name` (rejects duplicates; a typo suggests the near name)."""
    def deco(fn):
        VIEWS.add(name, View(name, title, caption, fn, applies or (lambda s, p: bool(s))))
        return fn
    return deco


def plain_log_ticks(axis) -> None:
    """A log axis labelled 20, 50, 100, 200 ... rather than 2x10^1: matplotlib's minor labels on a log axis
    spanning one or two decades overlap (seen in the H200 report's per-token latency)."""
    from matplotlib.ticker import FuncFormatter

    def minor(v, _):
        return f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(minor))


def safe(text: str) -> str:
    """User text (model, option names) for a matplotlib label: `$` would start mathtext, so it is escaped.

    >>> safe("cost $5 and $6")
    'cost \\\\$5 and \\\\$6'
    """
    return str(text).replace("$", r"\$")


def summaries(rows: list[Any]) -> list[Summary]:
    """Ok rows as Summaries (Summary passes through)."""
    out = [r if isinstance(r, Summary) else summarize(*r) for r in rows]
    return [s for s in out if s.ok]


def projected_label(hardware: str) -> str:
    return f"projected on {hardware}"


def figure(width: float = 9.0, height: float = 4.0):
    from matplotlib.figure import Figure  # lazy: matplotlib costs ~0.5 s to import

    return Figure(figsize=(width, height), layout="constrained")


def empty(title: str, why: str = "nothing measured"):
    """A small figure that says why there is nothing to draw (never an empty axis)."""
    fig = figure(6, 1.2)
    fig.text(0.5, 0.5, f"{safe(title)}: {why}", ha="center", va="center")
    return fig


def ci(stats) -> float:
    return 0.0 if stats is None or math.isnan(stats.ci95) else stats.ci95


def grouped_barh(ax, labels: list[str], series: list[dict[str, Any]], xlabel: str) -> None:
    """Horizontal bars per label, one bar per series; a series is {name, values, err, projected, color}.
    None values draw no bar. A projected series is hatched with no fill; its err is (low, high) offsets."""
    n = max(1, len(series))
    h = 0.8 / n
    for k, ser in enumerate(series):
        ys = [y + (k - (n - 1) / 2) * h for y in range(len(labels))]
        keep = [i for i, v in enumerate(ser["values"]) if v is not None]
        if not keep:
            continue
        vals = [ser["values"][i] for i in keep]
        err = ser.get("err")
        xerr = None
        if err is not None:
            xerr = [[err[0][i] for i in keep], [err[1][i] for i in keep]]
        style = ({"facecolor": "none", "edgecolor": ser["color"], "hatch": HATCH, "linewidth": 1.0}
                 if ser.get("projected") else {"color": ser["color"]})
        ax.barh([ys[i] for i in keep], vals, height=h, xerr=xerr, capsize=2, ecolor="#333", label=ser["name"],
                **style)
    ax.set_yticks(range(len(labels)), [safe(x) for x in labels])
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)


def projected_series(labels: list[str], projected: list[Any], value, low=None, high=None) -> list[dict[str, Any]]:
    """One hatched series per hardware: value(p) per configuration label (None where not projected)."""
    out = []
    hws = sorted({r.hardware for r in projected if not r.scaled})
    for k, hw in enumerate(hws):
        by_label = {r.label: r.p for r in projected if r.hardware == hw and not r.scaled and r.ok}
        vals = [value(by_label[lb]) if lb in by_label else None for lb in labels]
        ser = {"name": projected_label(hw), "values": vals, "projected": True, "color": COLORS[(k + 1) % len(COLORS)]}
        if low is not None and high is not None:
            ser["err"] = ([v - low(by_label[lb]) if v is not None else 0 for v, lb in zip(vals, labels, strict=True)],
                          [high(by_label[lb]) - v if v is not None else 0 for v, lb in zip(vals, labels, strict=True)])
        out.append(ser)
    return out


def load_all() -> None:
    """Import every module that registers views (the page and `plot --list` see all of them)."""
    from quantscope.report import dashboard, decision, efficiency, legacy, policy, radar, scaling  # noqa: F401


def view_names() -> list[str]:
    load_all()
    return VIEWS.names()


def get_view(name: str) -> View:
    load_all()
    return VIEWS.get(name)
