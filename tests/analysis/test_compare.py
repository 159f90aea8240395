"""compare: ratio CIs and Welch verdicts from raw samples; refusal of incomparable rows, naming the field."""

import math
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers.results import WORKLOAD, make_result, make_spec, store_with, sweep_fixture
from typer.testing import CliRunner

from quantscope.analysis.compare import mean_difference, ratio_ci, ratio_test, welch_p
from quantscope.analysis.pick import pick
from quantscope.commands.compare import check_comparable, compare_rows
from quantscope.errors import UserError
from quantscope.spec import WorkloadSpec
from quantscope.store import Store

pytestmark = pytest.mark.unit


def test_welch_p_is_scipys_unequal_variance_test():
    from scipy.stats import ttest_ind

    a, b = [10.0, 10.4, 9.8, 10.1, 10.3], [10.9, 11.6, 10.2, 11.9]
    assert welch_p(a, b) == pytest.approx(ttest_ind(b, a, equal_var=False).pvalue, rel=1e-12)


def test_ratio_ci_covers_the_true_ratio_about_95_percent_of_the_time():
    # ground truth by simulation: two normal samples whose means are 50 and 60 (ratio 1.2)
    rng = np.random.default_rng(7)
    trials, hits = 2000, 0
    for _ in range(trials):
        r, lo, hi = ratio_ci(rng.normal(50, 4, 6), rng.normal(60, 6, 5))
        hits += lo <= 1.2 <= hi
    assert 0.92 <= hits / trials <= 0.975


def test_ratio_test_verdicts():
    fast = ratio_test([10.0, 10.2, 9.9, 10.1], [12.0, 12.1, 11.9, 12.2])
    assert fast.significant and fast.verdict.startswith("faster, significant (Welch p=")
    assert fast.lo < fast.ratio < fast.hi
    slow = ratio_test([12.0, 12.1, 11.9, 12.2], [10.0, 10.2, 9.9, 10.1])
    assert slow.verdict.startswith("slower, significant")
    same = ratio_test([10.0, 11.0, 9.0, 10.5], [10.2, 9.4, 11.1, 10.0])
    assert not same.significant and same.verdict.startswith("no significant difference")
    one = ratio_test([10.0], [12.0])
    assert math.isnan(one.lo) and "too few repetitions" in one.verdict


def test_paired_difference_uses_the_same_tokens():
    a = np.array([0.1, 0.5, 0.9, 0.3, 0.7])
    d = mean_difference(a, a + 0.01)
    assert d.paired and d.diff == pytest.approx(0.01) and d.se == pytest.approx(0.0, abs=1e-12)
    u = mean_difference(a, [0.2, 0.3])
    assert not u.paired and u.se > 0


def test_check_comparable_names_the_differing_field_and_force_overrides():
    base = (1, make_result(make_spec()))
    other = (2, make_result(make_spec(dtype="bf16", workload=WorkloadSpec(max_reps=5, max_seconds=10.0,
                                                                          gen_tokens=32))))
    assert WORKLOAD.gen_tokens == 64
    with pytest.raises(UserError) as e:
        check_comparable(base, [other], force=False)
    msg = str(e.value)
    assert "run 2 differs from baseline run 1 in workload.gen_tokens (32 vs 64)" in msg and "--force" in msg
    assert check_comparable(base, [other], force=True) == [
        "run 2 differs from baseline run 1 in workload.gen_tokens (32 vs 64)"]


@pytest.mark.parametrize("other, field", [
    (make_result(make_spec(dtype="bf16"), machine_id="another-machine"), "machine_id"),
    (make_result(make_spec(dtype="bf16", model_ref="other-model")), "model.ref"),
    (make_result(make_spec("ort", quant="int8", quality=make_spec().quality.__class__(max_tokens=16384))),
     "quality.max_tokens"),
])
def test_refusal_names_model_recipe_or_machine(other, field):
    with pytest.raises(UserError, match=f"in {field} "):
        check_comparable((1, make_result(make_spec())), [(2, other)], force=False)


