"""Build the HTML report of a group of stored rows: the page, its notes, written atomically.

Shared by `quantscope report` and the sweep, so both write the same page for the same rows.
"""

from __future__ import annotations

from pathlib import Path

from quantscope.errors import UserError


def budget_notes(rows) -> list[str]:
    """What the reader must know about the recipe: a quality budget below the `run` default."""
    from quantscope.spec import QualitySpec

    default = QualitySpec().max_tokens
    budgets = sorted({r.spec.quality.max_tokens for _, r in rows if r.spec.quality.enabled})
    if budgets and budgets[0] < default:
        return [f"Quality budget: {', '.join(map(str, budgets))} scored tokens per configuration (quick "
                f"sweep), below the {default} of `quantscope run`: PPL and KLD carry wider standard errors "
                "and do not compare with runs scored on more tokens."]
    if any(not r.spec.quality.enabled for _, r in rows):
        return ["No quality pass (--no-quality): PPL, KLD and same-top-1 were not measured."]
    return []


def join_sections(pages: list[str]) -> str:
    """One page of several rendered reports: the first whole, each other's body appended as a section
    (same template, so the head and its Content-Security-Policy are the same)."""
    if len(pages) == 1:
        return pages[0]
    bodies = [p[p.index("<body>") + len("<body>"):p.rindex("</body>")] for p in pages]
    sections = "".join(f'<section class="group">{b}</section>\n<hr>\n' for b in bodies)
    first = pages[0]
    return first[:first.index("<body>") + len("<body>")] + "\n" + sections + first[first.rindex("</body>"):]


def calibrate_once(hardware: list[str] | None, st=None):
    """(calibration, machine id) for a report's projections: with the store, every machine's rows in it
    calibrate (a GPU run of ours calibrates that GPU), not only the report's; built once per report."""
    if not hardware:
        return None, None
    from quantscope.env import machine_id
    from quantscope.report.projected import store_calibration

    machine = machine_id()
    return (store_calibration(st, machine) if st is not None else None), machine


def projections(rows, hardware: list[str] | None, calibrated=(None, None)) -> tuple[list, list[str]]:
    """Each ok row projected on each hardware id and on the scaling ladder (report/projected.py), with the
    notes on rows that could not be; nothing without hardware ids. `calibrated`: calibrate_once's pair
    (no calibration: the rows' own)."""
    if not hardware:
        return [], []
    from quantscope.report.projected import SCALING_MODELS, project_rows

    calibration, machine = calibrated
    if machine is None:
        from quantscope.env import machine_id

        machine = machine_id()
    return project_rows(rows, hardware, calibration=calibration, machine_id=machine, models=SCALING_MODELS)


def build_report(rows, out: Path, *, baseline: str | None, goal: str, constraints, notes: list[str],
                 st=None, sections: list[tuple[str, list, list[str]]] | None = None,
                 hardware: list[str] | None = None) -> Path:
    """Write the report of `rows`; with `sections` [(title, rows, notes)], one section per group instead.
    `hardware` (catalog ids): each row also projected there, drawn hatched/hollow and labelled projected."""
    from quantscope.analysis.compare import capped_notes, contention_notes
    from quantscope.report.html import render_report, write_report

    calibrated = calibrate_once(hardware, st)
    if sections:
        pages = []
        for t, r, n in sections:
            projected, why = projections(r, hardware, calibrated)
            pages.append(render_report(r, goal=goal, constraints=constraints, notes=n + why + budget_notes(r)
                                       + contention_notes(r) + capped_notes(r), title=t, projected=projected))
        every = [row for _, r, _ in sections for row in r]
        if len({r.spec.model.label for _, r in every}) > 1:  # several models: the views across them, last
            from quantscope.report.html import cross_model_section

            pages.append(cross_model_section(every, projections(every, hardware, calibrated)[0]))
        return write_report(out, join_sections(pages))

    baseline_id = None
    if baseline is not None:
        from quantscope.analysis.pick import pick

        baseline_id = pick(st, baseline)[0]
        if baseline_id not in {i for i, _ in rows}:
            raise UserError(f"baseline {baseline} is not among the report's rows (another model, workload "
                            "or machine): pick one from `quantscope results`")
    projected, why = projections(rows, hardware, calibrated)
    html = render_report(rows, baseline_id=baseline_id, goal=goal, constraints=constraints,
                         notes=notes + why + budget_notes(rows) + contention_notes(rows) + capped_notes(rows),
                         projected=projected)
    return write_report(out, html)
