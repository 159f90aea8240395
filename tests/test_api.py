"""quantscope.load_results: one DataFrame row per run, units in column names, raw samples as lists."""

import math
import subprocess
import sys

import pytest
from helpers.results import store_with, sweep_fixture

import quantscope
from quantscope.errors import StoreError

pytestmark = pytest.mark.unit


def test_one_row_per_run_with_units_and_samples(tmp_path):
    store = tmp_path / "s.sqlite"
    results = sweep_fixture()
    ids = store_with(store, results)
    df = quantscope.load_results(store)
    assert list(df["run_id"]) == ids
    assert list(df["status"]) == ["ok", "ok", "ok", "ok", "unsupported"]
    assert list(df["config"]) == ["torch/fp32", "torch/bf16", "llamacpp/q8_0/fp32", "llamacpp/q4_0/fp32",
                                  "torchao/float8-dynamic/bf16"]
    for col in ("decode_tps_mean", "decode_tps_sd", "decode_tps_ci95", "decode_tps_n", "decode_tps_samples",
                "prefill_tps_mean", "ttft_s_mean", "token_latency_s_samples", "peak_rss_bytes_mean",
                "weight_bytes_mean", "achieved_bandwidth_Bps_mean", "kld_nat_mean", "kld_nat_se",
                "same_top1_fraction_mean", "nll_nat_samples", "ppl", "ppl_se", "duration_s"):
        assert col in df.columns, col
    row = {run_id: df.iloc[i] for i, run_id in enumerate(df["run_id"])}
    bf16 = row[ids[1]]
    samples = results[1].get("decode_tps").samples
    assert bf16["decode_tps_samples"] == list(samples)
    assert bf16["decode_tps_mean"] == pytest.approx(sum(samples) / len(samples))
    assert bf16["decode_tps_n"] == 5
    assert bf16["peak_rss_bytes_mean"] == 620 * 2**20
    assert bf16["kld_nat_mean"] == pytest.approx(sum(results[1].get("kld").samples) / 256)
    ref = row[ids[0]]
    assert bool(ref["is_reference"]) and math.isnan(ref["kld_nat_mean"])
    assert math.isnan(row[ids[4]]["decode_tps_mean"])  # the unsupported row: nothing measured
    assert row[ids[4]]["reason"].startswith("torchao 0.18.0")


def test_load_results_never_creates_a_store(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        quantscope.load_results(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_import_quantscope_does_not_import_pandas_or_matplotlib():
    code = "import sys, quantscope, quantscope.cli; print(sorted(m for m in ('pandas', 'matplotlib', 'jinja2') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
