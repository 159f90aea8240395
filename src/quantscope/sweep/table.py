"""The comparison table printed at the end of a sweep: one line per configuration, speed-ups against
the baseline with their 95 % CI, memory and quality. Units in the headers; user text escaped."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quantscope.analysis.summary import Summary, fmt_pm

MiB = float(1 << 20)
LOG_WIDTH = 200  # columns when stdout is not a terminal (a log or CI): rich would otherwise assume 80


def out_console() -> Console:
    """A console on stdout, wide enough for the tables when output goes to a file or a pipe."""
    import sys

    return Console() if sys.stdout.isatty() else Console(width=LOG_WIDTH)


def _speedup(s: Summary, base: Summary | None) -> str:
    from quantscope.analysis.compare import ratio_test

    if base is None or not s.ok or s.decode is None:
        return "-"
    if s is base:
        return "1 (baseline)"
    t = ratio_test(base.result.get("decode_tps").samples, s.result.get("decode_tps").samples)
    mark = "*" if t.significant else ""
    return t.text() + mark


def _cells(s: Summary, baseline: Summary | None) -> dict[str, str]:
    return {
        "run": str(s.run_id),
        "configuration": escape(s.label),
        "status": s.status,
        "decode [tok/s]": fmt_pm(s.decode.mean, s.decode.ci95) if s.decode else "-",
        "speed-up [95% CI]": _speedup(s, baseline),
        "prefill [tok/s]": fmt_pm(s.prefill.mean, s.prefill.ci95) if s.prefill else "-",
        "peak RSS [MiB]": f"{s.peak_rss_bytes / MiB:.0f}" if s.peak_rss_bytes else "-",
        "weights [MiB]": f"{s.weight_bytes / MiB:.1f}" if s.weight_bytes else "-",
        "PPL": fmt_pm(*s.ppl) if s.ppl else "-",
        "KLD [nat]": ("0 (ref)" if s.is_reference else fmt_pm(*s.kld, 3, 1)) if s.kld else "-",
        "same top-1 [%]": fmt_pm(s.top1[0] * 100, s.top1[1] * 100, 4, 2) if s.top1 and not s.is_reference else "-",
    }


def comparison_table(summaries: list[Summary], baseline: Summary | None, title: str) -> Table:
    """The table; quality columns appear only when some row has a quality figure."""
    rows = [_cells(s, baseline) for s in summaries]
    table = Table(title=escape(title), title_justify="left")
    cols = [c for c in rows[0] if c not in ("PPL", "KLD [nat]", "same top-1 [%]") or any(r[c] != "-" for r in rows)]
    for c in cols:
        # the configuration is what a reader scans for: never cut; the numbers may wrap instead
        table.add_column(escape(c), justify="left" if c in ("configuration", "status") else "right",
                         no_wrap=c == "configuration", min_width=max(len(r[c]) for r in rows) if c in (
                             "configuration", "status") else None)
    for r in rows:
        table.add_row(*(r[c] for c in cols))
    return table


def print_comparison(summaries: list[Summary], baseline: Summary | None, title: str,
                     console: Console | None = None) -> None:
    console = console or out_console()
    if not summaries:
        return
    console.print(comparison_table(summaries, baseline, title))
    if baseline is not None:
        console.print(f"speed-up: decode tok/s against {escape(baseline.label)} (run {baseline.run_id}), 95% CI "
                      "of the ratio; * = significant by Welch's t-test (p < 0.05). Speed ± 95% CI, quality ± SE.",
                      highlight=False)
    for s in summaries:
        if not s.ok:
            console.print(f"  {escape(s.label)} {s.status}: {escape(s.result.reason or '')}", highlight=False)
