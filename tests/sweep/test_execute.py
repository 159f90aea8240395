"""Sweep logic with a fake runner (no worker, no model): resume, failures, Ctrl-C, the reference first."""

import re

import pytest
from helpers.results import make_env, make_result, make_spec
from typer.testing import CliRunner

from quantscope.env import fingerprint
from quantscope.result import Result
from quantscope.spec import reference_spec
from quantscope.store import Store
from quantscope.sweep.execute import plan, run_sweep

pytestmark = pytest.mark.unit


def label(spec):
    return f"{spec.backend}/{spec.quant.label}"


class FakeRunner:
    """Stands in for quantscope.runner.run_spec: records each call; fails, interrupts or succeeds."""

    def __init__(self, tmp_path, env, fail=(), interrupt=()):
        self.tmp, self.env = tmp_path, env
        self.fail, self.interrupt = set(fail), set(interrupt)
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, spec, timeout_s=900.0, reference_file=None):
        name = label(spec)
        self.calls.append((name, reference_file))
        if name in self.interrupt:
            raise KeyboardInterrupt  # what run_spec re-raises after killing its worker
        if name in self.fail:
            return Result(spec=spec, env=self.env, status="failed", reason="RuntimeError: boom")
        info = {}
        is_ref = spec.quality.enabled and reference_spec(spec) == spec
        if is_ref:
            ref = self.tmp / "reference.bin"
            ref.write_bytes(b"log-probs")
            info["reference_file"] = str(ref)
        return make_result(spec, env=self.env, info=info, kld=None if is_ref else 0.01, top1=0.95)

    @property
    def names(self):
        return [n for n, _ in self.calls]


SPECS = [make_spec(), make_spec(dtype="bf16"), make_spec("ort", quant="int8"), make_spec("llamacpp", quant="q4_0")]


@pytest.fixture
def env():
    return fingerprint()  # find_reference looks up the reference by this machine's id


def sweep(tmp_path, env, runner, monkeypatch, specs=SPECS, force=False):
    monkeypatch.setattr("quantscope.runner.run_spec", runner)
    with Store(tmp_path / "s.sqlite") as st:
        steps = plan(st, specs, env, force)
        return run_sweep(st, steps, env, timeout=60.0), steps


def stored(tmp_path):
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        return [(label(r.spec), r.status) for _, r in reversed(st.results())]


def test_resume_skips_finished_and_redoes_the_interrupted_one_exactly_once(tmp_path, env, monkeypatch):
    first = FakeRunner(tmp_path, env, interrupt={"ort/int8/fp32"})
    out, _ = sweep(tmp_path, env, first, monkeypatch)
    assert out.interrupted and out.exit_code == 130
    assert first.names == ["torch/fp32", "torch/bf16", "ort/int8/fp32"]  # stopped: q4_0 never started
    # every other row got the reference's log-probs, written by the reference that ran first
    assert first.calls[1] == ("torch/bf16", str(tmp_path / "reference.bin"))
    assert stored(tmp_path) == [("torch/fp32", "ok"), ("torch/bf16", "ok"), ("ort/int8/fp32", "interrupted")]
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        assert "Ctrl-C" in st.results(limit=1)[0][1].reason

    second = FakeRunner(tmp_path, env)
    out, steps = sweep(tmp_path, env, second, monkeypatch)
    assert [s.reuse is not None for s in steps] == [True, True, False, False]
    assert second.names == ["ort/int8/fp32", "llamacpp/q4_0/fp32"]
    assert out.exit_code == 0 and [r.reused for r in out.rows] == [True, True, False, False]

    third = FakeRunner(tmp_path, env)
    out, _ = sweep(tmp_path, env, third, monkeypatch)
    assert third.calls == [] and out.exit_code == 0
    assert len(stored(tmp_path)) == 5  # 3 + 2 rows: nothing was run twice


def test_a_failing_configuration_is_a_row_the_sweep_goes_on_and_the_exit_code_says_so(tmp_path, env, monkeypatch):
    runner = FakeRunner(tmp_path, env, fail={"torch/bf16"})
    out, _ = sweep(tmp_path, env, runner, monkeypatch)
    assert runner.names == [label(s) for s in SPECS]
    assert [r.result.status for r in out.rows] == ["ok", "failed", "ok", "ok"]
    assert out.exit_code == 1 and out.counts() == {"ok": 3, "failed": 1}
    again = FakeRunner(tmp_path, env)
    out, _ = sweep(tmp_path, env, again, monkeypatch)
    assert again.names == ["torch/bf16"] and out.exit_code == 0


