"""Statistics computed from raw samples, never stored on their own (optimum-benchmark Latency.from_values)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from quantscope.metrics.student_t import critical_value


def t_quantile(confidence: float, dof: int) -> float:
    """Two-sided Student-t critical value, e.g. 4.303 for 95 % with 2 degrees of freedom.

    >>> round(t_quantile(0.95, 2), 3)
    4.303
    """
    # not scipy's stdtrit: importing scipy.special alone costs half of what `compare` may take (student_t.py)
    return critical_value(confidence, dof)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default 'linear' method)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    sd: float  # sample standard deviation (ddof=1); nan for n < 2
    se: float  # standard error of the mean, sd / sqrt(n)
    ci95: float  # half-width of the 95 % confidence interval of the mean (Student t)
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    @property
    def rel_ci95(self) -> float:
        return self.ci95 / abs(self.mean) if self.mean else math.inf


def describe(samples: tuple[float, ...] | list[float]) -> Stats:
    """Summary of raw samples.

    >>> s = describe([1.0, 2.0, 3.0])
    >>> (s.n, s.mean, s.sd, round(s.ci95, 3))
    (3, 2.0, 1.0, 2.484)
    """
    values = sorted(float(v) for v in samples)
    n = len(values)
    if n == 0:
        nan = math.nan
        return Stats(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    mean = math.fsum(values) / n
    if n > 1:
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        se = sd / math.sqrt(n)
        ci95 = t_quantile(0.95, n - 1) * se
    else:
        sd = se = ci95 = math.nan
    return Stats(
        n=n,
        mean=mean,
        sd=sd,
        se=se,
        ci95=ci95,
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        min=values[0],
        max=values[-1],
    )
