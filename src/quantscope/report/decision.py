"""The decision matrix (advise/scenarios.py) as the report shows it: a table (html.py) and a tree.

The tree asks the study's questions in order (memory? latency? FP32-exact outputs? a small model?
otherwise balanced); each answer leads to the configuration picked here and on each projected
hardware, the projected picks marked as such.
"""

from __future__ import annotations

import re
from typing import Any

from quantscope.report.views import empty, figure, register, safe, summaries

TREE_ORDER = ("edge", "real-time", "quality-first", "small-model", "balanced")


def matrix(rows: list[Any], projected=()) -> list[Any]:
    """The decision matrix's cells (advise.scenarios.Cell) for these measured and projected rows."""
    from quantscope.advise.scenarios import decision_matrix, measured_candidates, projected_candidates
    from quantscope.report.projected import measured_params

    s = summaries(rows)
    if not s:
        return []
    params = measured_params(s[0].result)
    return decision_matrix(measured_candidates(s, params) + projected_candidates(list(projected), s))


def cell_text(c) -> str:
    if c.winner is None:  # the tree's box holds one line: the reason's head (the table above has all of it)
        m = re.match(r"no decision: the fastest, (\S+) .*?overlaps (\d+) other", c.why)
        return f"no decision: {m.group(1)} and {m.group(2)} others overlap" if m else c.why
    return c.winner.label + (" (projected)" if c.winner.projected else "")


@register("decision-tree", "Which configuration for which deployment",
          "The study's scenarios as questions, each answered with the configuration picked here (measured) and "
          "on each projected hardware (projected: speed and memory from the roofline model, quality measured "
          "here). The table above holds the deciding numbers.", applies=lambda s, p: bool(s))
def decision_tree(rows: list[Any], projected=()):
    cells = matrix(rows, projected)
    if not cells:
        return empty("decision tree")
    by = {(c.scenario.name, c.hardware): c for c in cells}
    hws = list(dict.fromkeys(c.hardware for c in cells))
    scen = {c.scenario.name: c.scenario for c in cells}
    order = [n for n in TREE_ORDER if n in scen]
    fig = figure(9, 0.6 + (0.55 + 0.2 * len(hws)) * len(order))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    n = len(order)
    ax.set_ylim(-0.5, n - 0.5)
    ax.invert_yaxis()
    box = {"boxstyle": "round,pad=0.35", "facecolor": "#f5f8fc", "edgecolor": "#3b6ea5"}
    pick = {"boxstyle": "round,pad=0.35", "facecolor": "#f7faf3", "edgecolor": "#5a9e4b"}
    for i, name in enumerate(order):
        sc = scen[name]
        q = sc.question if name != "balanced" else "Otherwise"
        ax.text(0.01, i, q, ha="left", va="center", fontsize=9.5, bbox=box)
        if i + 1 < n:
            ax.annotate("", (0.1, i + 0.72), (0.1, i + 0.28), arrowprops={"arrowstyle": "->", "color": "#555"})
            ax.text(0.112, i + 0.5, "no", fontsize=7, color="#555", va="center")
        ax.annotate("", (0.36, i), (0.30, i), arrowprops={"arrowstyle": "->", "color": "#555"})
        ax.text(0.315, i - 0.12, "yes" if name != "balanced" else "", fontsize=7, color="#555")
        lines = [f"{sc.title}"] + [f"{'here (measured)' if hw == 'here' else hw + ' (projected)'}: "
                                   f"{safe(cell_text(by[(name, hw)]))[:70]}" for hw in hws]
        ax.text(0.37, i, "\n".join(lines), ha="left", va="center", fontsize=8.5, bbox=pick, linespacing=1.35)
    return fig
