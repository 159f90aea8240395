import math
import statistics

import numpy as np
import pytest

from quantscope.metrics.stats import describe, t_quantile

pytestmark = pytest.mark.unit


def test_statistics_from_samples_match_reference_implementations():
    rng = np.random.default_rng(0)
    x = rng.normal(50, 3, size=37).tolist()
    s = describe(x)
    assert s.n == 37
    assert s.mean == pytest.approx(statistics.fmean(x))
    assert s.sd == pytest.approx(statistics.stdev(x))
    assert s.se == pytest.approx(statistics.stdev(x) / math.sqrt(37))
    for q in (50, 90, 99):
        assert getattr(s, f"p{q}") == pytest.approx(np.percentile(x, q))
    assert s.ci95 == pytest.approx(t_quantile(0.95, 36) * s.se)


def test_t_quantile_known_values():
    assert t_quantile(0.95, 2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile(0.95, 1000) == pytest.approx(1.9623, abs=1e-3)


def test_single_and_empty_samples():
    assert describe([5.0]).mean == 5.0 and math.isnan(describe([5.0]).sd)
    assert describe([]).n == 0
