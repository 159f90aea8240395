"""Statistics of one configuration against a baseline: speed ratios with a CI and Welch's t verdict,
memory and quality differences. Pure functions of stored samples.

Speed ratio (other / baseline) of two independent means, by the delta method on the log scale:
  ln r = ln m_b - ln m_a,  Var(ln r) ~= (se_a / m_a)^2 + (se_b / m_b)^2,
  CI95 = exp(ln r +- t(0.975, df) sqrt(Var)),  df by Welch-Satterthwaite on the two terms
  (e.g. Franz 2007, "Ratios: a short guide to confidence limits and proper use", section 3).
Significance: Welch's unequal-variance t-test on the raw repetitions (as scipy.stats.ttest_ind,
equal_var=False), as pyperf's `compare_to` and compare-llama-bench do for their verdicts.

>>> t = ratio_test([10.0, 10.2, 9.9, 10.1], [12.0, 12.1, 11.9, 12.2])
>>> round(t.ratio, 3), t.significant, t.verdict.split()[0]
(1.199, True, 'faster,')
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quantscope.metrics.stats import t_quantile
from quantscope.metrics.student_t import two_sided_p

ALPHA = 0.05


@dataclass(frozen=True)
class RatioTest:
    ratio: float  # mean(other) / mean(baseline)
    lo: float  # 95 % CI of the ratio
    hi: float
    p: float  # Welch's two-sided p-value (nan when it cannot be computed)
    n_base: int
    n_other: int
    verdict: str

    @property
    def significant(self) -> bool:
        return self.p == self.p and self.p < ALPHA

    def text(self, digits: int = 3) -> str:
        ci = "" if math.isnan(self.lo) else f" [{self.lo:.{digits}g}, {self.hi:.{digits}g}]"
        return f"{self.ratio:.{digits}g}x{ci}"


def _floats(x: Sequence[float]) -> list[float]:
    """Repetitions as Python floats. These tests see a few to a few hundred values: the standard library
    computes them exactly as fast as numpy would, and `recommend` then never imports numpy (~0.13 s)."""
    return [float(v) for v in x]


def _mean_se(x: list[float]) -> tuple[float, float]:
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    return statistics.fmean(x), (statistics.stdev(x) / math.sqrt(n) if n > 1 else math.nan)


def ratio_ci(base: Sequence[float], other: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(ratio, lo, hi) of mean(other)/mean(base); lo = hi = nan when either has fewer than 2 samples."""
    a, b = _floats(base), _floats(other)
    ma, sa = _mean_se(a)
    mb, sb = _mean_se(b)
    ratio = mb / ma if ma else math.nan
    if len(a) < 2 or len(b) < 2 or ma <= 0 or mb <= 0:
        return ratio, math.nan, math.nan
    va, vb = (sa / ma) ** 2, (sb / mb) ** 2
    var = va + vb
    if var == 0:
        return ratio, ratio, ratio
    # Welch-Satterthwaite degrees of freedom of the two (relative) variance terms
    df = var**2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(confidence, max(1, int(df))) * math.sqrt(var)
    return ratio, ratio * math.exp(-half), ratio * math.exp(half)