def test_an_unknown_backend_is_an_unsupported_row_without_a_worker(tmp_path, env, monkeypatch):
    runner = FakeRunner(tmp_path, env)
    out, _ = sweep(tmp_path, env, runner, monkeypatch, specs=[SPECS[0], make_spec("tensorrt")])
    assert runner.names == ["torch/fp32"]
    row = out.rows[1].result
    assert row.status == "unsupported" and "unknown backend 'tensorrt'" in row.reason
    assert out.exit_code == 0  # unsupported is an answer, not a failure


def test_force_measures_stored_configurations_again(tmp_path, env, monkeypatch):
    sweep(tmp_path, env, FakeRunner(tmp_path, env), monkeypatch)
    runner = FakeRunner(tmp_path, env)
    sweep(tmp_path, env, runner, monkeypatch, force=True)
    assert runner.names == [label(s) for s in SPECS]


def test_unsupported_rows_are_reused_until_the_software_changes(tmp_path, monkeypatch):
    old = make_env(packages={"torchao": "0.18.0"})
    with Store(tmp_path / "s.sqlite") as st:
        spec = make_spec("torchao", "bf16", "float8-dynamic")
        st.add(make_result(spec, status="unsupported", env=old))
        assert plan(st, [spec], old)[0].reuse is not None
        new = make_env(packages={"torchao": "0.19.0"})
        assert plan(st, [spec], new)[0].reuse is None  # a new torchao may support it now


def test_other_machines_rows_are_not_reused(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        st.add(make_result(SPECS[1], env=make_env("other-machine"), kld=0.01))
        assert plan(st, [SPECS[1]], make_env("this-machine"))[0].reuse is None


def test_an_ok_row_measured_without_the_reference_is_measured_again(tmp_path, env):
    note = {"quality": "not measured: no reference log-probs were given to this run"}
    with Store(tmp_path / "s.sqlite") as st:
        st.add(make_result(SPECS[1], env=env, ppl_nll=None, info=note))
        assert plan(st, [SPECS[1]], env)[0].reuse is None


def test_a_failed_reference_is_not_retried_for_every_row(tmp_path, env, monkeypatch):
    runner = FakeRunner(tmp_path, env, fail={"torch/fp32"})
    out, _ = sweep(tmp_path, env, runner, monkeypatch)
    assert runner.calls == [(label(s), None) for s in SPECS]  # the others run, without a reference file
    assert out.exit_code == 1


def test_sweep_command_prints_table_recommendation_and_report_and_reuses_on_second_call(tmp_path, monkeypatch):
    from quantscope.cli import app

    env = fingerprint()
    runner = FakeRunner(tmp_path, env, fail={"torch/bf16"})
    monkeypatch.setattr("quantscope.runner.run_spec", runner)
    report = tmp_path / "r.html"
    args = ["sweep", "--model", "synthetic:tiny-llama", "--no-quality", "--backend", "torch",
            "--dtype", "fp32", "--dtype", "bf16", "--store", str(tmp_path / "s.sqlite"), "--report", str(report)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output  # torch/bf16 failed
    out = " ".join(res.output.split())
    assert re.search(r"│ +1 │ torch/fp32 +│ ok +│ +20\.\d+ ± [\d.]+ │ +1 \(baseline\)", res.output)
    assert "torch/bf16 failed: RuntimeError: boom" in out
    assert "Recommendation (goal balanced" in out and "ship torch/fp32" in out
    assert f"report: {report}" in out and report.is_file()
    assert "sweep done: 1 failed, 1 ok" in out  # an unknown backend is refused before (tests/test_cli_errors.py)
    assert runner.names == ["torch/fp32", "torch/bf16"]

    again = FakeRunner(tmp_path, env)
    monkeypatch.setattr("quantscope.runner.run_spec", again)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert again.names == ["torch/bf16"]  # only the failed one; the ok row is reused


def test_sweep_command_ctrl_c_exit_130_keeps_finished_rows(tmp_path, monkeypatch):
    from quantscope.cli import app

    runner = FakeRunner(tmp_path, fingerprint(), interrupt={"torch/bf16"})
    monkeypatch.setattr("quantscope.runner.run_spec", runner)
    res = CliRunner().invoke(app, ["sweep", "--model", "synthetic:tiny-llama", "--no-quality", "--dtype", "fp32",
                                   "--dtype", "bf16", "--store", str(tmp_path / "s.sqlite"), "--no-report"])
    assert res.exit_code == 130
    assert "sweep interrupted: 1 interrupted, 1 ok" in " ".join(res.output.split())
    assert stored(tmp_path) == [("torch/fp32", "ok"), ("torch/bf16", "interrupted")]


def test_matrix_and_flags_together_are_refused(tmp_path):
    from quantscope.cli import app

    (tmp_path / "m.toml").write_text('[[config]]\nbackend = "torch"\n')
    res = CliRunner().invoke(app, ["sweep", "--matrix", str(tmp_path / "m.toml"), "--backend", "torch",
                                   "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code != 0
    assert "not both" in str(res.exception)
