"""Kernel rates (hardware/kernels.py): a format's kernels timed on a Linear stack, cached per machine, and
the calibration's level 2 scaled by them: a format left out is projected from its runtime's other
formats times the ratio of the two kernels' rates, not from bytes alone."""

from __future__ import annotations

import json

import pytest
from test_calibrate import obs

from quantscope.hardware import kernels
from quantscope.hardware.calibrate import Calibration

pytestmark = pytest.mark.unit


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(kernels, "LAYERS", 2)
    monkeypatch.setattr(kernels, "SIZE", 128)
    monkeypatch.setattr(kernels, "MIN_TIMED_S", 0.001)
    monkeypatch.setattr(kernels, "REPS", 1)


def test_a_torch_and_a_torchao_format_are_timed_with_their_bytes(small):
    pytest.importorskip("torch")
    fp32 = kernels.measure_format("torch", "none", "fp32")
    assert fp32["bytes_per_weight"] == 4 and fp32["compute"] == "fp32" and fp32["runtime"] == "torch"
    assert fp32["decode_Bps"] == pytest.approx(2 * 128 * 128 * 4 / fp32["decode_s"])
    pytest.importorskip("torchao")
    int8 = kernels.measure_format("torchao", "int8-weight-only", "fp32")
    assert 1 <= int8["bytes_per_weight"] < 1.1 and int8["prefill_flops"] > 0


def test_a_calibrated_method_or_another_runtime_is_refused_in_one_line(small):
    from quantscope.errors import UserError

    with pytest.raises(UserError, match="not a torch runtime"):
        kernels.measure_format("llamacpp", "q4_0", "fp32")


def test_rates_are_measured_once_then_read_and_a_failure_is_kept_with_its_reason(small, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    calls = []

    def fake(backend, method, dtype, params=()):
        calls.append(method)
        if method == "broken":
            raise RuntimeError("no kernel here")
        return {"decode_Bps": 1e9, "prefill_flops": 1e10, "compute": "fp32", "runtime": backend}

    monkeypatch.setattr(kernels, "measure_format", fake)
    wanted = [("torch/fp32", "torch", "none", "fp32", ()), ("torchao/broken", "torchao", "broken", "fp32", ())]
    assert kernels.machine_kernels("abc123", 2, wanted) == {}  # never measures unless asked
    got = kernels.machine_kernels("abc123", 2, wanted, measure=True)
    assert set(got) == {"torch/fp32"} and calls == ["none", "broken"]
    assert kernels.machine_kernels("abc123", 2, wanted, measure=True) == got and len(calls) == 2
    cached = json.loads((tmp_path / "quantscope" / "kernels-abc123-t2.json").read_text())
    assert "no kernel here" in cached["formats"]["torchao/broken"]["reason"]


def test_a_left_out_formats_prefill_share_is_scaled_by_the_kernel_rates_and_its_decode_is_not():
    # format a measured (compute share 0.4 of a 1e12 roof); b's prefill kernel reaches half of a's rate
    from dataclasses import replace

    rates = {"a": {"decode_Bps": 9e9, "prefill_flops": 1e10, "peak": 1e12, "runtime": "torch"},
             "b": {"decode_Bps": 3e9, "prefill_flops": 5e9, "peak": 1e12, "runtime": "torch"}}
    a = replace(obs("a", 1e9, 0.6, 0.0), prefill_tps=1.0, prompt=8, prefill_flops=0.4e12 * 8)
    cal = Calibration([a], {"local:x": rates})
    eff = cal.point("local:x", "cpu", "torch", "b")
    assert eff.level == 2 and eff.kappa == pytest.approx(0.2, rel=1e-6) and any("kernel" in n for n in eff.notes)
    assert eff.eta == pytest.approx(0.6)  # decode: the runtime's line, not the kernels (calibrate.py says why)
    plain = Calibration([a]).point("local:x", "cpu", "torch", "b")
    assert plain.kappa == pytest.approx(0.4, rel=1e-6) and plain.eta == pytest.approx(0.6)
    other_runtime = {**rates, "b": {**rates["b"], "runtime": "torchao"}}
    assert Calibration([a], {"local:x": other_runtime}).point("local:x", "cpu", "torch", "b").kappa == \
        pytest.approx(0.4, rel=1e-6)
