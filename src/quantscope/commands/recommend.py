"""`quantscope recommend`: the configuration to ship for a goal under constraints, with its evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import UserError

Opt = typer.Option


def constraints_from(max_memory: str | None, max_kld: float | None, min_top1: float | None):
    from quantscope.advise.recommend import Constraints, parse_bytes

    if max_kld is not None and max_kld < 0:
        raise UserError(f"--max-kld must be >= 0 nat, got {max_kld}")
    if min_top1 is not None and not 0 <= min_top1 <= 1:
        raise UserError(f"--min-top1 is a fraction between 0 and 1 (e.g. 0.9), got {min_top1}")
    return Constraints(parse_bytes(max_memory) if max_memory else None, max_kld, min_top1)


def load_group(st, model: str | None = None, like: str | None = None):
    """The comparable group to advise on, one row per configuration: the rows comparable with run `like`
    (a run id or key prefix), else this machine's newest sweep context (any machine if this one has no
    rows). Returns (rows in run order, how many incomparable rows were left out)."""
    from quantscope.analysis.pick import pick
    from quantscope.analysis.selection import group
    from quantscope.env import fingerprint

    rows = st.results()
    if not rows:
        raise UserError(f"store {st.path} holds no runs: run `quantscope sweep` first")
    anchor = pick(st, like)[1] if like else None
    here = fingerprint().machine_id
    machine = anchor.env.machine_id if anchor else here if any(r.env.machine_id == here for _, r in rows) else None
    chosen, left_out = group(rows, machine_id=machine, model=model, anchor=anchor)
    if not chosen:
        raise UserError(f"no stored run matches model {model!r}: see `quantscope results`")
    return sorted(chosen, key=lambda x: x[0]), left_out  # run order: a sweep's reference first


def recommendation_lines(rec) -> list[str]:
    """The recommendation as rich-markup lines (user text escaped)."""
    from rich.markup import escape

    from quantscope.advise.recommend import evidence

    lines = [f"[bold]Recommendation[/] (goal {rec.goal}; constraints: {escape(rec.constraints.describe())})"]
    if rec.winner:
        lines.append(f"  [bold green]ship {escape(rec.winner.label)}[/] (run {rec.winner.run_id})")
        lines.append(f"    {escape(evidence(rec.winner))}")
    else:
        lines.append("  [bold red]no configuration satisfies the constraints[/]")
    lines += [f"  - {escape(r)}" for r in rec.reasons]
    if rec.runners_up:
        lines.append("  runners-up:")
        lines += [f"    {escape(s.label)} (run {s.run_id}): {escape(evidence(s))}" for s in rec.runners_up]
    if rec.excluded:
        lines.append("  excluded:")
        for v in rec.excluded:
            s = v[0].summary
            lines.append(f"    {escape(s.label)} (run {s.run_id}): "
                         + escape("; ".join(f"{e.constraint}: {e.detail}" for e in v)[:240]))
    return lines


def recommend_cmd(
    goal: Annotated[str, Opt(help="memory | speed | balanced")] = "balanced",
    max_memory: Annotated[str | None, Opt("--max-memory", help="Peak RSS limit, e.g. 2GiB or 512MiB.")] = None,
    max_kld: Annotated[float | None, Opt("--max-kld", help="Largest mean KLD vs FP32, in nats, e.g. 0.05.")] = None,
    min_top1: Annotated[float | None, Opt("--min-top1", help="Smallest same-top-1 rate vs FP32, e.g. 0.9.")] = None,
    model: Annotated[str | None, Opt("--model", "-m", help="Only rows of this model (reference or label).")] = None,
    like: Annotated[str | None, Opt("--like", help="Advise on the rows comparable with this run id or key "
                                                   "prefix (default: the newest sweep).")] = None,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
) -> None:
    """The configuration to ship for a goal, with runners-up, exclusions and evidence.

    Winner, runners-up, each excluded row with the constraint that excluded it, and the evidence (numbers
    with CIs), from the newest comparable sweep. Exit code 1 when nothing satisfies the constraints.

    Example: quantscope recommend --goal speed --max-kld 0.05 --min-top1 0.9
    """

    from quantscope.advise.recommend import recommend
    from quantscope.analysis.summary import summarize
    from quantscope.cli import open_store
    from quantscope.sweep.table import out_console

    constraints = constraints_from(max_memory, max_kld, min_top1)
    with open_store(store, readonly=True) as st:
        rows, left_out = load_group(st, model, like)
    rec = recommend([summarize(i, r) for i, r in rows], goal, constraints)
    console = out_console()
    for line in recommendation_lines(rec):
        console.print(line, highlight=False)
    if left_out:
        console.print(f"  ({left_out} stored configurations with another model, workload, recipe or machine "
                      "were not considered)", highlight=False)
    if rec.winner is None:
        raise typer.Exit(1)
