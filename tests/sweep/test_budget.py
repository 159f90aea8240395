"""The sweep's time budget: what fits is run, what does not is deferred (not stored) and run by the next sweep."""

import pytest
from helpers.results import make_spec
from test_execute import FakeRunner, label, stored

from quantscope.env import fingerprint
from quantscope.errors import UserError
from quantscope.store import Store
from quantscope.sweep.budget import FINISH_S, UNKNOWN_MIN_S, Budget, budget_order, deferred_notes
from quantscope.sweep.execute import Step, plan, run_sweep

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_step_runs_only_if_its_expected_duration_fits_what_is_left():
    clock = Clock()
    b = Budget(200.0, clock=clock)
    assert b.left() == 200.0 - FINISH_S
    assert b.admits(Step(None, expected_s=150.0), 0)
    clock.now = 100.0
    assert not b.admits(Step(None, expected_s=150.0), 1)  # 80 s left
    assert "expected 150 s, 80 s of the 200 s budget left" in b.deferred[1]
    assert b.admits(Step(None, expected_s=50.0), 2)
    # nothing to expect: the mean of this sweep's runs, else UNKNOWN_MIN_S must be left
    assert not b.admits(Step(None), 3) and f"needs {UNKNOWN_MIN_S:.0f} s" in b.deferred[3]
    b.saw(30.0)
    assert b.admits(Step(None), 4)
    clock.now = 260.0
    assert b.overrun_s() == 60.0


def test_reference_first_then_the_fastest_by_projection_then_the_unprojected_in_matrix_order():
    specs = [make_spec(), make_spec(dtype="bf16"), make_spec("torchao", quant="int8-weight-only"),
             make_spec("ort", quant="int8"), make_spec("ort", quant="int4"), make_spec("llamacpp", quant="q4_0")]
    steps = [Step(s) for s in specs]
    speeds = {1: 15.0, 3: 30.0, 4: 35.0, 5: 70.0}  # torchao (2) has no projection
    assert budget_order(steps, lambda s: s is steps[0], speeds) == [0, 5, 4, 3, 1, 2]
    assert budget_order(steps, lambda s: s is steps[0]) == [0, 1, 2, 3, 4, 5]  # none: the matrix's order
    steps[4].reuse = (7, None)  # a stored row: shown first, it costs nothing
    assert budget_order(steps, lambda s: s is steps[0], speeds) == [0, 4, 5, 3, 1, 2]


def test_8_bit_and_4_bit_weights_take_turns_each_fastest_first():
    """Speed alone measured four 4-bit rows first on a fresh AVX2 machine, each over the default KLD 0.05 there."""
    specs = [make_spec(), make_spec("ort", quant="int4"), make_spec("llamacpp", quant="q4_0"),
             make_spec("llamacpp", quant="q8_0"), make_spec("ort", quant="int8"), make_spec(dtype="bf16")]
    steps = [Step(s) for s in specs]
    speeds = {1: 53.0, 2: 71.0, 3: 45.0, 4: 30.0, 5: 6.0}
    bits = {1: 5.0, 2: 4.5, 3: 8.5, 4: 9.0, 5: 16.0}
    assert budget_order(steps, lambda s: s is steps[0], speeds, bits) == [0, 3, 2, 4, 1, 5]
    assert budget_order(steps, lambda s: s is steps[0], speeds) == [0, 2, 1, 3, 4, 5]  # no bits: speed alone


def test_weight_bits_of_the_default_matrix_split_the_4_bit_formats_from_the_rest():
    from quantscope.sweep.budget import LOW_BITS
    from quantscope.sweep.matrix import DEFAULT_MATRIX
    from quantscope.sweep.progress import weight_bits

    steps = [Step(e.spec(make_spec())) for e in DEFAULT_MATRIX]
    bits = weight_bits(steps)
    low = {label(steps[i].spec) for i, b in bits.items() if b < LOW_BITS}
    assert {"llamacpp/q4_0/fp32", "llamacpp/q4_k_m/fp32", "ort/int4/fp32", "bnb/nf4/fp32"} <= low
    assert not low & {"llamacpp/q8_0/fp32", "ort/int8/fp32[scheme=blockwise]", "torch/fp32", "bnb/int8/fp32"}


