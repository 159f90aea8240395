import time

import numpy as np
import pytest

from quantscope.runner.timing import one_rep, stop_rule, timed_workload
from quantscope.spec import WorkloadSpec

pytestmark = pytest.mark.unit


class SleepyBackend:
    """A fake runtime with known costs: prefill 20 ms, decode 5 ms per step."""

    vocab_size = 10

    def __init__(self):
        self.prefills = 0
        self.decodes = 0

    def prefill(self, ids):
        self.prefills += 1
        time.sleep(0.02)
        return np.zeros(ids.shape[0], dtype=np.int64)

    def decode(self, tok):
        self.decodes += 1
        time.sleep(0.005)
        return tok


def test_one_rep_times_prefill_and_decode_apart():
    rep = one_rep(SleepyBackend(), np.zeros((1, 4), dtype=np.int64), gen_tokens=5)
    assert 0.019 <= rep.prefill_s < 0.06
    assert len(rep.step_s) == 5
    assert all(0.0049 <= s < 0.03 for s in rep.step_s)


def test_warmup_is_never_counted_and_stop_rule_is_recorded():
    be = SleepyBackend()
    wl = WorkloadSpec(prompt_tokens=4, gen_tokens=4, warmup=2, min_reps=3, max_reps=4, ci_target=0.5)
    runs = timed_workload(be, np.zeros((1, 4), dtype=np.int64), wl)
    timed = len(runs.reps)
    assert be.prefills == timed + 2 + runs.discarded_stalls
    assert runs.stop_rule in ("ci", "max_reps")
    assert 3 <= timed <= 4
    tps = runs.decode_tps(1)
    assert all(100 < t <= 201 for t in tps)  # 5 ms a step -> at most 200 tok/s


def test_stop_rules():
    wl = WorkloadSpec(min_reps=3, max_reps=5, max_seconds=10, ci_target=0.02)
    assert stop_rule([10, 10], 0.1, wl) is None  # below min reps
    assert stop_rule([10, 10, 10], 0.1, wl) == "ci"
    assert stop_rule([10, 20, 30], 0.1, wl) is None
    assert stop_rule([10, 20, 30, 10, 20], 0.1, wl) == "max_reps"
    assert stop_rule([10, 20, 30], 11, wl) == "max_seconds"
