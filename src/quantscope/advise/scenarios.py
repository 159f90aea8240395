"""The decision matrix: the study's deployment scenarios evaluated on this machine (measured rows) and on
catalog hardware (projected rows), scenario x hardware -> configuration with the deciding numbers.

Pure logic, no store, no printing. A projected candidate takes its speed and memory from the projection
(with the interval) and its quality from the measured row it comes from: quantization error does not
depend on the hardware a kernel runs on, and the matrix says so beside every projected cell.

Scenarios (each ranks only candidates that ran ok, fit the hardware's memory and meet its quality bar):
  edge               memory-constrained: the least memory (peak RSS here, projected need there);
                     ties within 1 % broken by decode speed; KLD <= EDGE_MAX_KLD.
  real-time          speed-critical: the highest decode tok/s; KLD <= DEFAULT_BALANCED_MAX_KLD.
                     When another candidate's decode interval (95 % CI measured, the projection's
                     interval projected) reaches the fastest one's, the cell says "no decision" and
                     names them: the speed-decided scenarios below do the same.
  balanced           balanced production: ln(speed-up) + ln(memory saving) against the hardware's
                     baseline (the FP32 reference's configuration), as recommend's balanced goal.
  quality-first      the fastest near-lossless configuration: KLD <= QUALITY_MAX_KLD.
  small-model        a model under SMALL_PARAMS parameters: the fastest with KLD <= QUALITY_MAX_KLD
                     (the study: quantization costs small models the most); not applicable above.

>>> [s.name for s in SCENARIOS]
['edge', 'real-time', 'balanced', 'quality-first', 'small-model']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from quantscope.advise.recommend import DEFAULT_BALANCED_MAX_KLD
from quantscope.present.units import fmt_bytes, fmt_num

EDGE_MAX_KLD = 0.1  # nat; an edge device trades more quality for memory, but not everything
QUALITY_MAX_KLD = 0.005  # nat; near-lossless (about the KLD of BF16 against FP32 in our fixtures and runs)
SMALL_PARAMS = 1e9  # the study's "below 1B parameters"
HERE = "here"  # the hardware column of measured rows


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str  # as the study named it
    question: str  # the tree's question that leads to it
    max_kld: float | None


SCENARIOS = (
    Scenario("edge", "memory-constrained (edge)", "Is memory the hard limit?", EDGE_MAX_KLD),
    Scenario("real-time", "speed-critical (real time)", "Is latency the hard limit?", DEFAULT_BALANCED_MAX_KLD),
    Scenario("balanced", "balanced production", "Otherwise: speed and memory together", DEFAULT_BALANCED_MAX_KLD),
    Scenario("quality-first", "quality-first", "Must outputs match FP32?", QUALITY_MAX_KLD),
    Scenario("small-model", "small model (< 1B parameters)", "Is the model under 1B parameters?", QUALITY_MAX_KLD),
)


@dataclass(frozen=True)
class Candidate:
    """One configuration on one hardware: measured (here) or projected (with the decode interval)."""

    run_id: int
    label: str
    hardware: str
    decode: float | None  # tok/s
    decode_lo: float | None
    decode_hi: float | None
    memory_bytes: float | None
    kld: float | None  # nat, measured here in both cases
    params: float | None
    projected: bool
    fits: bool = True
    is_baseline: bool = False
    why_not: str | None = None  # unsupported or not projected


def measured_candidates(summaries: list[Any], params: float | None = None) -> list[Candidate]:
    """Candidates from measured Summaries: decode mean with its 95 % CI, peak RSS, KLD."""
    from quantscope.analysis.summary import default_baseline

    base = default_baseline(summaries)
    out = []
    for s in summaries:
        if not s.ok or s.decode is None:
            continue
        ci = s.decode.ci95 if s.decode.ci95 == s.decode.ci95 else 0.0
        out.append(Candidate(s.run_id, s.label, HERE, s.decode.mean, s.decode.mean - ci, s.decode.mean + ci,
                             s.peak_rss_bytes, s.kld[0] if s.kld else None, params, False,
                             is_baseline=s is base))
    return out


def projected_candidates(projected: list[Any], summaries: list[Any]) -> list[Candidate]:
    """Candidates from report.projected.ProjectedRow, each with its measured row's KLD; only rows
    projected with the measured model (the scaling study's other sizes have no measured quality)."""
    from quantscope.analysis.summary import default_baseline

    by_id = {s.run_id: s for s in summaries}
    base = default_baseline(summaries)
    out = []
    for r in projected:
        s = by_id.get(r.run_id)
        if s is None or r.scaled:
            continue
        p = r.p
        out.append(Candidate(r.run_id, r.label, r.hardware, p.decode_tps, p.decode_tps_low, p.decode_tps_high,
                             p.memory_bytes, s.kld[0] if s.kld else None, r.params, True, bool(p.fits),
                             is_baseline=s is base, why_not=None if p.supported else p.reason))
    return out


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    hardware: str
    winner: Candidate | None
    why: str  # the deciding numbers, or why nothing qualifies / the scenario does not apply


def _fmt_decode(c: Candidate) -> str:
    if c.projected:
        return f"{fmt_num(c.decode)} tok/s projected [{fmt_num(c.decode_lo)} to {fmt_num(c.decode_hi)}]"
    return f"{fmt_num(c.decode, 4)} tok/s [95% CI {fmt_num(c.decode_lo, 4)} to {fmt_num(c.decode_hi, 4)}]"


def _evidence(c: Candidate, extra: str = "") -> str:
    mem = "memory " + fmt_bytes(c.memory_bytes) + (" projected" if c.projected else " peak RSS") \
        if c.memory_bytes else "memory not measured"
    kld = f"KLD {c.kld:.3g} nat" + (" (measured here)" if c.projected else "") if c.kld is not None else \
        "KLD not measured"
    return "; ".join(x for x in (_fmt_decode(c), mem, kld, extra) if x)


def overlapping(w: Candidate, others: list[Candidate]) -> list[Candidate]:
    """The candidates whose decode interval reaches the fastest one's: speed cannot tell them apart."""
    if w.decode_lo is None:
        return []
    return sorted((c for c in others if c is not w and c.decode_hi is not None and c.decode_hi >= w.decode_lo),
                  key=lambda c: -c.decode)


def evaluate(scenario: Scenario, cands: list[Candidate], hardware: str) -> Cell:
    """The scenario's pick among `cands` (all on `hardware`), with the numbers that decided it."""
    pool = [c for c in cands if c.hardware == hardware]
    params = next((c.params for c in pool if c.params), None)
    if scenario.name == "small-model" and params is not None and params >= SMALL_PARAMS:
        return Cell(scenario, hardware, None, f"not applicable: the model has {params / 1e9:.2g} B parameters")
    ok = [c for c in pool if c.why_not is None and c.decode and c.fits]
    qualified = [c for c in ok if scenario.max_kld is None or (c.kld is not None and c.kld <= scenario.max_kld)]
    if not qualified:
        unfit = sum(1 for c in pool if not c.fits)
        return Cell(scenario, hardware, None, f"no configuration qualifies (KLD <= {scenario.max_kld} nat"
                    + (f"; {unfit} do not fit" if unfit else "") + ")")
    base = next((c for c in ok if c.is_baseline), None)
    extra = ""
    if scenario.name == "edge":
        mem = [c for c in qualified if c.memory_bytes]
        if not mem:
            return Cell(scenario, hardware, None, "no memory figure for any qualifying configuration")
        w = min(mem, key=lambda c: (round(math.log(c.memory_bytes) / math.log(1.01)), -c.decode))
    elif scenario.name == "balanced" and base is not None and base.memory_bytes:
        scored = [c for c in qualified if c.memory_bytes]
        w = max(scored, key=lambda c: math.log(c.decode / base.decode) + math.log(base.memory_bytes / c.memory_bytes))
        extra = (f"{w.decode / base.decode:.2f}x decode, {base.memory_bytes / w.memory_bytes:.2f}x less memory "
                 f"than {base.label}")
    else:  # real-time, quality-first, small-model, balanced without a baseline: the fastest that qualifies
        w = max(qualified, key=lambda c: c.decode)
        tied = overlapping(w, qualified)
        if tied:
            more = f" and {len(tied) - 3} more" if len(tied) > 3 else ""
            return Cell(scenario, hardware, None, (
                f"no decision: the fastest, {w.label} {_fmt_decode(w)}, overlaps {len(tied)} other interval(s): "
                + ", ".join(f"{c.label} {fmt_num(c.decode)}" for c in tied[:3]) + more
                + " (measure more, or on the hardware)"))
    bar = f"KLD <= {scenario.max_kld} nat" if scenario.max_kld is not None else ""
    return Cell(scenario, hardware, w, _evidence(w, extra) + (f" ({bar}; {len(qualified)} of {len(pool)} qualify)"))


def decision_matrix(cands: list[Candidate], scenarios=SCENARIOS) -> list[Cell]:
    """Every scenario on every hardware the candidates cover (here first), scenario-major."""
    hws = [HERE] if any(not c.projected for c in cands) else []
    hws += sorted({c.hardware for c in cands if c.projected})
    return [evaluate(s, cands, hw) for s in scenarios for hw in hws]


def matrix_lines(cells: list[Cell]) -> list[str]:
    """The matrix as console lines, scenario by scenario: `  h200 (projected): pick — deciding numbers`."""
    lines = ["Decision matrix (scenario x hardware; projected cells: speed and memory from the roofline model, "
             "quality measured here)"]
    for title in dict.fromkeys(c.scenario.title for c in cells):
        lines.append(f"{title}:")
        for c in (c for c in cells if c.scenario.title == title):
            where = "here (measured)" if c.hardware == HERE else f"{c.hardware} (projected)"
            lines.append(f"  {where}: {c.winner.label if c.winner else '-'}; {c.why}")
    return lines
