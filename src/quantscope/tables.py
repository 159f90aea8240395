"""`quantscope results` as a rich table: units in the headers, mean ± SD from the raw samples.

Per-row figures come from analysis.summary.summarize and become cells through present.columns, the
same columns the sweep table, `compare`, the report and the recommendation use.
"""

from __future__ import annotations

from rich.console import Console

from quantscope.analysis.summary import summarize
from quantscope.present.columns import MODEL, RESULTS, STATUS, STATUS_REASON
from quantscope.present.layout import natural_width, rich_table
from quantscope.result import Result

# said under the table: `sweep` and `compare` show speed ± 95 % CI, so the same row reads differently there
SPREAD = "speed: mean ± SD of the repetitions (sweep and compare: ± 95% CI); quality ± SE"


def results_table(rows: list[tuple[int, Result]], console: Console | None = None, wide: bool = False) -> None:
    """The table at the console's width (the columns that fit, numbers whole), or every column (`wide`)."""
    summaries = [summarize(run_id, r) for run_id, r in rows]
    console = console or Console()
    if wide:
        console = Console(width=max(console.width, natural_width(RESULTS, summaries)), file=console.file)
        console.print(rich_table(RESULTS, summaries, "quantscope results (newest first)"))
        console.print(SPREAD, highlight=False)
        return
    # compact: the status alone in the table, each reason on its own line below (words wrap there); one
    # model for every row is said once, in the title
    models = {s.result.spec.model.label for s in summaries}
    columns = tuple(STATUS if c is STATUS_REASON else c for c in RESULTS if not (c is MODEL and len(models) == 1))
    title = "quantscope results (newest first)" + (f": {next(iter(models))}" if len(models) == 1 else "")
    console.print(rich_table(columns, summaries, title, console.width))
    console.print(SPREAD, highlight=False)
    for s in summaries:
        if not s.ok:
            console.print(f"  run {s.run_id} {s.status}: {s.result.reason or ''}", highlight=False, markup=False)
