"""The GPU telemetry plot: drawn from stored NVML series, absent from a CPU-only report."""

import pytest
from helpers.results import make_result, make_spec

from quantscope.report import telemetry
from quantscope.report.html import render_report
from quantscope.result import Measurement

pytestmark = pytest.mark.unit


def gpu_row(dtype: str, watts: float):
    r = make_result(make_spec(dtype=dtype))
    meta = {"t_s": [0.0, 0.1, 0.2], "interval_s": 0.1, "source": "NVML"}
    series = (Measurement("gpu_util_pct", "%", [40.0, 95.0, 97.0], None, meta),
              Measurement("gpu_power_w", "W", [watts * 0.5, watts, watts], False, meta))
    return r.__class__(**{**r.__dict__, "measurements": r.measurements + series})


def test_each_configuration_is_a_line_and_an_unreported_quantity_says_so():
    rows = [(1, gpu_row("fp32", 600.0)), (2, gpu_row("bf16", 450.0))]
    assert telemetry.has_telemetry(rows)
    fig = telemetry.gpu_telemetry(rows)
    util, power, temp, clock = fig.axes[:4]
    assert len(util.lines) == len(power.lines) == 2
    assert list(power.lines[0].get_ydata()) == [300.0, 600.0, 600.0]
    assert not temp.lines and "not reported by NVML" in temp.texts[0].get_text()


def test_a_cpu_report_has_no_telemetry_panel_and_a_gpu_report_has_one():
    cpu = render_report([(1, make_result())], goal="balanced")
    gpu = render_report([(1, gpu_row("fp32", 600.0))], goal="balanced")
    assert "GPU telemetry" not in cpu and "GPU telemetry" in gpu
