"""`quantscope estimate` and `quantscope fit` in a subprocess: labelled projections, JSON keys, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quantscope.models.synthetic import config_for

pytestmark = pytest.mark.unit


def qs(*args: str, store: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QUANTSCOPE_STORE": str(store)}  # no store there: published data only
    return subprocess.run([sys.executable, "-m", "quantscope.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def one_line_error(p: subprocess.CompletedProcess, *needles: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    err = p.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def test_json_has_the_promised_keys_and_is_labelled_projected(tmp_path):
    p = qs("estimate", "-m", "synthetic:llama3-8b", "--hardware", "a100-80gb-sxm", "--backend", "torchao",
           "--quant", "int4-weight-only", "--dtype", "bf16", "--price-per-hour", "2", "--format", "json",
           store=tmp_path / "none.sqlite")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("decode_tps", "decode_tps_low", "decode_tps_high", "prefill_tps", "ttft_s", "memory_bytes",
                "fits", "bound"):
        assert key in d, key
    assert d["projected"] is True and d["fits"] is True and d["bound"] == "memory"
    assert d["decode_tps_low"] < d["decode_tps"] < d["decode_tps_high"]
    assert d["cost_per_mtok"] == pytest.approx(2 / (d["decode_tps"] * 3600) * 1e6)


def test_table_marks_every_figure_projected_and_unsupported_rows_say_why(tmp_path):
    p = qs("estimate", "-m", "synthetic:llama2-7b", "--hardware", "t4,h200", "--dtype", "bf16",
           store=tmp_path / "none.sqlite")
    assert p.returncode == 0, p.stderr
    assert "PROJECTED" in p.stdout and "no bf16" in p.stdout


def test_unknown_hardware_names_the_near_ids(tmp_path):
    one_line_error(qs("estimate", "--hardware", "h100", store=tmp_path / "s"), "unknown hardware id", "h100-sxm")


def test_malformed_config_names_the_field(tmp_path):
    cfg = config_for("llama2-7b")
    del cfg["intermediate_size"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    one_line_error(qs("estimate", "-m", str(tmp_path / "config.json"), "--hardware", "t4", store=tmp_path / "s"),
                   "intermediate_size")


def test_a_context_that_cannot_fit_says_by_how_much(tmp_path):
    p = qs("estimate", "-m", "synthetic:llama2-7b", "--hardware", "t4", "--dtype", "fp16", "--context", "100000",
           store=tmp_path / "s")
    one_line_error(p, "does not fit t4", "GB more than")


def test_fit_table_covers_models_and_precisions(tmp_path):
    p = qs("fit", "--hardware", "t4,a100-80gb-sxm", "-m", "synthetic:llama2-70b,synthetic:distilgpt2",
           "--quant", "fp16,int4", store=tmp_path / "s")
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("synthetic:llama2-70b")]
    assert len(lines) == 2 and lines[0].count("no (") == 2  # 70B fp16 fits neither
