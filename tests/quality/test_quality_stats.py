"""The uncertainty formulas against values computed by hand and against llama.cpp's sum-based arithmetic."""

import math

import numpy as np
import pytest

from quantscope.quality.kld import delta_p_summary, kld_summary, rms_with_se, same_top_summary
from quantscope.quality.perplexity import compare_ppl, cov_of_means, mean_se, ppl_with_se

pytestmark = pytest.mark.unit


def test_ppl_and_se_by_hand():
    # nll = 1,2,3,4: mean 2.5; E[x^2] - E[x]^2 = 7.5 - 6.25 = 1.25; SE = sqrt(1.25 / 3)
    ppl, se = ppl_with_se([1.0, 2.0, 3.0, 4.0])
    assert ppl == pytest.approx(math.exp(2.5), rel=1e-15)
    assert se == pytest.approx(math.exp(2.5) * math.sqrt(1.25 / 3), rel=1e-14)
    assert mean_se([5.0]) == (5.0, pytest.approx(math.nan, nan_ok=True))


def llama_kld_mode(a: np.ndarray, b: np.ndarray) -> dict:
    """perplexity.cpp kl_divergence(): mean_and_uncertainty and covariance from running sums."""
    n = a.size
    sum_a, sum_a2, sum_b, sum_b2, sum_ab = a.sum(), (a * a).sum(), b.sum(), (b * b).sum(), (a * b).sum()

    def mean_and_uncertainty(s, s2):
        f = s / n
        df = s2 / n - f * f
        return f, math.sqrt(df / (n - 1))

    fa, da = mean_and_uncertainty(sum_a, sum_a2)
    fb, db = mean_and_uncertainty(sum_b, sum_b2)
    cov = (sum_ab / n - (sum_a / n) * (sum_b / n)) / (n - 1)
    ppl_a, ppl_b = math.exp(fa), math.exp(fb)
    return {
        "cor": cov / (da * db),
        "ln_ratio": fa - fb,
        "ln_ratio_se": math.sqrt(da**2 + db**2 - 2 * cov),
        "ppl": ppl_a,
        "ppl_se": ppl_a * da,
        "ratio_se": math.exp(fa - fb) * math.sqrt(da**2 + db**2 - 2 * cov),
        "diff_se": math.sqrt((ppl_a * da) ** 2 + (ppl_b * db) ** 2 - 2 * ppl_a * ppl_b * cov),
    }


def test_compare_ppl_matches_llama_cpp_sum_formulas():
    rng = np.random.default_rng(0)
    b = rng.gamma(2.0, 1.0, 5000)
    a = b + rng.normal(0.02, 0.1, b.size)  # a quantized model: correlated, slightly worse
    c = compare_ppl(a, b)
    want = llama_kld_mode(a, b)
    for name, value in want.items():
        assert getattr(c, name) == pytest.approx(value, rel=1e-9), name
    assert c.n == 5000 and c.ratio == pytest.approx(math.exp(c.ln_ratio))


def test_compare_ppl_by_hand():
    # a - b = 0, 1, 2: mean 1, SE sqrt((5/3 - 1) / 2) = sqrt(1/3); b constant: no correlation defined
    c = compare_ppl([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    assert c.ln_ratio == pytest.approx(1.0) and c.ln_ratio_se == pytest.approx(math.sqrt(1 / 3))
    assert math.isnan(c.cor) and c.ppl_ref == pytest.approx(math.e) and c.ppl_ref_se == 0.0
    assert cov_of_means([1, 2, 3], [2, 4, 6]) == pytest.approx((2 * 2 / 3) / 2)


def test_kld_summary_percentiles_like_llama_percentile_lambda():
    s = kld_summary(np.arange(11.0)[::-1])  # unsorted input
    # llama.cpp: p = fraction*(n-1); (1-p)*v[ip] + p*v[ip+1]
    assert (s["max"], s["min"], s["median"]) == (10.0, 0.0, 5.0)
    assert (
        s["p99"] == pytest.approx(9.9)
        and s["p99.9"] == pytest.approx(9.99)
        and s["p90"] == pytest.approx(9.0)
    )
    assert s["p0.1"] == pytest.approx(0.01) and s["mean"] == 5.0
    assert s["se"] == pytest.approx(math.sqrt((np.mean(np.arange(11.0) ** 2) - 25.0) / 10))


def test_delta_p_rms_and_its_uncertainty_by_hand():
    dp = [0.1, -0.1, 0.2, -0.2]
    # dp^2 = .01 .01 .04 .04: mean .025; E[x^2] = 8.5e-4; var = 2.25e-4; SE(dp^2) = sqrt(2.25e-4 / 3)
    rms, rms_se = rms_with_se(dp)
    assert rms == pytest.approx(math.sqrt(0.025))
    assert rms_se == pytest.approx(0.5 / math.sqrt(0.025) * math.sqrt(2.25e-4 / 3))
    s = delta_p_summary(dp)
    assert s["mean"] == pytest.approx(0.0, abs=1e-15) and s["rms"] == rms and s["p75"] == pytest.approx(0.125)


def test_same_top_rate_binomial_se():
    p, se = same_top_summary([1] * 90 + [0] * 10)
    assert p == 0.9 and se == pytest.approx(math.sqrt(0.9 * 0.1 / 99))
