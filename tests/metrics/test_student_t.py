"""metrics/student_t.py against scipy.special (the functions it stands in for, to save their import)."""

from __future__ import annotations

import math

import pytest
from scipy.special import stdtr, stdtrit

from quantscope.metrics.student_t import beta_inc, critical_value, two_sided_p

pytestmark = pytest.mark.unit

DFS = [0.5, 1, 1.3, 2, 3, 4.7, 9, 30, 100, 1e3, 1e5]


@pytest.mark.parametrize("df", DFS)
def test_two_sided_p_matches_scipy_from_the_centre_to_far_tails(df):
    for t in [0.0, 0.01, 0.5, 1, 2, 3, 5, 10, 50, 300, 1e4]:
        want = 2 * stdtr(df, -t)
        if want > 1e-300:
            assert two_sided_p(t, df) == pytest.approx(want, rel=1e-9), t
            assert two_sided_p(-t, df) == two_sided_p(t, df)


@pytest.mark.parametrize("df", DFS)
def test_critical_value_matches_scipy_and_inverts_the_cdf(df):
    for c in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999]:
        t = critical_value(c, df)
        assert t == pytest.approx(stdtrit(df, 0.5 + c / 2), rel=1e-9), c
        assert two_sided_p(t, df) == pytest.approx(1 - c, rel=1e-8)


def test_edges_and_bad_arguments():
    assert beta_inc(2, 3, 0) == 0 and beta_inc(2, 3, 1) == 1
    assert beta_inc(1, 1, 0.3) == pytest.approx(0.3)  # I_x(1, 1) = x
    assert two_sided_p(math.inf, 5) == 0 and math.isnan(two_sided_p(1.0, 0))
    assert critical_value(0.95, 1e9) == pytest.approx(1.959964, abs=1e-6)  # the normal's
    with pytest.raises(ValueError, match="confidence"):
        critical_value(1.0, 3)
