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
        assert dtype in g["flops"] or any(k.startswith(f"{dtype} ") for k in g["skipped"])
    for dtype, shapes in g["by_shape"].items():  # every shape of ROWS (capped at size), the peak their best
        assert set(shapes) <= {"1x128x128", "128x128x128"} and g["flops"][dtype] == max(shapes.values())
    assert set(g["by_shape"]["fp32"]) == {"1x128x128", "128x128x128"}


def test_machine_gemm_measures_once_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    calls = []

    def fake(threads):
        calls.append(threads)
        return {"flops": {"fp32": 1e11}, "skipped": {}, "threads": threads, "method": gemm.METHOD}

    monkeypatch.setattr(gemm, "measure_gemm", fake)
    first = gemm.machine_gemm("abc123", 2)
    second = gemm.machine_gemm("abc123", 2)
    assert calls == [2] and first["flops"] == second["flops"] == {"fp32": 1e11}
    cached = json.loads((tmp_path / "quantscope" / "gemm-abc123-t2.json").read_text())
    assert cached["machine_id"] == "abc123" and "measured_at" in cached


def test_a_cache_written_by_another_method_is_measured_again(tmp_path, monkeypatch):
    # the square-only method of before made bf16 decodes look compute-bound (gemm.py's docstring)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    folder = tmp_path / "quantscope"
    folder.mkdir()
    old = {"flops": {"bf16": 8.8e8}, "machine_id": "abc123", "method": "torch matmul 1024^3, best of 5"}
    (folder / "gemm-abc123-t2.json").write_text(json.dumps(old))
    from quantscope.hardware.observations import cached_peaks

    assert cached_peaks("abc123", 2) == {}  # not trusted for projections either
    monkeypatch.setattr(gemm, "measure_gemm", lambda threads: {"flops": {"bf16": 9e9}, "method": gemm.METHOD})
    assert gemm.machine_gemm("abc123", 2)["flops"] == {"bf16": 9e9}
    assert cached_peaks("abc123", 2) == {"bf16": 9e9}
