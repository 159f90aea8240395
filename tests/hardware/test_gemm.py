"""The GEMM microbenchmark: 2*M*N*K operations, checked results, cached per machine like the bandwidth."""

import json

import pytest

from quantscope.hardware import gemm

pytestmark = pytest.mark.unit


def test_operation_count_is_two_per_multiply_add():
    assert gemm.gemm_flops(2, 3, 4) == 48


def test_small_measurement_covers_each_dtype_or_says_why():
    pytest.importorskip("torch")
    g = gemm.measure_gemm(threads=1, size=128, reps=1)
    assert g["flops"]["fp32"] > 1e8
    for dtype in gemm.DTYPES:
        assert dtype in g["flops"] or dtype in g["skipped"]


def test_machine_gemm_measures_once_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    calls = []

    def fake(threads):
        calls.append(threads)
        return {"flops": {"fp32": 1e11}, "skipped": {}, "threads": threads, "method": "fake"}

    monkeypatch.setattr(gemm, "measure_gemm", fake)
    first = gemm.machine_gemm("abc123", 2)
    second = gemm.machine_gemm("abc123", 2)
    assert calls == [2] and first["flops"] == second["flops"] == {"fp32": 1e11}
    cached = json.loads((tmp_path / "quantscope" / "gemm-abc123-t2.json").read_text())
    assert cached["machine_id"] == "abc123" and "measured_at" in cached
