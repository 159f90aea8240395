"""The CLI in a subprocess: exit codes, one-line errors, and a real (tiny) run stored with its samples."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from quantscope.models.bundled import bundled_path


def qs(*args: str, store: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "QUANTSCOPE_STORE": str(store)}
    return subprocess.run([sys.executable, "-m", "quantscope.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert p.returncode == code, p.stderr
    err = p.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err


@pytest.mark.unit
def test_missing_model_path_is_one_line_exit_2(tmp_path):
    p = qs("run", "--model", str(tmp_path / "nope.gguf"), store=tmp_path / "s.sqlite")
    assert_one_line_error(p, 2, "does not exist")


@pytest.mark.unit
def test_pickle_checkpoint_is_refused_without_allow_pickle(tmp_path):
    import pickle

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"w": [1, 2, 3]}, protocol=2))
    p = qs("run", "--model", str(model), store=tmp_path / "s.sqlite")
    assert_one_line_error(p, 2, "pickle", "--allow-pickle")


@pytest.mark.unit
def test_unknown_backend_suggests_near_name(tmp_path):
    p = qs("run", "--model", "synthetic:tiny-llama", "--backend", "trch", store=tmp_path / "s.sqlite")
    assert_one_line_error(p, 2, "Did you mean 'torch'")


@pytest.mark.unit
def test_newer_store_is_refused_exit_3_and_untouched(tmp_path):
    store = tmp_path / "s.sqlite"
    assert qs("results", store=store).returncode == 3  # no store yet: nothing created
    assert not store.exists()
    from quantscope.store import Store

    Store(store).close()
    con = sqlite3.connect(store)
    con.execute("INSERT INTO schema_version (version, applied_at, quantscope) VALUES (999, 'x', '9.9')")
    con.commit()
    con.close()
    before = store.read_bytes()
    p = qs("results", store=store)
    assert_one_line_error(p, 3, "newer quantscope")
    assert store.read_bytes() == before


@pytest.mark.integration
def test_truncated_gguf_fails_in_the_worker_with_one_line(tmp_path):
    bad = tmp_path / "cut.gguf"
    with open(bundled_path(), "rb") as f:
        bad.write_bytes(f.read(4 << 20))
    store = tmp_path / "s.sqlite"
    p = qs("run", "--model", str(bad), "--no-quality", store=store, timeout=120)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert "truncated" in p.stdout
    rows = json.loads(qs("results", "--format", "json", store=store).stdout)
    assert rows[0]["status"] == "failed" and "truncated" in rows[0]["reason"]


@pytest.mark.integration
def test_synthetic_run_is_stored_with_raw_samples(tmp_path):
    store = tmp_path / "s.sqlite"
    p = qs("run", "--model", "synthetic:tiny-llama", "--prompt-tokens", "16", "--gen-tokens", "8",
           "--max-seconds", "2", store=store)
    assert p.returncode == 0, p.stderr
    assert "decode" in p.stdout and "tok/s" in p.stdout and "synthetic" in p.stdout
    rows = json.loads(qs("results", "--format", "json", store=store).stdout)
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    ms = {m["name"]: m for m in rows[0]["measurements"]}
    assert len(ms["decode_tps"]["samples"]) >= 3
    assert len(ms["token_latency_s"]["samples"]) == 8 * len(ms["decode_tps"]["samples"])
    assert "nll" not in ms  # synthetic weights: never quality numbers
    assert rows[0]["spec"]["model"]["source"] == "synthetic"


@pytest.mark.unit
def test_help_shows_an_example(tmp_path):
    for cmd in ("run", "results", "env"):
        p = qs(cmd, "--help", store=tmp_path / "s.sqlite")
        assert p.returncode == 0 and "Example: quantscope" in p.stdout
