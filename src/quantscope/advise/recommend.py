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

>>> parse_bytes("2GiB"), parse_bytes("1.5 GB"), parse_bytes("4096")
(2147483648, 1500000000, 4096)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from quantscope.analysis.summary import Summary, fmt_pm
from quantscope.errors import UserError

GOALS = ("speed", "memory", "balanced")
DEFAULT_BALANCED_MAX_KLD = 0.05  # nat; the example threshold of the issue (about 1 % of tokens' mass)
RUNNERS_UP = 3
MiB = float(1 << 20)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise UserError(f"memory size {text!r} is not a number with an optional unit "
                        "(B, KB, MB, GB, KiB, MiB, GiB): e.g. 2GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def fmt_bytes(n: float) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / MiB:.1f} MiB"


@dataclass(frozen=True)
class Constraints:
    max_memory_bytes: float | None = None  # peak RSS
    max_kld: float | None = None  # nat, mean KL(reference || model)
    min_top1: float | None = None  # fraction of tokens whose top-1 matches the reference

    def describe(self) -> str:
        parts = []
        if self.max_memory_bytes is not None:
            parts.append(f"peak RSS <= {fmt_bytes(self.max_memory_bytes)}")
        if self.max_kld is not None:
            parts.append(f"KLD <= {self.max_kld:g} nat")
        if self.min_top1 is not None:
            parts.append(f"same top-1 >= {self.min_top1 * 100:g} %")
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
    """The numbers behind a row, with 95 % CIs (speed) and standard errors (quality)."""
    parts = []
    if s.decode:
        parts.append(f"decode {fmt_pm(s.decode.mean, s.decode.ci95)} tok/s (95% CI, N={s.decode.n})")
    if s.prefill:
        parts.append(f"prefill {fmt_pm(s.prefill.mean, s.prefill.ci95)} tok/s")
    if s.peak_rss_bytes is not None:
        parts.append(f"peak RSS {fmt_bytes(s.peak_rss_bytes)}")
    if s.weight_bytes is not None:
        parts.append(f"weights {fmt_bytes(s.weight_bytes)}")
    if s.kld is not None:
        parts.append("KLD 0 (the reference)" if s.is_reference else f"KLD {fmt_pm(*s.kld, 3, 1)} nat (± SE)")
    if s.top1 is not None and not s.is_reference:
        parts.append(f"same top-1 {fmt_pm(s.top1[0] * 100, s.top1[1] * 100, 4, 2)} %")
    if s.ppl is not None:
        parts.append(f"PPL {fmt_pm(*s.ppl)}")
    return "; ".join(parts)


def violations(s: Summary, c: Constraints) -> list[Exclusion]:
    """Every constraint `s` breaks; a constraint whose figure was not measured counts as broken."""
    if not s.ok:
        return [Exclusion(s, "status", f"{s.status}: {s.result.reason}", math.inf)]
    if s.decode is None:
        return [Exclusion(s, "status", "no decode throughput measured", math.inf)]
    out = []
    checks = (
        ("max-memory", c.max_memory_bytes, s.peak_rss_bytes, False, "peak RSS", fmt_bytes),
        ("max-kld", c.max_kld, s.kld[0] if s.kld else None, False, "KLD", lambda v: f"{v:.4g} nat"),
        ("min-top1", c.min_top1, s.top1[0] if s.top1 else None, True, "same top-1",
         lambda v: f"{v * 100:.2f} %"),
    )
    for name, limit, value, is_min, what, show in checks:
        if limit is None:
            continue
        if value is None:
            out.append(Exclusion(s, name, f"{what} not measured (run with the quality pass)", math.inf))
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
            c = Constraints(c.max_memory_bytes, DEFAULT_BALANCED_MAX_KLD, c.min_top1)
            reasons.append(f"goal balanced applies KLD <= {DEFAULT_BALANCED_MAX_KLD} nat by default "
                           "(set --max-kld to change it)")
        else:
            reasons.append("no KLD was measured (no quality pass): balanced ranks on speed and memory alone, "
                           "blind to what quantization did to the outputs")
    base = _baseline(rows)
    candidates, excluded = [], []
    for s in rows:
        v = violations(s, c)
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
        reasons.append(f"{w.label} has the highest mean decode throughput: {fmt_pm(w.decode.mean, w.decode.ci95)}"
                       " tok/s (95% CI)")
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
        reasons.append(f"its quality cost: KLD {fmt_pm(*w.kld, 3, 1)} nat, same top-1 "
                       f"{fmt_pm(w.top1[0] * 100, w.top1[1] * 100, 4, 2) if w.top1 else '-'} %")
    if base is not None and base is not w:
        reasons.append(_versus(base, w))
    if rec.runners_up:
        reasons.append(_tie_text(goal, w, rec.runners_up[0]))
    return rec


def _versus(base: Summary, w: Summary) -> str:
    from quantscope.analysis.compare import ratio_test

    t = ratio_test(base.result.get("decode_tps").samples, w.result.get("decode_tps").samples)
    return f"decode against the baseline {base.label} (run {base.run_id}): {t.text()} {t.verdict}"
