"""`quantscope report`: one self-contained HTML file of the newest comparable sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import UserError

Opt = typer.Option


def report_cmd(
    out: Annotated[Path, Opt("--out", "-o", help="HTML file to write.")] = Path("quantscope-report.html"),
    baseline: Annotated[str | None, Opt(help="Run id or key prefix for speed-ups (default: the FP32 "
                                             "reference).")] = None,
    goal: Annotated[str, Opt(help="Goal of the recommendation shown: memory | speed | balanced")] = "balanced",
    max_memory: Annotated[str | None, Opt("--max-memory", help="Peak RSS limit, e.g. 2GiB.")] = None,
    max_kld: Annotated[float | None, Opt("--max-kld", help="Largest mean KLD vs FP32, in nats.")] = None,
    min_top1: Annotated[float | None, Opt("--min-top1", help="Smallest same-top-1 rate vs FP32.")] = None,
    model: Annotated[str | None, Opt("--model", "-m", help="Only rows of this model.")] = None,
    like: Annotated[str | None, Opt("--like", help="Report the rows comparable with this run id or key prefix "
                                                   "(default: the newest sweep).")] = None,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
    hardware: Annotated[list[str] | None, Opt("--hardware", help="Add each row projected onto these catalog "
                                              "ids (comma-separated), labelled projected.")] = None,
) -> None:
    """Write one self-contained HTML report of the newest comparable sweep.

    Inline images, no network at view time: speed with error bars, speed-ups, memory, quality, speed vs
    quality with the Pareto front, latency distributions, hardware efficiency, the recommendation,
    environment and provenance.

    Example: quantscope report --out quantscope-report.html --goal speed
    """
    from quantscope.store import open_store
    from quantscope.advise.group import constraints_from, load_group
    from quantscope.report.build import build_report

    constraints = constraints_from(max_memory, max_kld, min_top1)
    with open_store(store, readonly=True) as st:
        rows, left_out = load_group(st, model, like)
        notes = [f"{left_out} stored configurations with another model, workload, recipe or machine are not "
                 "in this report."] if left_out else []
        if hardware:
            from quantscope.commands.estimate import projected_beside_lines

            notes += projected_beside_lines(rows, hardware, store)
        path = build_report(rows, out, baseline=baseline, goal=goal, constraints=constraints, notes=notes,
                            st=st)
    typer.echo(f"report: {path.resolve()}")
