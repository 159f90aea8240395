"""`quantscope compare BASELINE [OTHERS...]`: speed ratios with CIs and Welch verdicts, memory and KLD."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import UserError

Opt = typer.Option
MiB = float(1 << 20)


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


def compare_rows(base, others) -> tuple[list[dict[str, str]], list[str]]:
    """Display cells per row (the baseline first) and the verdict lines; every figure from raw samples."""
    from quantscope.analysis.compare import mean_difference, ratio_test
    from quantscope.analysis.summary import fmt_pm, summarize

    b = summarize(*base)
    out, verdicts = [], []
    for run_id, r in [base, *others]:
        s = summarize(run_id, r)
        row = {"run": str(run_id), "config": s.label}
        said = []
        for name, stats in (("decode", s.decode), ("prefill", s.prefill)):
            row[f"{name} [tok/s]"] = fmt_pm(stats.mean, stats.ci95) + f" (N={stats.n})" if stats else "-"
            base_m, m = b.result.get(f"{name}_tps"), r.get(f"{name}_tps")
            if run_id == base[0]:
                row[f"{name} ratio [95% CI]"] = "baseline"
            elif base_m is None or m is None:
                row[f"{name} ratio [95% CI]"] = "-"
            else:
                t = ratio_test(base_m.samples, m.samples)
                row[f"{name} ratio [95% CI]"] = t.text() + ("*" if t.significant else "")
                said.append(f"{name} {t.verdict}")
        for name, v, bv in (("peak RSS", s.peak_rss_bytes, b.peak_rss_bytes),
                            ("weights", s.weight_bytes, b.weight_bytes)):
            if v is None:
                row[f"{name} [MiB]"] = "-"
            elif run_id == base[0] or bv is None:
                row[f"{name} [MiB]"] = f"{v / MiB:.1f}"
            else:
                row[f"{name} [MiB]"] = f"{v / MiB:.1f} ({(v - bv) / MiB:+.1f}, {v / bv:.2f}x)"
        row["KLD [nat]"] = fmt_pm(*s.kld, digits=3, err_digits=1) if s.kld else "-"
        kb, ko = b.result.get("kld"), r.get("kld")
        if run_id != base[0] and s.kld and b.kld:
            if kb is not None and ko is not None:
                d = mean_difference(kb.samples, ko.samples)
                row["ΔKLD [nat]"] = f"{d.diff:+.3g} ± {d.se:.1g}" + (" (paired)" if d.paired else "")
            else:  # the baseline is the reference itself (KLD 0 by definition)
                row["ΔKLD [nat]"] = f"{s.kld[0] - b.kld[0]:+.3g} ± {s.kld[1]:.1g}"
        else:
            row["ΔKLD [nat]"] = "-"
        out.append(row)
        if said:
            verdicts.append(f"run {run_id} {s.label}: " + "; ".join(said))
    return out, verdicts


def compare_cmd(
    baseline: Annotated[str, typer.Argument(help="Run id or key-hash prefix of the baseline.")],
    others: Annotated[list[str] | None, typer.Argument(help="Run ids or key-hash prefixes to compare.")] = None,
    force: Annotated[bool, Opt("--force", help="Compare even when model, workload, recipe or machine "
                                               "differ.")] = False,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
) -> None:
    """Speed ratios against BASELINE with 95% CIs and Welch's t verdicts; memory and KLD differences.

    Refuses rows whose model, workload, quality recipe or machine differ (naming the field) unless --force.

    Example: quantscope compare 1 2 3
    """
    from rich.markup import escape
    from rich.table import Table

    from quantscope.analysis.pick import pick
    from quantscope.analysis.selection import varied
    from quantscope.store import open_store
    from quantscope.sweep.table import out_console

    if not others:
        raise UserError("give at least one run to compare with the baseline, e.g. `quantscope compare 1 2`")
    with open_store(store, readonly=True) as st:
        base = pick(st, baseline)
        rest = [pick(st, h) for h in others]
    for run_id, r in [base, *rest]:
        if r.status != "ok":
            raise UserError(f"run {run_id} ({r.spec.label}) is {r.status}, with nothing measured to compare: "
                            f"{r.reason}")
    warnings = check_comparable(base, rest, force)
    console = out_console()
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(w)} (--force)", highlight=False)
    rows, verdicts = compare_rows(base, rest)
    differ = varied([base[1], *(r for _, r in rest)])
    table = Table(title=f"against baseline run {base[0]} ({escape(base[1].spec.label)}); "
                        f"differing: {', '.join(differ) or 'nothing'}")
    for col in rows[0]:
        table.add_column(escape(col), justify="left" if col == "config" else "right", no_wrap=col == "config")
    for row in rows:
        table.add_row(*(escape(v) for v in row.values()))
    console.print(table)
    for line in verdicts:
        console.print(escape(line), highlight=False)
    console.print(f"machine {escape(base[1].env.machine_id)}; speed ± 95% CI; ratio CIs by the delta method on "
                  "log means; * and verdicts: Welch's t-test on the per-repetition samples, alpha 0.05; "
                  "KLD ± SE.", highlight=False)