def welch_p(base: Sequence[float], other: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (nan with fewer than 2 samples or no variance at all): the
    statistic and Welch-Satterthwaite degrees of freedom of scipy.stats.ttest_ind(equal_var=False),
    written here with metrics/student_t.py's t CDF because importing scipy.stats takes 1.5-3 s on these
    CPUs and scipy.special 0.4-0.6 s (a test holds the two equal)."""
    a, b = _floats(base), _floats(other)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va == 0 and vb == 0:
        return math.nan
    t = (statistics.fmean(b) - statistics.fmean(a)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return two_sided_p(t, df)


def ratio_test(base: Sequence[float], other: Sequence[float], higher_is_better: bool = True) -> RatioTest:
    """Ratio, CI and Welch's verdict for one measurement (e.g. decode tok/s per repetition)."""
    ratio, lo, hi = ratio_ci(base, other)
    p = welch_p(base, other)
    n_a, n_b = len(base), len(other)
    if n_a < 2 or n_b < 2:
        verdict = f"too few repetitions for a test (N={n_a} vs {n_b}; need 2 each)"
    elif math.isnan(p):
        verdict = "identical samples: no difference to test"
    elif p < ALPHA:
        better = (ratio > 1) == higher_is_better
        word = ("faster" if ratio > 1 else "slower") if higher_is_better else ("better" if better else "worse")
        verdict = f"{word}, significant (Welch p={p:.2g})"
    else:
        verdict = f"no significant difference (Welch p={p:.2g})"
    return RatioTest(ratio, lo, hi, p, n_a, n_b, verdict)


@dataclass(frozen=True)
class Difference:
    diff: float  # other - baseline
    se: float  # nan when unknown
    paired: bool  # computed from per-token differences on the same tokens


def mean_difference(base: Sequence[float], other: Sequence[float]) -> Difference:
    """Difference of two means; paired per-token when both scored the same tokens (same length).

    Per-token quality samples (KLD, nll) of two configurations come from the same text and windows,
    so their difference has a much smaller error than two independent means (llama-perplexity's
    covariance term for ln(PPL_Q/PPL_base)). statistics, not numpy: numpy's import is ~0.13 s of a
    `compare` that answers in a second (issue 19); the paired SD of 16,384 samples takes milliseconds.

    >>> d = mean_difference([1.0, 2.0, 3.0], [1.5, 2.5, 3.0])
    >>> round(d.diff, 6), round(d.se, 6), d.paired
    (0.333333, 0.166667, True)
    """
    a, b = _floats(base), _floats(other)
    if len(a) == len(b) and len(a) > 1:
        m, se = _mean_se([y - x for x, y in zip(a, b, strict=True)])
        return Difference(m, se, True)
    ma, sa = _mean_se(a)
    mb, sb = _mean_se(b)
    return Difference(mb - ma, math.sqrt(sa**2 + sb**2), False)


def contended(r) -> bool:
    """Whether a stored run was flagged: other processes used more than the set share of the cores
    during its timed work (metrics/contention.py). Rows stored before the flag existed read False."""
    return bool((r.info.get("contention") or {}).get("flagged"))


def capped_notes(rows) -> list[str]:
    """One line naming the runs whose quality pass its time cap ended early (QualitySpec.max_seconds),
    or none.

    >>> capped_notes([])
    []
    """
    cut = []
    for i, r in rows:
        m = r.get("nll")
        capped = (m.meta or {}).get("capped") if m is not None else None
        if capped:
            cut.append((i, m.meta["tokens_scored"], capped["tokens_planned"], capped["max_seconds"]))
    if not cut:
        return []
    runs = ", ".join(f"run {i} {done} of {planned}" for i, done, planned, _ in sorted(cut))
    return [f"Quality pass cut at its {cut[0][3]:g} s cap (whole windows, the reference's first ones): {runs} "
            "scored tokens; their PPL and KLD cover fewer tokens, with wider standard errors "
            "(sweep --quality-seconds 0 scores every window)."]


def contention_notes(rows) -> list[str]:
    """One line naming the flagged runs among (run id, Result) pairs, or none.

    >>> contention_notes([])
    []
    """
    flagged = [(i, r.info["contention"]) for i, r in rows if contended(r)]
    if not flagged:
        return []
    ids = ", ".join(str(i) for i, _ in sorted(flagged, key=lambda x: x[0]))
    worst = max(c["others_cores_mean"] for _, c in flagged)
    share = flagged[0][1]["threshold_share"]
    return [f"Contended: run(s) {ids} were measured while other processes used more than {share:.0%} of the "
            f"cores (up to {worst:.2f} cores on average): their speed is what was left over, lower than this "
            "machine gives alone; rerun them on a quiet machine (sweep --force)."]


@dataclass(frozen=True)
class BetweenProcess:
    """Decode (or any per-rep figure) of one configuration measured in several worker processes.

    The process is the unit (each process's mean is one observation): mean ± t(n-1) SD / sqrt(n) of
    the process means, beside the mean relative 95 % CI within a run. A spread well above the
    within-run CI says the within-run CI understates what a rerun would give.
    """

    processes: int
    means: tuple[float, ...]
    mean: float
    sd: float  # of the process means; nan with one process
    ci95: float  # half-width over processes; nan with one process
    within_rel_ci95: float  # mean over runs of each run's own 95 % CI half-width / mean

    @property
    def spread(self) -> float:
        """(max - min) / mean of the process means: the figure the issue quotes (27.96 vs 25.7)."""
        return (max(self.means) - min(self.means)) / self.mean if self.mean else math.nan

    def text(self, digits: int = 4) -> str:
        ci = "" if math.isnan(self.ci95) else f" ± {self.ci95:.{max(1, digits - 2)}g}"
        return (f"{self.mean:.{digits}g}{ci} (N={self.processes} processes, spread {self.spread:.1%}, "
                f"within-run CI ±{self.within_rel_ci95:.1%})")


def between_process(runs: Sequence[Sequence[float]]) -> BetweenProcess:
    """Pool per-rep samples of the same configuration from several processes.

    >>> b = between_process([[27.9, 28.0, 27.98], [25.7, 25.6, 25.8]])
    >>> b.processes, round(b.spread, 3)
    (2, 0.084)
    """
    import numpy as np

    from quantscope.metrics.stats import describe

    runs = [list(r) for r in runs if len(r)]
    if not runs:
        raise ValueError("between_process needs at least one run with samples")
    means = tuple(float(np.mean(r)) for r in runs)
    n = len(means)
    mean = float(np.mean(means))
    sd = float(np.std(means, ddof=1)) if n > 1 else math.nan
    ci = t_quantile(0.95, n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
    within = float(np.mean([describe(r).rel_ci95 for r in runs]))
    return BetweenProcess(n, means, mean, sd, ci, within)


def replicates(rows, measurement: str = "decode_tps") -> dict[int, BetweenProcess]:
    """For each ok row whose configuration has ok rows from more than one process on the same machine,
    the pooled figure of all of them: {run id: BetweenProcess}. Flagged (contended) rows are left out
    of the pool; rows of different machine ids never pool."""
    groups: dict[tuple[str, str], list[tuple[int, Sequence[float]]]] = {}
    for run_id, r in rows:
        m = r.get(measurement)
        if r.status != "ok" or m is None or not m.samples or contended(r):
            continue
        groups.setdefault((r.spec.key_hash(), r.env.machine_id), []).append((run_id, m.samples))
    out: dict[int, BetweenProcess] = {}
    for members in groups.values():
        if len(members) > 1:
            pooled = between_process([s for _, s in members])
            out.update({run_id: pooled for run_id, _ in members})
    return out


# Per-repetition speed figures: pooled over processes as one mean per process (the process is the unit).
PER_REP = ("decode_tps", "prefill_tps", "ttft_s", "achieved_bandwidth_Bps", "bandwidth_fraction",
           "energy_j_per_token")


def pool_processes(rows):
    """(run id, Result) pairs with each configuration's rows from several processes on one machine
    (sweep --repeat) merged into one row, for the recommendation and any ranking that must see each
    configuration once.

    The merged row is the newest row of the group, its per-rep speed measurements replaced by one
    sample per process (that process's mean), so a CI or Welch test on it is over processes; its info
    says which runs it pools. Contended rows are left out of a group that has a clean row. Rows
    without a sibling come back unchanged, in their order.
    """
    import dataclasses

    import numpy as np

    from quantscope.result import Measurement

    groups: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    for run_id, r in rows:
        if r.status == "ok":
            groups.setdefault((r.spec.key_hash(), r.env.machine_id), []).append((run_id, r))
    merged: dict[int, Any] = {}  # run id of a group's newest row -> the pooled row; others dropped
    dropped: set[int] = set()
    for members in groups.values():
        clean = [(i, r) for i, r in members if not contended(r)] or members
        if len(members) == 1:
            continue
        dropped |= {i for i, _ in members}
        newest_id, newest = max(clean, key=lambda x: x[0])
        if len(clean) == 1:
            merged[newest_id] = newest
            continue
        pooled = []
        for m in newest.measurements:
            if m.name in PER_REP:
                runs = [r.get(m.name) for _, r in clean]
                means = [float(np.mean(x.samples)) for x in runs if x is not None and x.samples]
                m = Measurement(m.name, m.unit, means, m.higher_is_better,
                                {**m.meta, "pooled": "one sample per process (its mean)"})
            pooled.append(m)
        used = {i for i, _ in clean}
        info = {**newest.info, "processes": {"runs": sorted(used), "n": len(used),
                                             "left_out_contended": sorted({i for i, _ in members} - used)}}
        merged[newest_id] = dataclasses.replace(newest, measurements=tuple(pooled), info=info)
    out = []
    for run_id, r in rows:
        if run_id in merged:
            out.append((run_id, merged[run_id]))
        elif run_id not in dropped:
            out.append((run_id, r))
    return out
