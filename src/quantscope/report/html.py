"""The HTML report: one self-contained file (plots inline as base64 SVG images, CSS inline, no script,
nothing fetched at view time), rendered by Jinja2 with autoescaping on.

Plots go in as <img src="data:image/svg+xml;base64,..."> rather than inline <svg> markup: an SVG
shown as an image cannot run script, so no text in a plot (a model or option name) can become markup.
A Content-Security-Policy meta tag forbids every network load, so a viewer that tried one would show a
console error (tests/report/test_chromium.py looks for console errors in headless Chromium).

>>> html = render_report(store.results(), baseline=None)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quantscope.advise.recommend import Constraints, Recommendation, evidence, recommend
from quantscope.analysis.summary import Summary, default_baseline, summarize
from quantscope.present import columns
from quantscope.present.units import fmt_gib
from quantscope.result import Result


def figure_data_uri(fig) -> str:
    """The figure as a data: URI of an SVG (text as paths: no font needed where it is viewed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})  # no date: the same data gives the same file
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def result_row(s: Summary, cols=columns.REPORT) -> dict[str, Any]:
    """A row of the results table: the cells of `cols`, and what the template marks the row by."""
    return {"run_id": s.run_id, "label": s.label, "status": s.status, "reason": s.result.reason or "",
            "reference": s.is_reference, "cells": [c.cell(s) for c in cols]}


def efficiency_row(s: Summary, cols=columns.EFFICIENCY) -> dict[str, Any]:
    return {"cells": [c.cell(s) for c in cols]}


def _header(cols) -> list[dict[str, Any]]:
    return [{"title": c.header, "left": c.text} for c in cols]


def provenance_row(s: Summary) -> dict[str, Any]:
    r = s.result
    nll = r.get("nll")
    meta = nll.meta if nll is not None else {}
    decode = r.get("decode_tps")
    return {
        "label": s.label, "run_id": s.run_id, "started_at": r.started_at,
        "stop_rule": r.info.get("stop_rule", "-"), "reps": r.info.get("reps", "-"),
        "stalls": r.info.get("discarded_stalls", 0),
        "warmup": decode.meta.get("warmup_reps", "-") if decode is not None else "-",
        "quality": (f"{meta.get('recipe')} ctx {meta.get('ctx')}, {meta.get('tokens_scored')} tokens in "
                    f"{meta.get('windows')} windows, BOS {meta.get('bos')}, "
                    f"text sha256 {str(meta.get('text_sha256', ''))[:12]}") if meta else
                   str(r.info.get("quality", "-")),
        "options": ", ".join(f"{k}={v}" for k, v in r.spec.options) or "-",
        "git_sha": r.env.git_sha or "-", "machine": r.env.machine_id,
    }


def _plots(summaries: list[Summary], baseline: Summary | None) -> list[dict[str, str]]:
    from quantscope.report import plots, telemetry

    out = [("Throughput per configuration", "Mean of the timed repetitions; error bars: 95 % CI of the mean.",
            plots.throughput(summaries))]
    if baseline is not None:
        out.append((f"Speed-up against {baseline.label} (run {baseline.run_id})",
                    "Ratio of means; error bars: 95 % CI of the ratio (delta method on the log means).",
                    plots.speedup(summaries, baseline)))
    out.append(("Memory", "Weights as loaded (packed data, scales), the model file, and the run's peak RSS "
                          "(worker process, load and timed work).", plots.memory(summaries)))
    if any(s.ppl or s.kld for s in summaries):  # no quality pass: no empty panels either
        out.append(("Quality", "Perplexity and KLD against the FP32 reference on the same tokens, each ± its "
                               "standard error (llama-perplexity's formulas).", plots.quality(summaries)))
    if any(s.kld and s.decode for s in summaries):
        out.append(("Speed against quality", "Red: the Pareto front (nothing else is both faster and closer "
                                             "to the reference); error bars: 95 % CI of decode, SE of KLD.",
                    plots.speed_vs_quality(summaries)))
    out.append(("Per-token latency", "Every decode step of every timed repetition.",
                plots.token_latency(summaries)))
    if telemetry.has_telemetry(summaries):  # CUDA rows only: NVML sampled through the timed work
        out.append(("GPU telemetry", "NVML samples through the timed work: busy time (a kernel ran), board "
                                     "power, die temperature, SM clock.", telemetry.gpu_telemetry(summaries)))
    return [{"title": t, "caption": c, "src": figure_data_uri(f)} for t, c, f in out]


