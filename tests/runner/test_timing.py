import numpy as np
import pytest

from quantscope.runner.timing import one_rep, stop_rule, timed_workload
from quantscope.spec import WorkloadSpec

pytestmark = pytest.mark.unit


class FakeClock:
    """A nanosecond clock that moves only when the fake runtime works: timings are exact, whatever the load."""

    def __init__(self):
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


class FakeRuntime:
    """A fake runtime with known costs on a fake clock: prefill 20 ms, decode 5 ms per step."""

    vocab_size = 10

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.prefills = 0
        self.decodes = 0

    def prefill(self, ids):
        self.prefills += 1
        self.clock.ns += 20_000_000
        return np.zeros(ids.shape[0], dtype=np.int64)

    def decode(self, tok):
        self.decodes += 1
        self.clock.ns += 5_000_000
        return tok


def test_one_rep_times_prefill_and_decode_apart():
    clock = FakeClock()
    rep = one_rep(FakeRuntime(clock), np.zeros((1, 4), dtype=np.int64), gen_tokens=5, clock=clock)
    assert rep.prefill_s == pytest.approx(0.020)
    assert rep.step_s == pytest.approx([0.005] * 5)


def test_warmup_is_never_counted_and_stop_rule_is_recorded():
    clock = FakeClock()
    be = FakeRuntime(clock)
    wl = WorkloadSpec(prompt_tokens=4, gen_tokens=4, warmup=2, min_reps=3, max_reps=4, ci_target=0.5)
    runs = timed_workload(be, np.zeros((1, 4), dtype=np.int64), wl, clock=clock)
    assert be.prefills == len(runs.reps) + 2 + runs.discarded_stalls  # the 2 warm-ups ran, uncounted
    assert runs.stop_rule == "ci"  # identical reps: the CI is zero as soon as min_reps are in
    assert len(runs.reps) == 3
    assert runs.decode_tps(1) == pytest.approx([200.0] * 3)  # 5 ms a step


def test_stop_rules():
    wl = WorkloadSpec(min_reps=3, max_reps=5, max_seconds=10, ci_target=0.02)
    assert stop_rule([10, 10], 0.1, wl) is None  # below min reps
    assert stop_rule([10, 10, 10], 0.1, wl) == "ci"
    assert stop_rule([10, 20, 30], 0.1, wl) is None
    assert stop_rule([10, 20, 30, 10, 20], 0.1, wl) == "max_reps"
    assert stop_rule([10, 20, 30], 11, wl) == "max_seconds"


class FakeCpu:
    """A CpuSampler on the fake clock: we use one core while the clock runs; others use `others` cores."""

    logical_cores = 2

    def __init__(self, clock: FakeClock, others: float):
        self.clock, self.others = clock, others

    def snapshot(self):
        from quantscope.metrics.contention import CpuSnapshot

        wall = self.clock.ns / 1e9
        return CpuSnapshot(wall_s=wall, busy_s=(1.0 + self.others) * wall, own_s=wall, steal_s=0.0)


@pytest.mark.parametrize("others, flagged", [(1.0, True), (0.0, False)])
def test_a_run_beside_a_cpu_bound_competitor_is_flagged_and_alone_it_is_not(others, flagged):
    clock = FakeClock()
    wl = WorkloadSpec(prompt_tokens=4, gen_tokens=4, warmup=1, min_reps=3, max_reps=4, ci_target=0.5)
    runs = timed_workload(FakeRuntime(clock), np.zeros((1, 4), dtype=np.int64), wl, clock=clock,
                          cpu=FakeCpu(clock, others))
    assert [r.others_cores for r in runs.reps] == pytest.approx([others] * len(runs.reps))
    info = runs.contention()
    assert info["flagged"] is flagged and info["share"] == pytest.approx(others / 2)
    assert runs.decode_tps(1) == pytest.approx([200.0] * 3)  # flagged, not redone or dropped


def test_without_a_sampler_contention_is_not_measured():
    clock = FakeClock()
    wl = WorkloadSpec(prompt_tokens=4, gen_tokens=4, warmup=0, min_reps=2, max_reps=2)
    runs = timed_workload(FakeRuntime(clock), np.zeros((1, 4), dtype=np.int64), wl, clock=clock)
    assert runs.contention() == {"measured": False}
