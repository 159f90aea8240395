"""`quantscope run` and the default sweep share one quick workload, so a sweep reuses what `run` stored."""

import inspect

import pytest

pytestmark = pytest.mark.unit

SHARED = ("prompt_tokens", "gen_tokens", "batch", "warmup", "min_reps", "max_reps", "max_seconds", "ci_target",
          "quality", "recipe", "ctx", "quality_tokens", "quality_seconds", "seed")


def defaults(command) -> dict:
    return {name: p.default for name, p in inspect.signature(command).parameters.items()}


def test_run_and_sweep_default_to_the_same_quick_workload():
    from quantscope.commands.run import run_cmd
    from quantscope.commands.sweep import sweep_cmd
    from quantscope.sweep.specs import QUICK_MAX_REPS, QUICK_QUALITY_SECONDS, QUICK_QUALITY_TOKENS

    run, sweep = defaults(run_cmd), defaults(sweep_cmd)
    assert {k: run[k] for k in SHARED} == {k: sweep[k] for k in SHARED}
    assert (run["max_reps"], run["quality_tokens"], run["quality_seconds"]) == (
        QUICK_MAX_REPS, QUICK_QUALITY_TOKENS, QUICK_QUALITY_SECONDS)
