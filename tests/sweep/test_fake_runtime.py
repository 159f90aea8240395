"""Adding a runtime is one folder: a fake one (tests/helpers/fake_runtime) swept through the local executor.

The fake runtime is a plug-in named in $QUANTSCOPE_PLUGINS; the sweep's worker processes find it by
name like a built-in one, measure it for real (its work is numpy), and the driver stores the rows.
"""

from dataclasses import replace
from pathlib import Path

import pytest

from quantscope.env import fingerprint
from quantscope.spec import ModelSpec, QualitySpec, QuantSpec, RunSpec, WorkloadSpec
from quantscope.store import Store
from quantscope.sweep.execute import plan, run_sweep
from quantscope.sweep.executors import LocalExecutor

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_plugin(monkeypatch):
    monkeypatch.setenv("QUANTSCOPE_PLUGINS", "helpers.fake_runtime")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the worker is a fresh interpreter


def spec(dtype: str) -> RunSpec:
    return RunSpec(model=ModelSpec("synthetic", "tiny-llama"), backend="fake", quant=QuantSpec(dtype=dtype),
                   workload=WorkloadSpec(prompt_tokens=8, gen_tokens=4, warmup=0, min_reps=1, max_reps=2),
                   quality=QualitySpec(enabled=False))


def test_a_fake_runtime_folder_is_swept_through_the_local_executor_and_stored(tmp_path, fake_plugin):
    env = fingerprint()
    specs = [spec("fp32"), spec("fp16"), replace(spec("fp32"), device="cuda")]
    with Store(tmp_path / "s.sqlite") as st:
        outcome = run_sweep(st, plan(st, specs, env), env, timeout=120.0, executor=LocalExecutor())
    assert [r.result.status for r in outcome.rows] == ["ok", "ok", "unsupported"], \
        [r.result.reason for r in outcome.rows]
    assert outcome.rows[2].result.reason == "the fake runtime runs on the CPU only"
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        stored = {r.spec.key_hash(): r for _, r in st.results()}
    fp32, fp16 = (stored[s.key_hash()] for s in specs[:2])
    assert fp32.get("decode_tps").samples and all(t > 0 for t in fp32.get("decode_tps").samples)
    # the fp16 table is half the fp32 one: weight bytes come from what the runtime loaded
    assert fp16.get("weight_bytes").value * 2 == fp32.get("weight_bytes").value
    assert fp32.info["fake_width"] == 64


def test_a_second_sweep_reuses_the_fake_runtimes_rows(tmp_path, fake_plugin):
    env = fingerprint()
    with Store(tmp_path / "s.sqlite") as st:
        run_sweep(st, plan(st, [spec("fp32")], env), env, timeout=120.0)
        again = plan(st, [spec("fp32")], env)
    assert again[0].reuse is not None
