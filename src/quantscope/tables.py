"""`quantscope results` as a rich table: units in the headers, mean ± SD from the raw samples.

Per-row figures come from analysis.summary.summarize and become cells through present.columns, the
same columns the sweep table, `compare`, the report and the recommendation use.
"""

from __future__ import annotations

from rich.console import Console

from quantscope.analysis.summary import summarize
from quantscope.present.columns import RESULTS, rich_table
from quantscope.result import Result


def results_table(rows: list[tuple[int, Result]], console: Console | None = None) -> None:
    summaries = [summarize(run_id, r) for run_id, r in rows]
    (console or Console()).print(rich_table(RESULTS, summaries, "quantscope results (newest first)"))