def test_backend_quant_and_options_are_what_is_compared():
    base = (1, make_result(make_spec()))
    other = (2, make_result(make_spec("ort", quant="int8", options=(("kv_cache", False),))))
    assert check_comparable(base, [other], force=False) == []


def test_pick_by_run_id_or_key_prefix(tmp_path):
    ids = store_with(tmp_path / "s.sqlite", sweep_fixture())
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        assert pick(st, str(ids[1]))[0] == ids[1]
        key = st.get(ids[2]).spec.key_hash()
        assert pick(st, key[:8])[0] == ids[2]
        with pytest.raises(UserError, match="neither a run id"):
            pick(st, "zz")
        with pytest.raises(UserError, match="no stored run has id"):
            pick(st, "ffffffffff")


def test_compare_command_table(tmp_path):
    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    ids = store_with(store, sweep_fixture())
    res = CliRunner().invoke(app, ["compare", str(ids[0]), str(ids[1]), str(ids[2]), "--store", str(store)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "run 2 torch/bf16: decode faster, significant (Welch p=" in out
    assert "differing: backend, quant.dtype, quant.method" in out
    with Store(store, readonly=True) as st:
        rows, verdicts = compare_rows((ids[0], st.get(ids[0])), [(i, st.get(i)) for i in ids[1:3]])
    assert rows[0]["decode ratio [95% CI]"] == "1 (baseline)"
    assert re.fullmatch(r"1\.\d+x \[1\.\d+, 1\.\d+\]\*", rows[1]["decode ratio [95% CI]"])
    assert rows[1]["peak RSS [MiB]"] == "620.0 (-280.0, 0.69x)"  # bf16 620 MiB against 900 MiB
    assert rows[1]["ΔKLD [nat]"].startswith("+0.00")  # against the reference: its own KLD
    assert len(verdicts) == 2


def test_compare_refuses_a_failed_row(tmp_path):
    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    ids = store_with(store, sweep_fixture())
    res = CliRunner().invoke(app, ["compare", str(ids[0]), str(ids[4]), "--store", str(store)])
    assert res.exit_code != 0 and "is unsupported, with nothing measured" in str(res.exception)


def test_compare_cli_refusal_is_one_line_exit_2(tmp_path):
    store = tmp_path / "s.sqlite"
    ids = store_with(store, [make_result(make_spec()), make_result(make_spec(dtype="bf16"), machine_id="m2")])
    p = subprocess.run([sys.executable, "-m", "quantscope.cli", "compare", str(ids[0]), str(ids[1]),
                        "--store", str(store)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "in machine_id" in p.stderr
    forced = subprocess.run([sys.executable, "-m", "quantscope.cli", "compare", str(ids[0]), str(ids[1]),
                             "--store", str(store), "--force"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0, forced.stderr
    assert "warning:" in forced.stdout and "machine_id" in forced.stdout


def test_welch_p_and_t_quantile_equal_scipy_stats():
    """welch_p and t_quantile use scipy.special (scipy.stats costs seconds to import): the same numbers."""
    import numpy as np
    from scipy.stats import t, ttest_ind

    from quantscope.analysis.compare import welch_p
    from quantscope.metrics.stats import t_quantile

    rng = np.random.default_rng(0)
    for n_a, n_b, shift in [(2, 2, 0.1), (3, 10, 1.0), (5, 5, 0.0), (30, 4, 3.0)]:
        a, b = rng.normal(10, 1, n_a), rng.normal(10 + shift, 2, n_b)
        assert welch_p(a, b) == pytest.approx(ttest_ind(b, a, equal_var=False).pvalue, rel=1e-9)
    for dof in (1, 2, 7, 30, 1000):
        assert t_quantile(0.95, dof) == pytest.approx(t.ppf(0.975, dof), rel=1e-12)
