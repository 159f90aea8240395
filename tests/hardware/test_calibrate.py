"""Efficiency fitted from measurements: recovers known shares and overheads; intervals from leave-one-out."""

import math

import pytest

from quantscope.hardware.calibrate import Calibration, fit_group
from quantscope.hardware.observations import Obs, published_observations, published_rows

pytestmark = pytest.mark.unit


def obs(fmt, nbytes, eta, overhead, bw=1e11, hw="local:x", runtime="torch", layers=1, kind="cpu"):
    """A decode step of `layers` layers: bytes at eta of the bandwidth plus `overhead` per layer."""
    step = nbytes / (bw * eta) + layers * overhead
    return Obs(hw=hw, kind=kind, runtime=runtime, fmt=fmt, model="m", batch=1, prompt=8, bandwidth_Bps=bw,
               peak_flops=1e12, decode_bytes=nbytes, decode_flops=1.0, prefill_flops=1e9, prefill_bytes=nbytes,
               decode_tps=1 / step, prefill_tps=None, source="test", layers=layers)


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
    here = c.efficiency("a100-80gb-sxm", "gpu", "torchao+compile", "torchao/int4-weight-only")
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


def test_a_format_at_two_sizes_gets_its_own_per_layer_overhead():
    # as on the H200: one format's host cost per layer is 15x another's, and both hold across sizes
    rows = [obs("bf16", 2.5e9, 0.8, 0.0006, layers=16), obs("bf16", 16e9, 0.8, 0.0006, layers=32),
            obs("int8dyn", 1.5e9, 0.6, 0.009, layers=16), obs("int8dyn", 9e9, 0.6, 0.009, layers=32)]
    g = fit_group(rows)
    assert g.overhead("bf16") == pytest.approx(0.0006, rel=1e-6)
    assert g.overhead("int8dyn") == pytest.approx(0.009, rel=1e-6)
    assert g.eta["int8dyn"] == pytest.approx(0.6, rel=1e-6)


def test_an_eager_format_at_one_size_takes_its_share_from_compiled_data_and_scales_its_overhead_by_layers():
    from quantscope.hardware.calibrate import predict_step

    compiled = [obs("bf16", 13e9, 0.7, 0.0, hw="gpu-a", runtime="gpt-fast", kind="gpu"),
                obs("bf16", 130e9, 0.7, 0.0, hw="gpu-a", runtime="gpt-fast", kind="gpu")]
    eager_1b = obs("bf16", 2.5e9, 0.7, 0.0006, hw="gpu-b", runtime="torch", kind="gpu", layers=16)
    c = Calibration([*compiled, eager_1b])
    eff = c.efficiency("gpu-b", "gpu", "torch", "bf16")
    assert eff.level == 0 and eff.eta == pytest.approx(0.7, rel=1e-6)
    assert eff.decode_overhead_s == pytest.approx(0.0006, rel=1e-6)
    assert any("host overhead" in n for n in eff.notes)
    eager_8b = obs("bf16", 16e9, 0.7, 0.0006, hw="gpu-b", runtime="torch", kind="gpu", layers=32)
    t = predict_step(eager_8b.decode_bytes, 1.0, eager_8b.bandwidth_Bps, 1e12, eff, "decode", 32)
    assert 1 / t.seconds == pytest.approx(eager_8b.decode_tps, rel=1e-6)


def test_runs_without_a_kv_cache_are_their_own_runtime():
    from helpers.results import make_spec

    from quantscope.hardware.observations import runtime_of

    assert runtime_of(make_spec("ort", "fp32", options=(("kv_cache", False),))) == "ort-no-kv"
    assert runtime_of(make_spec("ort", "fp32")) == "ort"
    assert runtime_of(make_spec("torch", "fp32", options=(("compile", True),))) == "torch+compile"


def test_a_contended_row_never_calibrates():
    from helpers.results import make_result, make_spec

    from quantscope.hardware.observations import store_observations

    quiet = make_result(make_spec("torch", "fp32"))
    busy = make_result(make_spec("torch", "bf16"), info={"contention": {"flagged": True, "others_cores_mean": 1.5}})
    skipped: list[str] = []
    obs = store_observations([(1, quiet), (2, busy)], skipped=skipped)
    assert [o.run_id for o in obs] == [1]
    assert skipped == ["run 2: measured while other processes competed (contention flag)"]
