"""Runtimes compared, measured: per runtime (backend) its best decode speed, its least memory, its best
quality, its load/conversion time, and what it could not run here: the study's star table, with the
numbers instead of stars. Pure logic over summaries (analysis.summary); present/ formats.

>>> rows = runtime_rows(summaries)  # doctest: +SKIP
>>> rows[0]["runtime"], rows[0]["best decode"]  # doctest: +SKIP
('llamacpp', 'llamacpp/q4_0/fp32: 59.99 ± 0.78 tok/s')
"""

from __future__ import annotations

from typing import Any

from quantscope.present import columns as col
from quantscope.present.units import fmt_bytes, fmt_seconds

HEADER = ("runtime", "ok / rows", "best decode", "least peak RSS", "best quality (KLD)", "load + convert",
          "could not run here")


def _load_s(s) -> float | None:
    """Seconds the run spent loading (converting included, when the backend converts in its load)."""
    m = s.result.get("load_s")
    if m is not None and m.samples:
        return float(m.value)
    v = s.result.info.get("convert_s")
    return float(v) if isinstance(v, int | float) else None


def runtime_rows(summaries: list[Any]) -> list[dict[str, str]]:
    """One row per runtime (fastest first), each cell naming the configuration that holds the figure."""
    by: dict[str, list] = {}
    for s in summaries:
        by.setdefault(s.result.spec.backend, []).append(s)
    out = []
    for backend, rows in by.items():
        ok = [s for s in rows if s.ok and s.decode]
        fast = max(ok, key=lambda s: s.decode.mean, default=None)
        small = min((s for s in ok if s.peak_rss_bytes), key=lambda s: s.peak_rss_bytes, default=None)
        close = min((s for s in ok if s.kld and not s.is_reference), key=lambda s: s.kld[0], default=None)
        loads = [v for s in ok if (v := _load_s(s)) is not None]
        out.append({
            "runtime": backend, "ok / rows": f"{len(ok)} / {len(rows)}",
            "best decode": f"{fast.label}: {col.DECODE_CI.value(fast)} tok/s" if fast else "-",
            "least peak RSS": f"{small.label}: {fmt_bytes(small.peak_rss_bytes)}" if small else "-",
            "best quality (KLD)": f"{close.label}: {col.KLD.value(close)} nat" if close else
            ("the FP32 reference itself" if any(s.is_reference for s in ok) else "not measured"),
            "load + convert": (f"{fmt_seconds(min(loads))} to {fmt_seconds(max(loads))}" if len(loads) > 1 else
                               fmt_seconds(loads[0])) if loads else "not recorded",
            "could not run here": "; ".join(f"{s.label} ({s.status}: {(s.result.reason or '')[:90]})"
                                            for s in rows if not s.ok) or "-",
            "_decode": fast.decode.mean if fast else 0.0,
        })
    out.sort(key=lambda r: -r["_decode"])
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in out]
