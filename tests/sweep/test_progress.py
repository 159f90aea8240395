"""The sweep's ETA and per-configuration lines."""

import io

import pytest
from helpers.results import make_result, make_spec
from rich.console import Console

from quantscope.sweep.execute import Row, Step
from quantscope.sweep.progress import SweepDisplay, expected_remaining_s, row_line

pytestmark = pytest.mark.unit


def test_eta_sums_expected_durations_and_skips_reused_rows():
    steps = [Step(None, expected_s=100.0), Step(None, reuse=(1, None), expected_s=50.0), Step(None, expected_s=30.0)]
    assert expected_remaining_s(steps, 0, started=0.0, ran_s=[], now=40.0) == 60.0 + 30.0
    assert expected_remaining_s(steps, 0, started=0.0, ran_s=[], now=500.0) == 30.0  # overdue: 0, not negative


def test_eta_unknown_until_one_configuration_has_run_then_uses_their_mean():
    steps = [Step(None), Step(None), Step(None)]
    assert expected_remaining_s(steps, 0, None, [], 0.0) is None
    assert expected_remaining_s(steps, 1, None, [20.0], 0.0) == 40.0


def test_row_line_escapes_markup_and_says_what_was_reused():
    spec = make_spec("ort", quant="int8", options=(("note", "[bold]x[/bold]"),))
    ran = Row(spec, 7, make_result(spec, status="failed", reason="[red]boom[/red]"), reused=False)
    console = Console(file=io.StringIO(), width=200)
    console.print(row_line(2, 5, ran), highlight=False)
    text = console.file.getvalue()
    assert "[3/5] ort/int8/fp32 note=[bold]x[/bold] failed in 1.0 s: [red]boom[/red]" in text
    reused = Row(spec, 7, make_result(spec, kld=0.01), reused=True)
    assert "reused run 7 (key " in row_line(0, 1, reused)


def test_display_prints_one_line_per_configuration():
    spec = make_spec()
    steps = [Step(spec, expected_s=1.0)]
    console = Console(file=io.StringIO(), width=200)
    with SweepDisplay(steps, console) as d:
        d.on_start(0, steps[0])
        d.on_done(0, Row(spec, 1, make_result(spec), reused=False))
    assert "[1/1] torch/fp32 ok in 12.0 s  decode 2" in console.file.getvalue()
    assert d.remaining() == 0.0


def test_eta_is_guessed_from_the_start_from_the_same_models_stored_runs_scaled_by_the_work(tmp_path):
    from dataclasses import replace

    from helpers.results import store_with

    from quantscope.store import Store
    from quantscope.sweep.progress import guess_durations, timed_tokens

    done = make_result(make_spec())  # 12 s on this machine ("test-machine")
    store_with(tmp_path / "s.sqlite", [done])
    twice = make_spec(dtype="bf16", workload=replace(done.spec.workload, max_reps=2 * done.spec.workload.max_reps
                                                     + done.spec.workload.warmup))
    other_model = make_spec(model_source="synthetic", model_ref="never-stored")
    steps = [Step(twice), Step(other_model)]
    with Store(tmp_path / "s.sqlite", readonly=True) as st:
        guessed = guess_durations(st, steps, "test-machine", local=t4_projection)
    assert guessed == {0}  # nothing stored of the other model, no shape known: no guess, the sweep's mean later
    assert timed_tokens(twice) == 2 * timed_tokens(done.spec)
    assert steps[0].expected_s == pytest.approx(24.0) and steps[1].expected_s is None
    d = SweepDisplay(steps, Console(file=io.StringIO()), guessed=guessed)
    assert d.remaining() is None  # the second step has no guess yet
    d2 = SweepDisplay(steps[:1], Console(file=io.StringIO()), guessed=guessed)
    assert d2.remaining() == pytest.approx(24.0)


def t4_projection(st, machine_id, threads):
    """A stand-in for this machine's microbenchmarks: the catalog's T4 and an empty calibration."""
    from quantscope.hardware.calibrate import Calibration
    from quantscope.hardware.catalog import get_hardware

    return get_hardware("t4"), Calibration([])


def test_eta_of_a_model_never_run_here_is_a_size_based_guess_from_the_projection(tmp_path):
    from quantscope.store import Store
    from quantscope.sweep.progress import START_S, guess_durations

    small = make_spec(model_source="synthetic", model_ref="tiny-llama")
    big = make_spec(model_source="synthetic", model_ref="llama-1b")
    no_quality = make_spec(model_source="synthetic", model_ref="llama-1b",
                           quality=replace_quality(enabled=False))
    steps = [Step(small), Step(big), Step(no_quality), Step(make_spec(model_source="gguf", model_ref="/x.gguf"))]
    with Store(tmp_path / "empty.sqlite") as st:
        guessed = guess_durations(st, steps, "test-machine", local=t4_projection)
    assert guessed == {0, 1, 2}  # a user's GGUF is not parsed in the parent, so it waits for a mean
    assert START_S < steps[0].expected_s < steps[1].expected_s  # bigger weights, slower steps
    assert steps[2].expected_s < steps[1].expected_s  # no quality pass
    assert steps[3].expected_s is None


def replace_quality(**changes):
    from dataclasses import replace

    from helpers.results import QUALITY

    return replace(QUALITY, **changes)
