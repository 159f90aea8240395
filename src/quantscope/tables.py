"""Rich tables of stored results: units in the headers, mean ± SD from the raw samples."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from quantscope.display import MiB, fmt
from quantscope.result import Result


def _ms(r: Result, name: str, scale: float = 1.0) -> str:
    m = r.get(name)
    if m is None:
        return "-"
    s = m.stats
    return fmt(s.mean * scale, 4) if s.n < 2 else f"{fmt(s.mean * scale, 4)} ± {fmt(s.sd * scale, 2)}"


def _ppl(r: Result) -> str:
    from quantscope.quality.summary import ppl_text

    return ppl_text(r)


def _kld(r: Result) -> str:
    from quantscope.quality.summary import kld_text

    return kld_text(r)


def results_table(rows: list[tuple[int, Result]], console: Console | None = None) -> None:
    table = Table(title="quantscope results (newest first)")
    for col in ("id", "model", "config", "device", "status", "decode [tok/s]", "prefill [tok/s]",
                "TTFT [ms]", "peak RSS [MiB]", "weights [MiB]", "PPL", "KLD [nat]", "started (UTC)"):
        table.add_column(col, justify="right" if "[" in col or col in ("id", "PPL") else "left")
    for run_id, r in rows:
        ok = r.status == "ok"
        table.add_row(
            str(run_id),
            r.spec.model.label,
            f"{r.spec.backend}/{r.spec.quant.label}",
            r.spec.device,
            r.status if ok else f"{r.status}: {(r.reason or '')[:60]}",
            _ms(r, "decode_tps"),
            _ms(r, "prefill_tps"),
            _ms(r, "ttft_s", 1e3),
            _ms(r, "peak_rss_bytes", 1 / MiB),
            _ms(r, "weight_bytes", 1 / MiB),
            _ppl(r) if ok else "-",
            _kld(r) if ok else "-",
            r.started_at.replace("+00:00", ""),
        )
    (console or Console()).print(table)
