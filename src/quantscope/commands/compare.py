"""`quantscope compare BASELINE [OTHERS...]`: speed ratios with CIs and Welch verdicts, memory and KLD."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import UserError

Opt = typer.Option


def check_comparable(base: tuple[int, object], others: list[tuple[int, object]], force: bool) -> list[str]:
    """Refuse (UserError naming the first differing field) unless `force`; with it, the warnings."""
    from quantscope.analysis.selection import differences

    warnings = []
    for run_id, r in others:
        for name, a, b in differences(base[1], r):
            line = (f"run {run_id} differs from baseline run {base[0]} in {name} ({b!r} vs {a!r})")
            if not force:
                raise UserError(f"{line}: runs compare only with the same {name}; "
                                "pass --force to compare anyway")
            warnings.append(line)
    return warnings


def _summaries(base, others) -> list:
    from quantscope.analysis.summary import summarize

    return [summarize(run_id, r) for run_id, r in [base, *others]]


def verdict_lines(summaries) -> list[str]:
    """Welch's verdict on decode and prefill for every row after the first (the baseline)."""
    from quantscope.analysis.compare import ratio_test

    b, lines = summaries[0], []
    for s in summaries[1:]:
        said = []
        for name in ("decode", "prefill"):
            base_m, m = b.result.get(f"{name}_tps"), s.result.get(f"{name}_tps")
            if base_m is not None and m is not None:
                said.append(f"{name} {ratio_test(base_m.samples, m.samples).verdict}")
        if said:
            lines.append(f"run {s.run_id} {s.label}: " + "; ".join(said))
    return lines


def compare_rows(base, others) -> tuple[list[dict[str, str]], list[str]]:
    """Display cells per row (the baseline first) and the verdict lines; every figure from raw samples."""
    from quantscope.present.columns import cells, compare_columns

    summaries = _summaries(base, others)
    return [cells(compare_columns(summaries[0]), s) for s in summaries], verdict_lines(summaries)


def compare_cmd(
    baseline: Annotated[str, typer.Argument(help="Run id or key-hash prefix of the baseline.")],
    others: Annotated[list[str] | None, typer.Argument(help="Run ids or key-hash prefixes to compare.")] = None,
    force: Annotated[bool, Opt("--force", help="Compare even when model, workload, recipe or machine "
                                               "differ.")] = False,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
    wide: Annotated[bool, Opt("--wide", help="Every column, however wide (default: what fits the "
                                              "terminal).")] = False,
) -> None:
    """Speed ratios against BASELINE with 95% CIs and Welch's t verdicts; memory and KLD differences.

    Refuses rows whose model, workload, quality recipe or machine differ (naming the field) unless --force.

    Example: quantscope compare 1 2 3
    """
    from quantscope.analysis.pick import pick
    from quantscope.store import open_store

    if not others:
        raise UserError("give at least one run to compare with the baseline, e.g. `quantscope compare 1 2`")
    # the store stays open while the table reads samples: closed, each figure would reopen it (on
    # PostgreSQL a connection each, ~80 ms of a `compare` that answers in a second)
    with open_store(store, readonly=True) as st:
        base = pick(st, baseline)
        rest = [pick(st, h) for h in others]
        print_comparison(base, rest, force, wide)


def print_comparison(base: tuple, rest: list[tuple], force: bool, wide: bool) -> None:
    from rich.markup import escape

    from quantscope.analysis.compare import capped_notes, contention_notes
    from quantscope.analysis.selection import varied
    from quantscope.present.columns import compare_columns
    from quantscope.present.labels import run_label
    from quantscope.present.layout import rich_table
    from quantscope.sweep.table import out_console

    for run_id, r in [base, *rest]:
        if r.status != "ok":
            raise UserError(f"run {run_id} ({r.spec.label}) is {r.status}, with nothing measured to compare: "
                            f"{r.reason}")
    warnings = check_comparable(base, rest, force)
    console = out_console()
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(w)} (--force)", highlight=False)
    summaries = _summaries(base, rest)
    differ = varied([base[1], *(r for _, r in rest)])
    cols = compare_columns(summaries[0])
    if wide:
        from quantscope.sweep.table import wide_console

        console = wide_console(console, cols, summaries)
    console.print(rich_table(cols, summaries, f"against baseline run {base[0]} ({run_label(base[1].spec)}); "
                             f"differing: {', '.join(differ) or 'nothing'}", None if wide else console.width))
    verdicts = verdict_lines(summaries)
    for line in verdicts + contention_notes([base, *rest]) + capped_notes([base, *rest]):
        console.print(escape(line), highlight=False)
    console.print(f"machine {escape(base[1].env.machine_id)}; speed ± 95% CI; ratio CIs by the delta method on "
                  "log means; * and verdicts: Welch's t-test on the per-repetition samples, alpha 0.05; "
                  "KLD ± SE.", highlight=False)
