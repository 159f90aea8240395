"""Perplexity figures derived from per-token negative log-likelihoods, as llama-perplexity computes them.

Source: ggml-org/llama.cpp tools/perplexity/perplexity.cpp.
  perplexity():     nll2 /= count; nll /= count; ppl = exp(nll); nll2 -= nll*nll;
                    nll2 = sqrt(nll2/(count-1)); "Final estimate: PPL = ppl +/- nll2*ppl"
  kl_divergence():  mean_and_uncertainty(sum, sum2, count) = (sum/n, sqrt((sum2/n - mean^2)/(n-1)));
                    covariance(a, b) = (sum_ab/n - mean_a*mean_b)/(n-1)  (the covariance of the two means);
                    ln(PPL(Q)/PPL(base)) = mean_a - mean_b  +/- sqrt(se_a^2 + se_b^2 - 2*cov);
                    Cor = cov/(se_a*se_b); PPL ratio = exp(ln ratio) +/- ratio * se(ln ratio);
                    PPL diff = ppl_a - ppl_b +/- sqrt(unc_a^2 + unc_b^2 - 2*ppl_a*ppl_b*cov).

sqrt((E[x^2] - E[x]^2)/(n-1)) is the population variance over n-1, which equals the sample standard
deviation (ddof=1) over sqrt(n): the usual standard error of the mean. We compute it with numpy's two-pass
variance (no cancellation), and the ratio's uncertainty from the paired per-token differences, which is
algebraically the same as llama.cpp's se_a^2 + se_b^2 - 2 cov.

>>> ppl, se = ppl_with_se([1.0, 2.0, 3.0])
>>> round(ppl, 4), round(se, 4)
(7.3891, 4.2661)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _array(samples: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(samples, dtype=np.float64).reshape(-1)


def mean_se(samples: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and its standard error, sqrt((E[x^2] - E[x]^2) / (n-1)) as perplexity.cpp computes it.

    nan SE for fewer than 2 samples (llama.cpp prints 0 there, which reads as certainty).
    """
    x = _array(samples)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan
    pop_var = float(np.var(x))  # E[(x - mean)^2] == E[x^2] - E[x]^2
    return mean, math.sqrt(pop_var / (n - 1))


def ppl_with_se(nll: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """PPL = exp(mean nll) and its uncertainty PPL * SE(nll) (first-order: d exp(x)/dx = exp(x))."""
    mean, se = mean_se(nll)
    ppl = math.exp(mean)
    return ppl, ppl * se


def cov_of_means(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """perplexity.cpp `covariance`: (E[ab] - E[a]E[b]) / (n-1), the covariance of the two sample means."""
    x, y = _array(a), _array(b)
    n = x.size
    if n < 2:
        return math.nan
    return float(np.mean((x - x.mean()) * (y - y.mean()))) / (n - 1)


@dataclass(frozen=True)
class PplComparison:
    """Everything llama-perplexity --kl-divergence prints under "Perplexity statistics"."""

    n: int
    ppl: float
    ppl_se: float
    ppl_ref: float
    ppl_ref_se: float
    cor: float  # Cor(ln PPL(Q), ln PPL(base))
    ln_ratio: float  # mean ln(PPL(Q)/PPL(base))
    ln_ratio_se: float
    ratio: float  # PPL(Q)/PPL(base)
    ratio_se: float
    diff: float  # PPL(Q) - PPL(base)
    diff_se: float


def compare_ppl(nll: Sequence[float] | np.ndarray, nll_ref: Sequence[float] | np.ndarray) -> PplComparison:
    """Paired comparison of a model's per-token nll with the reference's on the same tokens.

    >>> c = compare_ppl([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    >>> c.ln_ratio, c.ln_ratio_se, round(c.cor, 6)
    (0.0, 0.0, 1.0)
    """
    a, b = _array(nll), _array(nll_ref)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    mean_a, se_a = mean_se(a)
    mean_b, se_b = mean_se(b)
    cov = cov_of_means(a, b)
    ln_ratio, ln_ratio_se = mean_se(a - b)  # == sqrt(se_a^2 + se_b^2 - 2 cov), without cancellation
    ppl, ppl_ref = math.exp(mean_a), math.exp(mean_b)
    ppl_se, ppl_ref_se = ppl * se_a, ppl_ref * se_b
    ratio = math.exp(ln_ratio)
    diff_var = ppl_se**2 + ppl_ref_se**2 - 2.0 * ppl * ppl_ref * cov
    denom = se_a * se_b
    return PplComparison(
        n=int(a.size),
        ppl=ppl,
        ppl_se=ppl_se,
        ppl_ref=ppl_ref,
        ppl_ref_se=ppl_ref_se,
        cor=cov / denom if denom > 0 else math.nan,
        ln_ratio=ln_ratio,
        ln_ratio_se=ln_ratio_se,
        ratio=ratio,
        ratio_se=ratio * ln_ratio_se,
        diff=ppl - ppl_ref,
        diff_se=math.sqrt(diff_var) if diff_var > 0 else 0.0,
    )
