"""GPU telemetry over the timed work, one line per configuration (the study's slide 8 had these as
bars; a time series also shows warm-up ramps, throttling and idle gaps between kernels).

A plot takes rows and returns a Figure; it reads and writes no files (as report/plots.py). The series
are the NVML samples metrics/gpu_telemetry.py stored with each run: Measurement samples plus the
sample times in its meta ("t_s").
"""

from __future__ import annotations

from typing import Any

from quantscope.analysis.summary import Summary, summarize

PANELS = (("gpu_util_pct", "GPU busy [%]"), ("gpu_power_w", "power [W]"), ("gpu_temp_c", "temperature [°C]"),
          ("gpu_sm_clock_mhz", "SM clock [MHz]"))


def has_telemetry(rows: list[Any]) -> bool:
    return any(_series(s, name) for s in _summaries(rows) for name, _ in PANELS)


def _summaries(rows: list[Any]) -> list[Summary]:
    out = [r if isinstance(r, Summary) else summarize(*r) for r in rows]
    return [s for s in out if s.ok]


def _series(s: Summary, name: str) -> tuple[list[float], list[float]] | None:
    m = s.result.get(name)
    if m is None or not m.samples:
        return None
    t = m.meta.get("t_s") or []
    return (list(t), list(m.samples)) if len(t) == len(m.samples) else None


def gpu_telemetry(rows: list[Any]):
    """Utilisation, power, temperature and SM clock through the timed work, per configuration.

    A panel whose quantity no row reported (NVML refused it) says so instead of drawing nothing.
    """
    from matplotlib.figure import Figure  # lazy: matplotlib costs ~0.5 s to import

    from quantscope.report.views import safe

    summaries = _summaries(rows)
    fig = Figure(figsize=(10, 6), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).flatten()
    for ax, (name, label) in zip(axes, PANELS, strict=True):
        drawn = 0
        for s in summaries:
            series = _series(s, name)
            if series:
                ax.plot(*series, label=f"{safe(s.label)} (run {s.run_id})", linewidth=1.2)
                drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "not reported by NVML", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for ax in axes[2:]:
        ax.set_xlabel("seconds since the timed work began")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8)
    return fig
