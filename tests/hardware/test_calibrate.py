"""Efficiency fitted from measurements: recovers known shares and overheads; intervals from leave-one-out."""

import math

import pytest

from quantscope.hardware.calibrate import Calibration, fit_group
from quantscope.hardware.observations import Obs, published_observations, published_rows

pytestmark = pytest.mark.unit


def obs(fmt, nbytes, eta, overhead, bw=1e11, hw="local:x", runtime="torch"):
    step = nbytes / (bw * eta) + overhead
    return Obs(hw=hw, kind="cpu", runtime=runtime, fmt=fmt, model="m", batch=1, prompt=8, bandwidth_Bps=bw,
               peak_flops=1e12, decode_bytes=nbytes, decode_flops=1.0, prefill_flops=1e9, prefill_bytes=nbytes,
               decode_tps=1 / step, prefill_tps=None, source="test")


def test_two_sizes_identify_the_share_and_the_per_step_overhead():
    rows = [obs("a", 1e9, 0.6, 0.004), obs("a", 8e9, 0.6, 0.004), obs("b", 4e9, 0.3, 0.004)]
    g = fit_group(rows)
    assert g.decode_overhead_s == pytest.approx(0.004, rel=1e-6)
    assert g.eta["a"] == pytest.approx(0.6, rel=1e-6) and g.eta["b"] == pytest.approx(0.3, rel=1e-6)


def test_one_size_per_format_keeps_overhead_zero_and_reads_the_share_directly():
    g = fit_group([obs("a", 1e9, 0.5, 0.0), obs("b", 2e9, 0.25, 0.0)])
    assert g.decode_overhead_s == 0.0 and g.eta == pytest.approx({"a": 0.5, "b": 0.25})


def test_a_missing_runtime_falls_back_and_widens_the_interval():
    c = Calibration(published_observations())
    here = c.efficiency("a100-80gb-sxm", "gpu", "torchao", "torchao/int4-weight-only")
    other = c.efficiency("a100-80gb-sxm", "gpu", "torch", "torch/bf16")  # no data for our torch runtime
    none = c.efficiency("local:nobody", "cpu", "torch", "torch/fp32")
    assert here.level == 0 and other.level == 3 and none.level == 4
    assert here.q_decode < other.q_decode < none.q_decode
    assert any("no torch data" in n for n in other.notes)


def test_published_rows_cite_sources_and_reproduce_their_own_bandwidth_figures():
    rows = published_rows()
    assert all(r["url"].startswith("https://github.com/") for r in rows)
    for row, o in zip(rows, published_observations(), strict=True):
        # our bytes per step x their tok/s lands within 20 % of the source's own GB/s column
        ours = o.decode_bytes * o.decode_tps / 1e9
        assert ours == pytest.approx(row["reported_gbps"], rel=0.2), row


def test_leave_one_out_on_published_data_is_honest_about_each_row():
    errs = Calibration(published_observations()).loo_errors()
    level0 = [abs(math.expm1(e["decode_log_err"])) for e in errs if e["level"] == 0]
    assert level0 and max(level0) < 0.25


def test_a_missing_format_follows_the_runtimes_shared_line_when_overhead_bound():
    # every format: 10 ms of overhead plus bytes at half the bandwidth; the left-out one is predicted
    rows = [obs(f, b, 0.5, 0.010) for f, b in (("a", 1e9), ("b", 2e9), ("c", 4e9))]
    c = Calibration(rows[:2])
    eff = c.point("local:x", "cpu", "torch", "c")
    assert eff.level == 2 and eff.eta == pytest.approx(0.5) and eff.decode_overhead_s == pytest.approx(0.010)
