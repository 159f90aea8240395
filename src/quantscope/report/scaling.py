"""Across model sizes: each quantization's speed-up against model size, and memory against model size
(the study's slides 6 and 13), from the measured models and the scaling study (report/projected.py:
every configuration projected onto SCALING_MODELS). Measured points are solid, projected ones hollow on
dashed lines and named "projected" in the legend."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from quantscope.present.units import GiB
from quantscope.report.views import (
    COLORS,
    MEASURED_STYLE,
    PROJECTED_STYLE,
    empty,
    figure,
    projected_label,
    register,
    safe,
    summaries,
)


def _by_model(s) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for x in s:
        out[x.result.spec.model.label].append(x)
    return out


def _params(x) -> float | None:
    from quantscope.report.projected import measured_params

    return measured_params(x.result)


def across_sizes(s, projected) -> bool:
    """Worth a figure: projected sizes, or measured rows of two models or more (one size is one column of dots)."""
    return bool(s) and (any(r.ok for r in projected) or len(_by_model(s)) > 1)


def _colors(labels) -> dict[str, str]:
    return {lb: COLORS[k % len(COLORS)] for k, lb in enumerate(sorted(set(labels)))}


def _legend(fig, axes) -> None:
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lb in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lb, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=min(3, len(seen)), fontsize=7)


@register("size-vs-speedup", "Model size against each quantization's speed-up",
          "Decode speed-up of each configuration against its model's baseline (the FP32 reference's "
          "configuration) on the same hardware. Solid: measured here; hollow on dashed lines: projected on "
          "catalog hardware for the store's models and the scaling ladder (1B-70B), never measured.",
          applies=across_sizes)
def size_vs_speedup(rows: list[Any], projected=()):
    from quantscope.analysis.summary import default_baseline

    s = [x for x in summaries(rows) if x.decode]
    hws = sorted({r.hardware for r in projected if r.ok})
    if not s and not hws:
        return empty("size vs speed-up")
    colors = _colors([x.label for x in s] + [r.label for r in projected])
    fig = figure(4.2 * (1 + len(hws)) + 0.5, 4.6)
    axes = list(fig.subplots(1, 1 + len(hws), sharex=True, sharey=True, squeeze=False)[0])
    ax = axes[0]
    drawn = 0
    for model_rows in _by_model(s).values():
        base = default_baseline(model_rows)
        size = _params(model_rows[0])
        if base is None or size is None:
            continue
        for x in model_rows:
            ax.plot([size], [x.decode.mean / base.decode.mean], color=colors[x.label], label=f"{safe(x.label)}",
                    ms=7, **MEASURED_STYLE)
            drawn += 1
    ax.set_title("measured here", fontsize=10)
    if not drawn:
        ax.text(0.5, 0.5, "model size unknown", ha="center", va="center", transform=ax.transAxes)
    base_labels = {default_baseline(m).label for m in _by_model(s).values() if default_baseline(m)}
    for ax, hw in zip(axes[1:], hws, strict=True):
        here = [r for r in projected if r.hardware == hw and r.ok]
        base_at = {r.model: r.p.decode_tps for r in here if r.label in base_labels}
        lines: dict[str, list] = defaultdict(list)
        for r in here:
            if r.model in base_at:
                lines[r.label].append((r.params, r.p.decode_tps / base_at[r.model]))
        for lb, pts in lines.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colors[lb], ls="--", lw=1, marker="o",
                    markerfacecolor="none", markeredgewidth=1.5, label=f"{safe(lb)} (projected)")
        ax.set_title(projected_label(hw), fontsize=10)
        if not lines:
            ax.text(0.5, 0.5, "nothing projected", ha="center", va="center", transform=ax.transAxes)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("model size [parameters] (log)")
        ax.axhline(1.0, color="#333", lw=0.8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("decode speed-up vs baseline [x]")
    _legend(fig, axes)
    return fig


@register("memory-scalability", "Memory against model size",
          "Solid: peak RSS measured here for each stored model. Hollow on dashed lines: projected memory need "
          "(weights, KV cache, activations, runtime reserve) for the scaling ladder; horizontal lines: each "
          "projected hardware's memory. A point above a line does not fit that hardware.",
          applies=across_sizes)
def memory_scalability(rows: list[Any], projected=()):
    from quantscope.hardware.catalog import get_hardware

    s = [x for x in summaries(rows) if x.peak_rss_bytes]
    hws = sorted({r.hardware for r in projected if r.p.memory_bytes})
    if not s and not hws:
        return empty("memory scalability")
    colors = _colors([x.label for x in s] + [r.label for r in projected])
    fig = figure(9.5, 5.6)
    ax = fig.subplots()
    for x in s:
        size = _params(x)
        if size is not None:
            ax.plot([size], [x.peak_rss_bytes / GiB], color=colors[x.label], ms=7, label=safe(x.label),
                    **MEASURED_STYLE)
    if hws:  # the need depends on the model and format, and on the hardware only through its reserve
        first = hws[0]
        lines: dict[str, list] = defaultdict(list)
        for r in projected:
            if r.hardware == first and r.p.memory_bytes:
                lines[r.label].append((r.params, r.p.memory_bytes / GiB))
        for lb, pts in lines.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colors[lb], lw=1,
                    label=f"{safe(lb)} (projected need on {first})", **{**PROJECTED_STYLE, "linestyle": "--"})
        for k, hw in enumerate(hws):
            cap = get_hardware(hw).memory_bytes / GiB
            ax.axhline(cap, color="#555", lw=0.8, ls=":")
            ax.annotate(f"{hw}: {cap:.0f} GiB", (1.0, cap), xycoords=("axes fraction", "data"), ha="right",
                        va="bottom", fontsize=7, color="#555", xytext=(-4, 1 + 7 * k), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model size [parameters] (log)")
    ax.set_ylabel("memory [GiB] (log)")
    ax.grid(alpha=0.3)
    _legend(fig, [ax])
    return fig
