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
from quantscope.advise.runtimes import HEADER as RUNTIME_HEADER
from quantscope.advise.runtimes import runtime_rows
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


# The page's views in reading order (report/views.py registers each); the dashboard opens the page and the
# decision tree sits with the decision matrix, so both are placed apart from the rest.
PAGE = ("dashboard", "decision-tree", "throughput", "speedup", "memory", "memory-reduction", "quality",
        "speed-vs-quality", "radar", "token-latency", "efficiency-heatmap", "gpu-telemetry", "bits-per-layer",
        "size-vs-speedup", "memory-scalability")


def _plots(summaries: list[Summary], baseline: Summary | None, projected=()) -> list[dict[str, str]]:
    """Every view of PAGE that applies to these rows, drawn (name, title, caption, data URI)."""
    from quantscope.report.views import get_view

    ok = [s for s in summaries if s.ok]
    views = []
    for name in PAGE:
        v = get_view(name)
        if not v.applies(ok, list(projected)):
            continue
        if name == "speedup":
            if baseline is None:
                continue
            views.append((name, f"Speed-up against {baseline.label} (run {baseline.run_id})", v.caption))
        else:
            views.append((name, v.title, v.caption))
    uris = _draw_all([name for name, _, _ in views], (ok, list(projected), baseline))
    return [{"name": n, "title": t, "caption": c, "src": uri} for (n, t, c), uri in zip(views, uris, strict=True)]


_ROWS: tuple = ()  # what the forked drawing processes inherit (set just before they start)


def _draw(name: str) -> str:
    from quantscope.report.views import get_view

    ok, projected, baseline = _ROWS
    v = get_view(name)
    fig = v.draw(ok, projected, baseline=baseline) if name == "speedup" else v.draw(ok, projected)
    uri = figure_data_uri(fig)
    fig.clear()  # free its memory now: a page of many rows draws many figures
    return uri


# Views with a panel per configuration: the longest to draw (radar ~3x a one-panel view), claimed first so
# that the cores drawing in parallel finish together rather than one waiting on the radar at the end.
DRAW_FIRST = ("radar", "dashboard")


def _draw_all(names: list[str], rows: tuple) -> list[str]:
    """Draw the views on every core: drawing and writing the SVGs is most of a report's time (0.4-3.6 s CPU
    a view here), and views are independent. Forked children and this process claim views one at a time
    from a pipe holding their indices (one byte each: a pipe read of one byte is atomic), so the work
    balances itself; each child sends its SVGs back through its own pipe and leaves with os._exit, so
    nothing it inherited is finalised: a PostgreSQL connection the parent still holds would otherwise be
    closed under it (a pool's workers exit normally and do close it). Every sample a view may read is
    read here first: a child must never use the store's connection (samples are read lazily,
    store/stats.py), which is the parent's and not safe across fork. A view a failed child claimed is
    drawn here at the end. Where fork is unavailable or unsafe (another thread is running: a Ray
    driver's, a progress bar's), for one view, or for more than 255, they are drawn here in turn."""
    import os
    import pickle
    import threading

    global _ROWS
    _ROWS = rows
    try:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(len(names), cores)
        if workers < 2 or len(names) > 255 or threading.active_count() > 1 or not hasattr(os, "fork"):
            return [_draw(name) for name in names]
        for summary in [*rows[0], *([rows[2]] if rows[2] is not None else [])]:
            for m in summary.result.measurements:
                if getattr(m.samples, "deferred", False):
                    m.samples.values  # noqa: B018 - read now, in the process that owns the connection
        order = sorted(range(len(names)), key=lambda i: (names[i] not in DRAW_FIRST, i))
        queue, put = os.pipe()
        os.write(put, bytes(order))  # < 64 KiB: fits the pipe's buffer, so this never blocks
        os.close(put)  # every claim after the last index reads b"" (end of file)

        def claimed() -> dict[int, str]:
            drawn = {}
            while index := os.read(queue, 1):
                drawn[index[0]] = _draw(names[index[0]])
            return drawn

        children = []
        for _ in range(1, workers):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: draw what it claims, send, leave without running any finaliser
                code = 0
                try:
                    os.close(read)
                    with os.fdopen(write, "wb") as out:
                        pickle.dump(claimed(), out)
                except BaseException:  # noqa: BLE001 - the parent draws what this child claimed
                    code = 1
                os._exit(code)
            os.close(write)
            children.append((pid, read))
        drawn = claimed()
        os.close(queue)
        for pid, read in children:
            with os.fdopen(read, "rb") as f:
                data = f.read()
            _, status = os.waitpid(pid, 0)
            if status == 0 and data:
                drawn.update(pickle.loads(data))  # our own child's bytes, never a file's
        return [drawn[i] if i in drawn else _draw(names[i]) for i in range(len(names))]
    finally:
        _ROWS = ()


