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
    group: Annotated[list[str] | None, Opt("--group", help="Report this comparable group (1 = newest; "
                                           "repeatable, each a section) or 'all'.")] = None,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
    hardware: Annotated[list[str] | None, Opt("--hardware", help="Add each row projected onto these catalog "
                                              "ids (comma-separated), labelled projected.")] = None,
) -> None:
    """Write one self-contained HTML report of the newest comparable sweep.

    Inline images, no network at view time: speed with error bars, speed-ups, memory, quality, speed vs
    quality with the Pareto front, latency distributions, hardware efficiency, the recommendation,
    environment and provenance.

    The newest sweep by default (a later lone run with another workload does not hide it); --group picks
    others, and several --group (or --group all) make one section each.

    Example: quantscope report --out quantscope-report.html --goal speed
    """
    from quantscope.advise.group import constraints_from, load_group
    from quantscope.commands.estimate import split
    from quantscope.report.build import build_report
    from quantscope.store import open_store

    constraints = constraints_from(max_memory, max_kld, min_top1)
    hw_ids = split(hardware)  # each row also projected there: hatched/hollow in the views, "projected" columns
    with open_store(store, readonly=True) as st:
        numbers = group_numbers(group or [])
        chosen = load_group(st, model, like, numbers[0] if numbers and numbers[0] else None)
        if numbers == [0]:  # all
            numbers = list(range(1, len(chosen.groups) + 1))
        if len(numbers) > 1:
            if baseline is not None:
                raise UserError("--baseline names one run: report one group with it, not several")
            picks = [load_group(st, model, None, n) for n in numbers]
            sections = [(f"group {p.number} of {len(p.groups)}: {p.lines()[0].split(': ', 1)[1]}", p.rows,
                         []) for p in picks]
            path = build_report(chosen.rows, out, baseline=None, goal=goal, constraints=constraints, notes=[],
                                st=st, sections=sections, hardware=hw_ids)
            typer.echo(f"report: {path.resolve()} ({len(sections)} groups as sections)")
            return
        notes = chosen.lines()
        if hw_ids:  # the figures themselves are in the views (hatched/hollow) and the decision matrix
            notes.append(f"PROJECTED on {', '.join(hw_ids)}, not measured: drawn hatched or hollow with their "
                         "intervals in the views and in the decision matrix's columns; `quantscope estimate` "
                         "or `recommend --hardware` prints each row's projected figures")
        path = build_report(chosen.rows, out, baseline=baseline, goal=goal, constraints=constraints, notes=notes,
                            st=st, hardware=hw_ids)
    for line in chosen.lines():
        typer.echo(line)
    typer.echo(f"report: {path.resolve()}")


def group_numbers(values: list[str]) -> list[int]:
    """--group values as numbers, 0 for 'all'.

    >>> group_numbers(["2", "1"]), group_numbers(["all"])
    ([2, 1], [0])
    """
    if "all" in values:
        return [0]
    try:
        return [int(v) for v in values]
    except ValueError:
        raise UserError(f"--group takes a group number (1 = newest) or 'all', got {values}") from None