def _template():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("quantscope.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2")


def _recommendation_view(rec: Recommendation) -> dict[str, Any]:
    return {
        "goal": rec.goal,
        "constraints": rec.constraints.describe(),
        "winner": {"label": rec.winner.label, "run_id": rec.winner.run_id, "evidence": evidence(rec.winner)}
        if rec.winner else None,
        "runners_up": [{"label": s.label, "run_id": s.run_id, "evidence": evidence(s)} for s in rec.runners_up],
        "excluded": [{"label": v[0].summary.label, "run_id": v[0].summary.run_id,
                      "why": "; ".join(f"{e.constraint}: {e.detail}" for e in v)} for v in rec.excluded],
        "nearest_miss": {"label": rec.nearest_miss[0].summary.label,
                         "why": "; ".join(e.detail for e in rec.nearest_miss)} if rec.nearest_miss else None,
        "reasons": rec.reasons,
    }


def render_report(rows: list[tuple[int, Result]], *, baseline_id: int | None = None, goal: str = "balanced",
                  constraints: Constraints | None = None, notes: list[str] | None = None,
                  title: str | None = None) -> str:
    """The report of one comparable group of rows (see analysis.selection.group) as an HTML string."""
    rows = sorted(rows, key=lambda x: x[0])  # run order: a sweep's reference first
    summaries = [summarize(i, r) for i, r in rows]
    ok = [s for s in summaries if s.ok]
    baseline = next((s for s in ok if s.run_id == baseline_id), None) or default_baseline(summaries)
    rec = recommend(summaries, goal, constraints or Constraints())
    # no quality pass: no empty quality columns; task accuracy lost against the baseline (the reference)
    shown = columns.shown(columns.REPORT + (columns.acc_drop_column(baseline),), summaries)
    efficiency_cols = columns.shown(columns.EFFICIENCY, ok)  # no GPU: no empty telemetry columns
    first = rows[0][1] if rows else None
    env = asdict(first.env) if first else {}
    workload = asdict(first.spec.workload) if first else {}
    quality = asdict(first.spec.quality) if first else {}
    model = first.spec.model.label if first else "-"
    return _template().render(
        title=title or f"quantscope report: {model}",
        model=model,
        generated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        notes=notes or [],
        results=[result_row(s, shown) for s in summaries],
        results_header=_header(shown), efficiency_header=_header(efficiency_cols),
        not_ok=[result_row(s) for s in summaries if not s.ok],
        efficiency=[efficiency_row(s, efficiency_cols) for s in ok],
        provenance=[provenance_row(s) for s in ok],
        plots=_plots(summaries, baseline) if ok else [],
        baseline=baseline.label if baseline else None,
        rec=_recommendation_view(rec),
        env={k: (", ".join(f"{n} {v}" for n, v in val.items()) if isinstance(val, dict) else
                 " ".join(val) if isinstance(val, list | tuple) else
                 fmt_gib(val) if k == "ram_bytes" else val)
             for k, val in env.items() if k != "cpu_flags"},
        cpu_flags=" ".join(env.get("cpu_flags", ())),
        workload=workload, quality=quality,
        count=len(summaries), ok_count=len(ok),
    )


def write_report(path: Path, html: str) -> Path:
    """Write atomically (temp file + rename): a reader never sees half a report."""
    from quantscope import paths

    return paths.write_text(path, html, mode=0o644)  # a report is meant to be shared