def test_deferred_configurations_are_not_stored_and_the_next_sweep_measures_them(tmp_path, monkeypatch):
    env = fingerprint()
    clock = Clock()
    runner = FakeRunner(tmp_path, env)

    def slow_runner(spec, timeout_s=900.0, reference_file=None):
        clock.now += 100.0  # each configuration takes 100 s
        return runner(spec, timeout_s, reference_file)

    monkeypatch.setattr("quantscope.runner.run_spec", slow_runner)
    specs = [make_spec(), make_spec(dtype="bf16"), make_spec("ort", quant="int8"), make_spec("llamacpp", quant="q4_0")]
    with Store(tmp_path / "s.sqlite") as st:
        steps = plan(st, specs, env)
        for s in steps:
            s.expected_s = 100.0
        # 240 s for runs: the reference and one more, the fastest by projection (llama.cpp)
        budget = Budget(260.0, clock=clock, speeds={1: 15.0, 2: 30.0, 3: 60.0})
        deferred_seen = []
        out = run_sweep(st, steps, env, timeout=60.0, budget=budget,
                        on_defer=lambda i, step, why: deferred_seen.append(i))
    assert runner.names == ["torch/fp32", "llamacpp/q4_0/fp32"]
    assert [label(s.spec) for s in out.deferred] == ["torch/bf16", "ort/int8/fp32"] and deferred_seen == [2, 1]
    assert sorted(stored(tmp_path)) == [("llamacpp/q4_0/fp32", "ok"), ("torch/fp32", "ok")]  # nothing of the others
    assert out.exit_code == 0
    note = deferred_notes(steps, budget)[0]
    assert "2 configuration(s) deferred" in note and "ort/int8" in note and "--budget 0" in note
    # the next sweep reuses what is stored and measures only what was deferred
    runner.calls.clear()
    with Store(tmp_path / "s.sqlite") as st:
        out = run_sweep(st, plan(st, specs, env), env, timeout=60.0)
    assert sorted(runner.names) == ["ort/int8/fp32", "torch/bf16"] and not out.deferred


def test_budget_options_that_cannot_apply_are_one_line_errors():
    from quantscope.commands.sweep import plan_budget

    assert plan_budget(None, True, 1, "local") == 600.0
    assert plan_budget(None, True, 3, "local") is None  # --repeat: no default budget
    assert plan_budget(120, False, 1, "local") == 120
    with pytest.raises(UserError, match="--budget must be >= 0"):
        plan_budget(-1, True, 1, "local")
    with pytest.raises(UserError, match="not with --repeat or --executor ray"):
        plan_budget(60, True, 1, "ray")


def test_a_guess_gives_way_to_this_sweeps_own_durations():
    """A projected duration (on a fresh machine, bitsandbytes INT8 was projected at 1,194 s and took 121) is
    replaced by the median of this sweep's runs once there is one; a step's own stored duration is kept."""
    b = Budget(1000.0, clock=Clock(), guessed={1})
    assert b.expected(Step(None, expected_s=1194.0), 1) == 1194.0  # nothing run yet: the guess
    b.saw(70.0)
    b.saw(120.0)
    b.saw(110.0)
    assert b.expected(Step(None, expected_s=1194.0), 1) == 110.0
    assert b.expected(Step(None, expected_s=300.0), 2) == 300.0  # its own duration on this machine
    assert b.admits(Step(None, expected_s=1194.0), 1)


def test_the_guess_leaves_out_the_reference_and_one_time_conversions(tmp_path, monkeypatch):
    """A fresh machine: the reference (every window scored) took 131 s and the first ORT row 254 s, 190 of
    them its export; the rows after are guessed from what measuring costs once converted (64 s)."""
    import dataclasses

    env = fingerprint()
    clock = Clock()
    runner = FakeRunner(tmp_path, env)
    took = {"torch/fp32": (131.0, 0.0), "ort/int4/fp32": (254.0, 190.0)}

    def timed_runner(spec, timeout_s=900.0, reference_file=None):
        seconds, convert = took.get(label(spec), (50.0, 0.0))
        clock.now += seconds
        r = runner(spec, timeout_s, reference_file)
        return dataclasses.replace(r, duration_s=seconds, info={**r.info, "convert_s": convert})

    monkeypatch.setattr("quantscope.runner.run_spec", timed_runner)
    specs = [make_spec(), make_spec("ort", quant="int4"), make_spec("llamacpp", quant="q4_0"),
             make_spec("llamacpp", quant="q8_0")]
    with Store(tmp_path / "s.sqlite") as st:
        steps = plan(st, specs, env)
        for s in steps:
            s.expected_s = 30.0  # the projection's guesses
        budget = Budget(500.0, clock=clock, guessed={0, 1, 2, 3}, speeds={1: 100.0, 2: 90.0, 3: 60.0})
        out = run_sweep(st, steps, env, timeout=60.0, budget=budget)
    assert budget.ran_s[0] == 64.0  # the ORT row without its export; the reference not counted
    # 480 s for runs: 131 + 254 leave 95, llama.cpp q4_0 (expected 64) runs in 50, q8_0 (median 57) does not fit 45
    assert runner.names == ["torch/fp32", "ort/int4/fp32", "llamacpp/q4_0/fp32"]
    assert [label(s.spec) for s in out.deferred] == ["llamacpp/q8_0/fp32"]
    assert "expected 57 s, 45 s of the 500 s budget left" in budget.deferred[3]
