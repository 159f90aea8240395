"""Exporters for stored results: JSON (every raw sample), CSV (one line per run × measurement), Markdown.

Each takes the rows `Store.results()` returns: a list of (run id, Result). Statistics are derived
here from the raw samples (quantscope.metrics.stats.describe), never read from storage.

>>> print(to_markdown(store.results(limit=5)))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from typing import Any

from quantscope.metrics.stats import Stats, describe
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


def to_json(rows: Rows) -> str:
    """A JSON list of result dicts: id, key_hash, label, the full Result (raw samples included) and,
    per measurement, derived `stats` (n, mean, sd, se, ci95, p50, p90, p99, min, max).

    Non-finite numbers (including samples) are written as null so the output is strict JSON.
    """
    out = []
    for run_id, result in rows:
        d = result.to_dict()
        for m_dict, m in zip(d["measurements"], result.measurements, strict=True):
            m_dict["stats"] = _stats_dict(describe(m.samples))
        out.append({"id": run_id, "key_hash": result.spec.key_hash(), "label": result.spec.label, **d})
    return json.dumps(_finite(out), indent=2, allow_nan=False)


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
            stats = describe(m.samples)
            numbers = [_number(getattr(stats, f)) for f in STAT_FIELDS]
        # numbers stay as written ("-0.5" is a number, not a formula); only text is neutralised
        writer.writerow([run_id, *(neutralise(c) for c in text), *numbers])
    return buf.getvalue()


def _md(cell: Any) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened, HTML tags not interpreted."""
    text = str(cell).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def _fmt(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.4g}"


def to_markdown(rows: Rows) -> str:
    """A Markdown table, one line per (run, measurement): mean ± SD (n) in the stored SI unit."""
    header = ("id", "model", "backend", "quant", "device", "status", "measurement", "unit", "mean", "± sd",
              "n")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for run_id, result, m in _lines(rows):
        spec = result.spec
        cells: list[Any] = [
            run_id, spec.model.label, spec.backend, spec.quant.label, spec.device, result.status,
        ]
        if m is None:
            cells += [result.reason or "", "", "", "", 0]
        else:
            stats = describe(m.samples)
            cells += [m.name, m.unit, _fmt(stats.mean), _fmt(stats.sd), stats.n]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
