"""`quantscope results` as a rich table: units in the headers, mean ± SD from the raw samples.

Per-row figures come from analysis.summary.summarize, the same reduction the sweep table, the
report and the recommendation read.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quantscope.analysis.summary import fmt_pm, summarize
from quantscope.result import Result

MiB = float(1 << 20)


def _sd(stats, scale: float = 1.0) -> str:
    return fmt_pm(stats.mean * scale, stats.sd * scale) if stats else "-"


def results_table(rows: list[tuple[int, Result]], console: Console | None = None) -> None:
    table = Table(title="quantscope results (newest first)")
    for col in ("id", "model", "config", "device", "status", "decode [tok/s]", "prefill [tok/s]",
                "TTFT [ms]", "peak RSS [MiB]", "weights [MiB]", "PPL", "KLD [nat]", "started (UTC)"):
        table.add_column(col, justify="right" if "[" in col or col in ("id", "PPL") else "left")
    for run_id, r in rows:
        s = summarize(run_id, r)
        table.add_row(
            str(run_id),
            escape(r.spec.model.label),
            escape(s.label),
            r.spec.device,
            r.status if s.ok else escape(f"{r.status}: {(r.reason or '')[:60]}"),
            _sd(s.decode),
            _sd(s.prefill),
            _sd(s.ttft, 1e3),
            f"{s.peak_rss_bytes / MiB:.0f}" if s.peak_rss_bytes else "-",
            f"{s.weight_bytes / MiB:.1f}" if s.weight_bytes else "-",
            fmt_pm(*s.ppl) if s.ppl else "-",
            ("0 (ref)" if s.is_reference else fmt_pm(*s.kld, 3, 1)) if s.kld else "-",
            r.started_at.replace("+00:00", ""),
        )
    (console or Console()).print(table)
