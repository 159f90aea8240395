"""`quantscope report`: one self-contained HTML file of the newest comparable sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import UserError

Opt = typer.Option


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


def build_report(rows, out: Path, *, baseline: str | None, goal: str, constraints, notes: list[str],
                 st=None) -> Path:
    from quantscope.report.html import render_report, write_report

    baseline_id = None
    if baseline is not None:
        from quantscope.analysis.pick import pick

        baseline_id = pick(st, baseline)[0]
        if baseline_id not in {i for i, _ in rows}:
            raise UserError(f"baseline {baseline} is not among the report's rows (another model, workload "
                            "or machine): pick one from `quantscope results`")
    html = render_report(rows, baseline_id=baseline_id, goal=goal, constraints=constraints,
                         notes=notes + budget_notes(rows))
    return write_report(out, html)


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
) -> None:
    """Write one self-contained HTML report of the newest comparable sweep.

    Inline images, no network at view time: speed with error bars, speed-ups, memory, quality, speed vs
    quality with the Pareto front, latency distributions, hardware efficiency, the recommendation,
    environment and provenance.

    Example: quantscope report --out quantscope-report.html --goal speed
    """
    from quantscope.cli import open_store
    from quantscope.commands.recommend import constraints_from, load_group

    constraints = constraints_from(max_memory, max_kld, min_top1)
    with open_store(store, readonly=True) as st:
        rows, left_out = load_group(st, model, like)
        notes = [f"{left_out} stored configurations with another model, workload, recipe or machine are not "
                 "in this report."] if left_out else []
        path = build_report(rows, out, baseline=baseline, goal=goal, constraints=constraints, notes=notes,
                            st=st)
    typer.echo(f"report: {path.resolve()}")
