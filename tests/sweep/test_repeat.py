"""sweep --repeat N (each configuration in N worker processes, interleaved passes, N rows of one key) and
--wait-quiet (a bounded wait for a quiet machine before each run), with a fake runner: no worker, no model."""

import numpy as np
import pytest
from helpers.results import make_result, make_spec

from quantscope.analysis.compare import between_process, pool_processes, replicates
from quantscope.analysis.summary import summarize
from quantscope.env import fingerprint
from quantscope.errors import UserError
from quantscope.metrics.contention import contention_info
from quantscope.present import columns as col
from quantscope.result import Result
from quantscope.spec import QualitySpec
from quantscope.store import Store
from quantscope.sweep.executors import LocalExecutor
from quantscope.sweep.repeat import QuietExecutor, check_repeat, run_repeated

pytestmark = pytest.mark.unit

NO_QUALITY = QualitySpec(enabled=False)
SPECS = [make_spec(quality=NO_QUALITY), make_spec(dtype="bf16", quality=NO_QUALITY)]


class Runner:
    """Each call is one worker process: a new seed, so each process's decode differs a little."""

    def __init__(self, env, fail=()):
        self.env, self.fail, self.calls = env, set(fail), []

    def __call__(self, spec, timeout_s=900.0, reference_file=None):
        self.calls.append(spec.quant.dtype)
        if spec.quant.dtype in self.fail:
            return Result(spec=spec, env=self.env, status="failed", reason="RuntimeError: boom")
        return make_result(spec, env=self.env, seed=len(self.calls), decode=20.0 + len(self.calls) % 3)


def sweep(tmp_path, monkeypatch, repeat, runner, **kw):
    monkeypatch.setattr("quantscope.runner.run_spec", runner)
    with Store(tmp_path / "s.sqlite") as st:
        return run_repeated(st, SPECS, runner.env, timeout=60.0, repeat=repeat, **kw)


def test_repeat_measures_each_configuration_in_n_processes_interleaved_and_resumes(tmp_path, monkeypatch):
    runner = Runner(fingerprint())
    out = sweep(tmp_path, monkeypatch, 3, runner)
    assert runner.calls == ["fp32", "bf16"] * 3  # pass by pass, not one configuration 3 times back to back
    assert len(out.rows) == 6 and len({r.run_id for r in out.rows}) == 6 and out.exit_code == 0
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        assert len(st.results(key_hash=SPECS[0].key_hash(), status="ok")) == 3
    again = Runner(runner.env)
    assert len(sweep(tmp_path, monkeypatch, 3, again).rows) == 6 and again.calls == []  # all reused
    more = Runner(runner.env)
    assert len(sweep(tmp_path, monkeypatch, 4, more).rows) == 8 and more.calls == ["fp32", "bf16"]


def test_a_failing_configuration_is_not_tried_once_per_pass(tmp_path, monkeypatch):
    runner = Runner(fingerprint(), fail={"bf16"})
    out = sweep(tmp_path, monkeypatch, 3, runner)
    assert runner.calls == ["fp32", "bf16", "fp32", "fp32"]
    assert [r.result.status for r in out.rows].count("failed") == 1 and out.exit_code == 1


def test_repeat_is_bounded():
    assert check_repeat(1) == 1
    with pytest.raises(UserError, match="--repeat must be between 1 and 20"):
        check_repeat(0)


def test_wait_quiet_waits_before_each_run_and_stores_what_it_found(tmp_path, monkeypatch):
    waits = []

    def wait(max_s):
        waits.append(max_s)
        return {"quiet": True, "waited_s": 1.0, "share": 0.02}

    runner = Runner(fingerprint())
    out = sweep(tmp_path, monkeypatch, 1, runner, executor=QuietExecutor(LocalExecutor(), 30.0, wait=wait))
    assert waits == [30.0, 30.0]
    assert all(r.result.info["wait_quiet"] == {"quiet": True, "waited_s": 1.0, "share": 0.02} for r in out.rows)


