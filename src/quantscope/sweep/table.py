"""The comparison table printed at the end of a sweep: one line per configuration, decode ratios against
the baseline with their 95 % CI, memory and quality. The columns are present.columns' (sweep_columns);
units in the headers; user text escaped."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quantscope.analysis.summary import Summary
from quantscope.present.columns import sweep_columns
from quantscope.present.layout import natural_width, rich_table

LOG_WIDTH = 200  # columns when stdout is not a terminal (a log or CI): rich would otherwise assume 80


def out_console() -> Console:
    """A console on stdout, wide enough for the tables when output goes to a file or a pipe."""
    import sys

    return Console() if sys.stdout.isatty() else Console(width=LOG_WIDTH)


def comparison_table(summaries: list[Summary], baseline: Summary | None, title: str,
                     width: int | None = None) -> Table:
    """The table; quality columns appear only when some row has a quality figure; with `width`, the
    columns that fit it."""
    return rich_table(sweep_columns(baseline, summaries), summaries, title, width)


def wide_console(console: Console, columns, summaries) -> Console:
    """A console as wide as the table of every column (--wide), writing where `console` writes."""
    return Console(width=max(console.width, natural_width(columns, summaries)), file=console.file)


def print_comparison(summaries: list[Summary], baseline: Summary | None, title: str,
                     console: Console | None = None, wide: bool = False) -> None:
    console = console or out_console()
    if not summaries:
        return
    if wide:
        console = wide_console(console, sweep_columns(baseline, summaries), summaries)
    console.print(comparison_table(summaries, baseline, title, None if wide else console.width))
    if baseline is not None:
        console.print(f"decode ratio: tok/s against {escape(baseline.label)} (run {baseline.run_id}), 95% CI "
                      "of the ratio; * = significant by Welch's t-test (p < 0.05). Speed ± 95% CI, quality ± SE.",
                      highlight=False)
    for s in summaries:
        if not s.ok:
            console.print(f"  {escape(s.label)} {s.status}: {escape(s.result.reason or '')}", highlight=False)
