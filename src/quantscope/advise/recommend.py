"""The recommendation: which configuration to ship for a goal under constraints, with its evidence.

Pure logic over summaries of stored runs (analysis.summary); no store, no printing.

Goals (every one ranks only rows that are ok and meet every constraint):
  speed     highest mean decode tok/s.
  memory    lowest peak RSS of the run's process (load + timed work: what a host must hold);
            ties within 1 % broken by decode speed.
  balanced  highest speed-up x memory saving against the baseline (the FP32 reference when present):
            score = ln(decode / decode_base) + ln(rss_base / rss), i.e. both ratios count equally
            on a log scale. Without --max-kld it applies DEFAULT_BALANCED_MAX_KLD, since any score of
            speed and size alone is won by the most aggressive quantization, whatever its quality.
The reference's own KLD is 0 and its same-top-1 rate 1 by definition.

Figures become text through present/ (its columns for the evidence, its units for the rest), as in
every table. `--max-memory` is parsed by present.units.parse_bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from quantscope.analysis.summary import Summary
from quantscope.errors import UserError
from quantscope.present import columns as col
from quantscope.present.units import fmt_bytes

GOALS = ("speed", "memory", "balanced")
DEFAULT_BALANCED_MAX_KLD = 0.05  # nat; the example threshold of the issue (about 1 % of tokens' mass)
RUNNERS_UP = 3


@dataclass(frozen=True)
class Constraints:
    max_memory_bytes: float | None = None  # peak RSS
    max_kld: float | None = None  # nat, mean KL(reference || model)
    min_top1: float | None = None  # fraction of tokens whose top-1 matches the reference
    max_acc_drop: float | None = None  # task accuracy lost against the reference (fraction, worst task)

    def describe(self) -> str:
        parts = []
        if self.max_memory_bytes is not None:
            parts.append(f"peak RSS <= {fmt_bytes(self.max_memory_bytes)}")
        if self.max_kld is not None:
            parts.append(f"KLD <= {self.max_kld:g} nat")
        if self.min_top1 is not None:
            parts.append(f"same top-1 >= {self.min_top1 * 100:g} %")
        if self.max_acc_drop is not None:
            parts.append(f"task accuracy drop <= {self.max_acc_drop * 100:g} points")
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class Exclusion:
    summary: Summary
    constraint: str  # "status" | "max-memory" | "max-kld" | "min-top1"
    detail: str
    excess: float  # relative amount by which it misses (inf: not measured or not ok)


@dataclass
class Recommendation:
    goal: str
    constraints: Constraints
    winner: Summary | None
    runners_up: list[Summary]
    excluded: list[list[Exclusion]]  # per excluded row, every constraint it breaks
    nearest_miss: list[Exclusion] | None
    reasons: list[str] = field(default_factory=list)
    baseline: Summary | None = None


def evidence(s: Summary) -> str:
    """The numbers behind a row as the tables show them (present.columns.EVIDENCE), each saying what its
    ± is: 95 % CI of the mean for speed, standard error for quality."""
    return col.phrases(col.EVIDENCE, s)


def acc_drop_of(s: Summary, rows: list[Summary]) -> tuple[float, str] | None:
    """(worst task accuracy drop, its text with the SE) of `s` against its task reference among `rows`
    (0 for the reference itself); None when either has no task results (analysis.tasks, paired per
    document). The constraint judges the drop itself, as --max-kld judges the mean KLD; the SE is shown."""
    from quantscope.analysis.tasks import task_reference, worst_drop

    ref = task_reference(rows, s.result)
    if ref is None:
        return None
    if ref is s:
        return 0.0, "0 points (the reference itself)"
    d = worst_drop(ref.result, s.result)
    if d is None:
        return None
    how = "paired" if d.paired else "unpaired"
    return d.drop, f"{d.drop * 100:.2f} ± {d.se * 100:.2f} points ({d.task} {d.metric}, {how} SE, {d.n} documents)"


def violations(s: Summary, c: Constraints, rows: list[Summary] | None = None) -> list[Exclusion]:
    """Every constraint `s` breaks; a constraint whose figure was not measured counts as broken.
    `rows` (the group) holds the task reference that --max-acc-drop measures against."""
    if not s.ok:
        return [Exclusion(s, "status", f"{s.status}: {s.result.reason}", math.inf)]
    if s.decode is None:
        return [Exclusion(s, "status", "no decode throughput measured", math.inf)]
    out = []
    drop = acc_drop_of(s, rows or [s]) if c.max_acc_drop is not None else None
    checks = (
        ("max-memory", c.max_memory_bytes, s.peak_rss_bytes, False, "peak RSS", fmt_bytes),
        ("max-kld", c.max_kld, s.kld[0] if s.kld else None, False, "KLD", lambda v: f"{v:.4g} nat"),
        ("min-top1", c.min_top1, s.top1[0] if s.top1 else None, True, "same top-1",
         lambda v: f"{v * 100:.2f} %"),
        ("max-acc-drop", c.max_acc_drop, drop[0] if drop else None, False, "task accuracy drop",
         lambda v: drop[1] if drop and v == drop[0] else f"{v * 100:.2f} points"),
    )
    for name, limit, value, is_min, what, show in checks:
        if limit is None:
            continue
        if value is None:
            how = "the FP32 reference and this row with the same --tasks" if name == "max-acc-drop" else \
                "the quality pass"
            out.append(Exclusion(s, name, f"{what} not measured (run with {how})", math.inf))
        elif (value < limit) if is_min else (value > limit):
            excess = (limit / value - 1 if value > 0 else math.inf) if is_min else (
                value / limit - 1 if limit > 0 else math.inf)
            sign = "<" if is_min else ">"
            out.append(Exclusion(s, name, f"{what} {show(value)} {sign} {show(limit)}", excess))
    return out


def _baseline(rows: list[Summary]) -> Summary | None:
    from quantscope.analysis.summary import default_baseline

    return default_baseline([s for s in rows if s.peak_rss_bytes])


def _score(goal: str, s: Summary, base: Summary | None) -> tuple[float, ...]:
    """Sort key, larger is better."""
    speed = s.decode.mean
    if goal == "speed":
        return (speed,)
    rss = s.peak_rss_bytes if s.peak_rss_bytes is not None else math.inf
    if goal == "memory":
        return (-round(math.log(rss) / math.log(1.01)) if rss > 0 else 0.0, speed)  # 1 % buckets, then speed
    assert base is not None
    return (math.log(speed / base.decode.mean) + math.log(base.peak_rss_bytes / rss),)


def _tie_text(goal: str, winner: Summary, other: Summary) -> str:
    from quantscope.analysis.compare import ratio_test

    t = ratio_test(other.result.get("decode_tps").samples, winner.result.get("decode_tps").samples)
    head = f"decode against the runner-up {other.label} (run {other.run_id}): {t.text()} {t.verdict}"
    if goal == "speed" and not t.significant:
        head += "; the lead is within the noise, so either is a sound choice"
    return head


def recommend(rows: list[Summary], goal: str, constraints: Constraints) -> Recommendation:
    """Rank `rows` (one comparable group) for `goal` under `constraints`; say why, and what was left out."""
    if goal not in GOALS:
        raise UserError(f"goal {goal!r} is not one of {', '.join(GOALS)}")
    c = constraints
    reasons = []
    if goal == "balanced" and c.max_kld is None:
        if any(s.kld is not None and not s.is_reference for s in rows):
            c = Constraints(c.max_memory_bytes, DEFAULT_BALANCED_MAX_KLD, c.min_top1, c.max_acc_drop)
            reasons.append(f"goal balanced applies KLD <= {DEFAULT_BALANCED_MAX_KLD} nat by default "
                           "(set --max-kld to change it)")
        else:
            reasons.append("no KLD was measured (no quality pass): balanced ranks on speed and memory alone, "
                           "blind to what quantization did to the outputs")
    base = _baseline(rows)
    candidates, excluded = [], []
    for s in rows:
        v = violations(s, c, rows)
        if goal == "balanced" and not v and s.peak_rss_bytes is None:
            v = [Exclusion(s, "status", "peak RSS not measured", math.inf)]
        if v:
            excluded.append(v)
        else:
            candidates.append(s)
    candidates.sort(key=lambda s: _score(goal, s, base), reverse=True)
    rec = Recommendation(goal, c, candidates[0] if candidates else None, candidates[1:1 + RUNNERS_UP],
                         excluded, None, reasons, base)
    reasons.append(f"constraints: {c.describe()}; {len(candidates)} of {len(rows)} configurations meet them")
    if rec.winner is None:
        measured = [v for v in excluded if all(e.constraint != "status" for e in v)]
        finite = [v for v in measured if all(math.isfinite(e.excess) for e in v)]
        if finite:
            rec.nearest_miss = min(finite, key=lambda v: sum(e.excess for e in v))
        if rec.nearest_miss:
            miss = rec.nearest_miss
            reasons.append(f"nothing satisfies the constraints; nearest miss: {miss[0].summary.label} "
                           f"(run {miss[0].summary.run_id}): " + "; ".join(e.detail for e in miss))
        else:
            reasons.append("nothing satisfies the constraints, and no row comes near: each excluded row did "
                           "not run ok or lacks the measurement a constraint needs")
        return rec
    w = rec.winner
    if goal == "speed":
        reasons.append(f"{w.label} has the highest mean decode throughput: {col.DECODE_CI.value(w)}"
                       f" {col.DECODE_CI.unit} (95% CI)")
    elif goal == "memory":
        reasons.append(f"{w.label} has the lowest peak RSS: {fmt_bytes(w.peak_rss_bytes)} "
                       f"(weights {fmt_bytes(w.weight_bytes or 0)})")
    elif w is base:
        reasons.append(f"{w.label} is the baseline itself: no other configuration's speed-up x memory saving "
                       "against it is above 1")
    else:
        speedup = w.decode.mean / base.decode.mean
        saving = base.peak_rss_bytes / w.peak_rss_bytes
        reasons.append(f"{w.label} has the best speed-up x memory saving against {base.label}: "
                       f"{speedup:.2f}x decode, {saving:.2f}x less peak RSS")
    if w.kld is not None and not w.is_reference:
        reasons.append("its quality cost: " + ", ".join(p for p in (col.KLD.phrase(w), col.TOP1.phrase(w)) if p))
    reasons += _task_cost(w, rows)
    if base is not None and base is not w:
        reasons.append(_versus(base, w))
    if rec.runners_up:
        reasons.append(_tie_text(goal, w, rec.runners_up[0]))
    return rec


def _task_cost(w: Summary, rows: list[Summary]) -> list[str]:
    """The winner's task accuracy against its task reference, with the paired SE (analysis.tasks)."""
    from quantscope.analysis.tasks import acc_drops, task_reference

    ref = task_reference(rows, w.result)
    if ref is None or ref is w:
        return []
    return [f"its task accuracy against {ref.label} (run {ref.run_id}): " + "; ".join(
        f"{d.task} {d.metric} {d.other * 100:.2f} % vs {d.reference * 100:.2f} %, {d.text().split(' ', 2)[2]}"
        for d in acc_drops(ref.result, w.result))]


def _versus(base: Summary, w: Summary) -> str:
    from quantscope.analysis.compare import ratio_test

    t = ratio_test(base.result.get("decode_tps").samples, w.result.get("decode_tps").samples)
    return f"decode against the baseline {base.label} (run {base.run_id}): {t.text()} {t.verdict}"
