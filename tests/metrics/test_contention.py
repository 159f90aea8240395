"""Contention: other processes' CPU time during the timed work, from a fake psutil with known numbers,
and once for real against a CPU-bound competitor."""

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from quantscope.metrics.contention import CONTENTION_SHARE, CpuSampler, contention_info, others_cores, wait_quiet

pytestmark = pytest.mark.unit


class FakePsutil:
    """System-wide and own CPU seconds that tests move by hand, on a fake wall clock."""

    NoSuchProcess = ProcessLookupError
    AccessDenied = PermissionError

    def __init__(self, cores=2):
        self.cores, self.wall, self.busy, self.own, self.steal = cores, 0.0, 0.0, 0.0, 0.0

    def cpu_count(self, logical=True):
        return self.cores

    def cpu_times(self):
        return SimpleNamespace(user=self.busy - self.steal, system=0.0, nice=0.0, irq=0.0, softirq=0.0,
                               steal=self.steal, idle=0.0)

    def Process(self):  # noqa: N802 - psutil's name
        fake = self
        return SimpleNamespace(cpu_times=lambda: SimpleNamespace(user=fake.own, system=0.0),
                               children=lambda recursive=True: [])

    def work(self, seconds, own_cores, other_cores, steal_cores=0.0):
        self.wall += seconds
        self.own += own_cores * seconds
        self.steal += steal_cores * seconds
        self.busy += (own_cores + other_cores + steal_cores) * seconds


def sampler(ps):
    return CpuSampler(ps=ps, clock=lambda: ps.wall)


def test_our_own_cpu_time_is_not_counted_as_contention():
    ps = FakePsutil()
    s = sampler(ps)
    a = s.snapshot()
    ps.work(2.0, own_cores=2.0, other_cores=0.0)
    assert others_cores(a, s.snapshot()) == 0.0


def test_another_process_on_one_core_is_one_core_of_contention_and_steal_counts():
    ps = FakePsutil()
    s = sampler(ps)
    a = s.snapshot()
    ps.work(2.0, own_cores=1.0, other_cores=0.75, steal_cores=0.25)
    assert others_cores(a, s.snapshot()) == pytest.approx(1.0)


def test_flag_above_the_share_and_not_below():
    assert contention_info([1.0, 0.9], logical_cores=2)["flagged"]  # a competitor on one of two cores
    info = contention_info([0.02, 0.01], logical_cores=2)
    assert not info["flagged"] and info["share"] == pytest.approx(0.0075)
    assert info["threshold_share"] == CONTENTION_SHARE
    assert contention_info([], 2) == {"measured": False}


def test_wait_quiet_returns_once_the_machine_is_quiet_and_gives_up_when_bounded():
    ps = FakePsutil()
    busy_windows = [1.0, 1.0, 0.0]

    def sleep(seconds):  # the fake machine: a competitor for two windows, then quiet
        ps.work(seconds, own_cores=0.0, other_cores=busy_windows.pop(0) if busy_windows else 0.0)

    out = wait_quiet(60.0, sampler(ps), window_s=1.0, sleep=sleep)
    assert out["quiet"] and out["waited_s"] == pytest.approx(3.0)
    always = FakePsutil()
    out = wait_quiet(2.5, sampler(always), window_s=1.0,
                     sleep=lambda t: always.work(t, own_cores=0.0, other_cores=1.5))
    assert not out["quiet"] and out["waited_s"] == pytest.approx(3.0) and out["share"] == pytest.approx(0.75)


@pytest.mark.integration
def test_a_real_cpu_bound_competitor_is_seen():
    """Ground truth: a child spinning on one core for ~1 s; our sampler must see at least half a core of
    it (the rest of the machine may be busy too, which only adds)."""
    s = CpuSampler()
    a = s.snapshot()
    # A grandchild, orphaned at once (the shell exits): not in our process tree, as another user's job
    spin = f"{sys.executable} -c 'import time\nt=time.time()\nwhile time.time()-t<1.0: pass' &"
    subprocess.run(["sh", "-c", spin], check=True, timeout=30)
    time.sleep(1.2)
    b = s.snapshot()
    assert others_cores(a, b) * (b.wall_s - a.wall_s) >= 0.5