def test_wait_quiet_is_for_this_machine_only():
    class Cluster:
        name = "ray"

    with pytest.raises(UserError, match="--executor local"):
        QuietExecutor(Cluster(), 30.0)
    with pytest.raises(UserError, match="finite number of seconds"):
        QuietExecutor(LocalExecutor(), float("inf"))


def test_between_process_pools_with_the_process_as_the_unit():
    """The issue's numbers: two processes at 27.96 and 25.7 tok/s, each with a CI under 1 %."""
    b = between_process([[27.9, 28.0, 27.98, 27.96], [25.7, 25.68, 25.72, 25.7]])
    assert b.processes == 2 and b.means == pytest.approx((27.96, 25.7))
    assert b.spread == pytest.approx(2.26 / 26.83, rel=1e-3)
    assert b.within_rel_ci95 < 0.01 < b.spread  # the within-run CI understates a rerun
    assert b.ci95 == pytest.approx(12.706 * b.sd / 2 ** 0.5, rel=1e-3)  # t(0.975, 1)


def test_replicates_pool_one_key_on_one_machine_and_leave_out_contended_rows():
    a1, a2 = make_result(seed=1, decode=28.0), make_result(seed=2, decode=25.7)
    other_machine = make_result(seed=3, decode=14.6, machine_id="avx2-machine")
    busy = make_result(seed=4, decode=9.0, info={"contention": contention_info([1.7], 2)})
    lone = make_result(make_spec(dtype="bf16"), seed=5)
    pooled = replicates([(1, a1), (2, a2), (3, other_machine), (4, busy), (5, lone)])
    assert set(pooled) == {1, 2} and pooled[1].processes == 2
    summaries = [summarize(i, r) for i, r in [(1, a1), (2, a2), (5, lone)]]
    (between,) = col.between_columns(summaries)
    cell = between.cell(summaries[0])
    assert cell.startswith(f"{pooled[1].mean:.4g} ± ") and "2 proc, spread" in cell
    assert between.cell(summaries[2]) == col.NONE
    assert col.between_columns(summaries[2:]) == ()  # no --repeat: no column
    assert between.header in [c.header for c in col.sweep_columns(summaries[0], summaries)]


def test_sweep_command_repeat_pools_the_processes_in_its_table(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from quantscope.cli import app

    runner = Runner(fingerprint())
    monkeypatch.setattr("quantscope.runner.run_spec", runner)
    args = ["sweep", "--model", "synthetic:tiny-llama", "--no-quality", "--backend", "torch", "--dtype", "fp32",
            "--dtype", "bf16", "--repeat", "3", "--no-report", "--wide", "--store", str(tmp_path / "s.sqlite")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert runner.calls == ["fp32", "bf16"] * 3
    out = " ".join(res.output.split())
    assert "decode, processes pooled" in out and "3 proc, spread" in out and "sweep done: 6 ok" in out


def test_pooling_gives_the_recommendation_one_row_per_configuration_with_one_sample_per_process():
    fp32 = [(i, make_result(seed=i, decode=d)) for i, d in [(1, 27.96), (3, 25.7), (5, 26.9)]]
    busy = (7, make_result(seed=7, decode=9.0, info={"contention": contention_info([1.7], 2)}))
    bf16 = (2, make_result(make_spec(dtype="bf16"), seed=2))
    failed = (4, make_result(make_spec(dtype="fp16"), status="failed"))
    out = pool_processes([fp32[0], bf16, fp32[1], failed, fp32[2], busy])
    assert [i for i, _ in out] == [2, 4, 5]  # the group's newest clean row stands for it
    pooled = out[2][1]
    means = [float(np.mean(r.get("decode_tps").samples)) for _, r in fp32]
    assert pooled.get("decode_tps").samples == pytest.approx(means)  # N = 3 processes, not 15 reps
    assert pooled.info["processes"] == {"runs": [1, 3, 5], "n": 3, "left_out_contended": [7]}
    assert pooled.get("peak_rss_bytes") == fp32[2][1].get("peak_rss_bytes")  # not a per-rep figure: as stored
    assert pool_processes([bf16, failed]) == [bf16, failed]  # no --repeat: unchanged
