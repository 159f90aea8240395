"""Exporters for stored results: JSON (every raw sample), CSV (one line per run × measurement), Markdown.

Each takes the rows `Store.results()` or `Store.iter_results()` returns: (run id, Result) pairs, and
each has a `*_chunks` form that yields its text row by row, so a store of any size streams. Statistics
are describe()'s of the raw samples, read from the store's stats table (store/stats.py: the same
numbers) so CSV and Markdown read no sample; JSON carries the samples, one row in memory at a time.

>>> print(to_markdown(store.results(limit=5)))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

from quantscope.metrics.stats import Stats
from quantscope.result import Measurement, Result

Rows = Iterable[tuple[int, Result]]

STAT_FIELDS = ("n", "mean", "sd", "se", "ci95", "p50", "p90", "p99", "min", "max")
CSV_COLUMNS = (
    "id", "label", "model", "backend", "quant", "device", "status", "reason", "machine_id", "key_hash",
    "started_at", "measurement", "unit", "higher_is_better", *STAT_FIELDS,
)
# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV Injection").
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: undefined figures (the SD of one sample) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _stats_dict(stats: Stats) -> dict[str, float | int]:
    return {name: getattr(stats, name) for name in STAT_FIELDS}


def _json_row(run_id: int, result: Result) -> dict[str, Any]:
    d = result.to_dict()
    for m_dict, m in zip(d["measurements"], result.measurements, strict=True):
        m_dict["stats"] = _stats_dict(m.stats)  # a store's rows: from its stats table, equal to describe()
    return {"id": run_id, "key_hash": result.spec.key_hash(), "label": result.spec.label, **d}


def json_chunks(rows: Rows) -> Iterator[str]:
    """to_json's text, one row at a time: `results --format json` streams a store of any size in the
    memory of one row (json.dumps of the whole list, indent 2, is the same text)."""
    first = True
    for run_id, result in rows:
        text = json.dumps(_finite(_json_row(run_id, result)), indent=2, allow_nan=False)
        yield ("[\n" if first else ",\n") + "\n".join("  " + line for line in text.split("\n"))
        first = False
    yield "[]" if first else "\n]"


def to_json(rows: Rows) -> str:
    """A JSON list of result dicts: id, key_hash, label, the full Result (raw samples included) and,
    per measurement, derived `stats` (n, mean, sd, se, ci95, p50, p90, p99, min, max).

    Non-finite numbers (including samples) are written as null so the output is strict JSON.
    """
    return "".join(json_chunks(rows))


def neutralise(cell: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_PREFIXES):
        return "'" + cell
    return cell


def _number(value: float | int) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return repr(value)


def _lines(rows: Rows) -> Iterable[tuple[int, Result, Measurement | None]]:
    """One line per (run, measurement); a run without measurements (failed, unsupported) still gets one."""
    for run_id, result in rows:
        if not result.measurements:
            yield run_id, result, None
        for m in result.measurements:
            yield run_id, result, m


def to_csv(rows: Rows) -> str:
    """CSV with a header, one line per (run, measurement), the unit in its own column (SI as stored).

    Text cells starting with = + - @ (or tab, CR) are prefixed with ' so a spreadsheet shows them as
    text; numbers are written as numbers.
    """
    return "".join(csv_chunks(rows))


def csv_chunks(rows: Rows) -> Iterator[str]:
    """to_csv's text a line at a time (statistics only: no sample is read from a store)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for run_id, result, m in _lines(rows):
        spec = result.spec
        text = [
            spec.label, spec.model.ref, spec.backend, spec.quant.label, spec.device, result.status,
            result.reason or "", result.env.machine_id, spec.key_hash(), result.started_at,
        ]
        if m is None:
            text += ["", "", ""]
            numbers = [""] * len(STAT_FIELDS)
        else:
            text += [m.name, m.unit, "" if m.higher_is_better is None else str(m.higher_is_better).lower()]
            stats = m.stats
            numbers = [_number(getattr(stats, f)) for f in STAT_FIELDS]
        # numbers stay as written ("-0.5" is a number, not a formula); only text is neutralised
        writer.writerow([run_id, *(neutralise(c) for c in text), *numbers])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()


def _md(cell: Any) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened, HTML tags not interpreted."""
    text = str(cell).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def _fmt(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.4g}"


def to_markdown(rows: Rows) -> str:
    """A Markdown table, one line per (run, measurement): mean ± SD (n) in the stored SI unit."""
    return "".join(markdown_chunks(rows))


def markdown_chunks(rows: Rows) -> Iterator[str]:
    """to_markdown's text a line at a time."""
    header = ("id", "model", "backend", "quant", "device", "status", "measurement", "unit", "mean", "± sd",
              "n")
    yield "| " + " | ".join(header) + " |\n" + "|" + "|".join("---" for _ in header) + "|\n"
    for run_id, result, m in _lines(rows):
        spec = result.spec
        cells: list[Any] = [
            run_id, spec.model.label, spec.backend, spec.quant.label, spec.device, result.status,
        ]
        if m is None:
            cells += [result.reason or "", "", "", "", 0]
        else:
            stats = m.stats
            cells += [m.name, m.unit, _fmt(stats.mean), _fmt(stats.sd), stats.n]
        yield "| " + " | ".join(_md(c) for c in cells) + " |\n"
