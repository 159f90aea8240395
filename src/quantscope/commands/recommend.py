"""`quantscope recommend`: the configuration to ship for a goal under constraints, with its evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option


def recommend_cmd(
    goal: Annotated[str, Opt(help="memory | speed | balanced")] = "balanced",
    max_memory: Annotated[str | None, Opt("--max-memory", help="Peak RSS limit, e.g. 2GiB or 512MiB.")] = None,
    max_kld: Annotated[float | None, Opt("--max-kld", help="Largest mean KLD vs FP32, in nats, e.g. 0.05.")] = None,
    min_top1: Annotated[float | None, Opt("--min-top1", help="Smallest same-top-1 rate vs FP32, e.g. 0.9.")] = None,
    max_acc_drop: Annotated[float | None, Opt("--max-acc-drop", help="Largest task accuracy drop vs the FP32 "
                                              "reference (worst task, lm-eval --tasks), e.g. 0.01 = 1 "
                                              "point.")] = None,
    model: Annotated[str | None, Opt("--model", "-m", help="Only rows of this model (reference or label).")] = None,
    like: Annotated[str | None, Opt("--like", help="Advise on the rows comparable with this run id or key "
                                                   "prefix (default: the newest sweep).")] = None,
    group: Annotated[int | None, Opt("--group", help="Advise on this comparable group (1 = newest; the list "
                                     "is printed with each recommendation).")] = None,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
    hardware: Annotated[list[str] | None, Opt("--hardware", help="Also project each row onto these catalog "
                                              "ids (comma-separated), labelled projected.")] = None,
    scenarios: Annotated[bool, Opt("--scenarios", help="Also the study's scenarios (edge, real time, balanced, "
                                   "quality-first, small model) here and on each --hardware, projected, and "
                                   "its claims judged on these rows.")] = False,
) -> None:
    """The configuration to ship for a goal, with runners-up, exclusions and evidence.

    Winner, runners-up, each excluded row with the constraint that excluded it, and the evidence (numbers
    with CIs), from the newest comparable sweep (a later lone run with another workload does not
    hide it); it says which group it used, what it left out and how to pick another (--group, --like).
    Exit code 1 when nothing satisfies the constraints.

    Example: quantscope recommend --goal speed --max-kld 0.05 --min-top1 0.9
    """

    from quantscope.advise.group import constraints_from, load_group
    from quantscope.advise.recommend import recommend
    from quantscope.advise.text import recommendation_lines
    from quantscope.analysis.compare import contention_notes
    from quantscope.analysis.summary import summarize
    from quantscope.store import open_store
    from quantscope.sweep.table import out_console

    constraints = constraints_from(max_memory, max_kld, min_top1, max_acc_drop)
    # open while the figures are computed: a sample read after close reopens the store (a PostgreSQL
    # connection each)
    with open_store(store, readonly=True) as st:
        chosen = load_group(st, model, like, group)
        rows = chosen.rows
        rec = recommend([summarize(i, r) for i, r in rows], goal, constraints)
        text = recommendation_lines(rec)
    console = out_console()
    for line in text:
        console.print(line, highlight=False)
    for line in chosen.lines() + contention_notes(rows):  # flagged rows named: their speed was left over
        console.print(line, highlight=False, markup=False)
    if hardware:
        from quantscope.commands.estimate import projected_beside_lines

        for line in projected_beside_lines(rows, hardware, store):
            console.print(line, highlight=False, markup=False)
    if scenarios:
        for line in scenario_lines(rows, hardware, store):
            console.print(line, highlight=False, markup=False)
    if rec.winner is None:
        raise typer.Exit(1)


def scenario_lines(rows, hardware: list[str] | None, store=None) -> list[str]:
    """recommend --scenarios: the decision matrix (report/decision.py) and the study's claims, as lines."""
    from quantscope.advise.claims import judge_claims
    from quantscope.advise.scenarios import matrix_lines
    from quantscope.analysis.summary import summarize
    from quantscope.commands.estimate import load_calibration, split
    from quantscope.report.decision import matrix
    from quantscope.report.projected import measured_params, project_rows

    hw = split(hardware)
    projected, notes = [], []
    if hw:  # calibrated as `estimate --store` is: every machine's rows in the store (our GPU runs too)
        calibration, machine = load_calibration(store, hw)
        projected, notes = project_rows(rows, hw, calibration=calibration, machine_id=machine)
    summaries = [summarize(i, r) for i, r in rows]
    sizes = {s.result.spec.model.label: measured_params(s.result) for s in summaries}
    return (notes + matrix_lines(matrix(rows, projected))
            + ["Claims of the study, on these rows:"] + [f"  {v.line()}" for v in judge_claims(summaries, sizes)])