def _matrix_view(summaries: list[Summary], projected) -> dict[str, Any]:
    """The decision matrix as the template's table: scenario rows, one column per hardware."""
    from quantscope.report.decision import cell_text, matrix

    cells = matrix([s for s in summaries if s.ok], projected)
    hws = list(dict.fromkeys(c.hardware for c in cells))
    rows = []
    for title in dict.fromkeys(c.scenario.title for c in cells):
        mine = {c.hardware: c for c in cells if c.scenario.title == title}
        rows.append({"scenario": title, "cells": [{"pick": cell_text(mine[h]) if mine[h].winner else "-",
                                                   "why": mine[h].why, "projected": h != "here"} for h in hws]})
    return {"hardware": ["here (measured)" if h == "here" else f"{h} (projected)" for h in hws], "rows": rows}


CROSS_MODEL = ("size-vs-speedup", "memory-scalability")


def cross_model_section(rows: list[tuple[int, Result]], projected=()) -> str:
    """The views across every model of a report of several groups, as one page (join_sections appends its
    body): model size against speed-up and against memory, each model's rows against its own baseline."""
    from markupsafe import escape

    from quantscope.report.views import get_view

    ok = [summarize(i, r) for i, r in rows if r.status == "ok"]
    parts = ["<h2 id=\"across-models\">Across models</h2>"]
    for name in CROSS_MODEL:
        v = get_view(name)
        fig = v.draw(ok, projected)
        title = escape(v.title)
        parts.append(f"<h2>{title}</h2>\n<figure><img src=\"{figure_data_uri(fig)}\" alt=\"{title}\">"
                     f"<figcaption>{escape(v.caption)}</figcaption></figure>")
    return "<body>\n" + "\n".join(parts) + "\n</body>"


def _claims(summaries: list[Summary]) -> list[dict[str, str]]:
    """The study's testable claims (advise/claims.py) judged on these rows."""
    from quantscope.advise.claims import judge_claims
    from quantscope.report.projected import measured_params

    sizes = {s.result.spec.model.label: measured_params(s.result) for s in summaries}
    return [{"claim": v.claim, "verdict": v.verdict, "why": v.why} for v in judge_claims(summaries, sizes)]


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
                  title: str | None = None, projected=()) -> str:
    """The report of one comparable group of rows (see analysis.selection.group) as an HTML string;
    `projected` (report.projected.ProjectedRow) adds the projected bars, points and decision columns."""
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
    drawn = _plots(summaries, baseline, projected) if ok else []
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
        plots=[p for p in drawn if p["name"] not in ("dashboard", "decision-tree")],
        dashboard=next((p for p in drawn if p["name"] == "dashboard"), None),
        tree=next((p for p in drawn if p["name"] == "decision-tree"), None),
        matrix=_matrix_view(summaries, projected) if ok else None,
        projected_hw=sorted({p.hardware for p in projected}),
        runtimes_header=RUNTIME_HEADER, runtimes=runtime_rows(summaries),
        claims=_claims(summaries),
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
