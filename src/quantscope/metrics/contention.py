"""Other processes' CPU use while we measure: contention, which the stall canary cannot see.

The stall canary (runner/timing.py) catches the whole machine slowing down. A competing process
slows a run without stalling the machine: the canary passes, the tokens/s drop (issue 16: 14.6 vs
27 tok/s decode with the lead's sweep running). So around the timed work we read

  others' CPU = Δ(system-wide busy CPU time) − Δ(CPU time of our own process tree)

system-wide from psutil.cpu_times() (/proc/stat: user + nice + system + irq + softirq + steal;
guest time is already inside user), our own as user + system of this process, its live children
and the children it has reaped.
Steal counts as contention: it is CPU the hypervisor gave to another tenant while we wanted it.
Divided by the wall time it is "cores' worth used by others"; divided by the logical core count,
a share of the machine. A run whose mean share exceeds CONTENTION_SHARE is flagged (stored, shown,
never silently dropped): the figure is what this machine gave while something else ran.

>>> sampler = CpuSampler()
>>> a = sampler.snapshot(); b = sampler.snapshot()
>>> others_cores(a, b) >= 0.0
True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

# Above this mean share of the logical cores used by other processes, a run is flagged as contended.
# One CPU-bound competitor on a 2-core machine is 0.5; the background of an idle Linux host is ~0.01.
CONTENTION_SHARE = 0.10
QUIET_WINDOW_S = 1.0  # how long `wait_quiet` watches the machine before each verdict


@dataclass(frozen=True)
class CpuSnapshot:
    wall_s: float
    busy_s: float  # all CPUs, every process, including steal
    own_s: float  # this process and its live children
    steal_s: float


def _busy(t: Any) -> tuple[float, float]:
    steal = getattr(t, "steal", 0.0)
    busy = t.user + t.system + sum(getattr(t, f, 0.0) for f in ("nice", "irq", "softirq")) + steal
    return busy, steal


class CpuSampler:
    """Snapshots of system-wide and own CPU time; `ps` and `clock` are seams for tests (fake psutil).

    Reading /proc/stat and our own /proc/<pid>/stat costs well under a millisecond: sampled outside
    the clocked region, around each repetition.
    """

    def __init__(self, ps: Any = psutil, clock: Callable[[], float] = time.perf_counter) -> None:
        self._ps, self._clock = ps, clock
        self._proc = ps.Process()
        self.logical_cores = ps.cpu_count(logical=True) or 1

    def _own(self) -> float:
        total = 0.0
        for p in (self._proc, *self._children()):
            try:
                t = p.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # a child that exited between listing and reading: its time is lost to us
            # children_*: children this process already waited for (a converter that exited mid-rep)
            total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
        return total

    def _children(self) -> list:
        try:
            return self._proc.children(recursive=True)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return []

    def snapshot(self) -> CpuSnapshot:
        busy, steal = _busy(self._ps.cpu_times())
        return CpuSnapshot(self._clock(), busy, self._own(), steal)


def others_cores(a: CpuSnapshot, b: CpuSnapshot) -> float:
    """Cores' worth of CPU used by other processes between two snapshots (>= 0).

    /proc/stat counts in clock ticks (10 ms), so over short windows the difference jitters by a tick
    or two; it is clipped at zero rather than reported as negative use.
    """
    wall = b.wall_s - a.wall_s
    if wall <= 0:
        return 0.0
    return max(0.0, ((b.busy_s - a.busy_s) - (b.own_s - a.own_s)) / wall)


def contention_info(per_rep_cores: list[float], logical_cores: int, steal_cores: float | None = None,
                    threshold: float = CONTENTION_SHARE) -> dict[str, Any]:
    """What is stored with a run: others' mean and peak cores, the share, and the flag.

    >>> contention_info([1.0, 1.0], 2)["flagged"]
    True
    >>> contention_info([0.01, 0.02], 2)["flagged"]
    False
    """
    if not per_rep_cores:
        return {"measured": False}
    mean = sum(per_rep_cores) / len(per_rep_cores)
    share = mean / max(1, logical_cores)
    out = {"measured": True, "others_cores_mean": mean, "others_cores_max": max(per_rep_cores),
           "share": share, "threshold_share": threshold, "logical_cores": logical_cores,
           "flagged": share > threshold}
    if steal_cores is not None:
        out["steal_cores_mean"] = steal_cores
    return out


def wait_quiet(max_wait_s: float, sampler: CpuSampler | None = None, threshold: float = CONTENTION_SHARE,
               window_s: float = QUIET_WINDOW_S, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Wait (at most `max_wait_s`) until others use at most `threshold` of the cores over one window.

    Returns {"quiet": bool, "waited_s", "share"} (the last window's share): a sweep that gave up
    waiting still runs, and the run's own contention flag tells what happened during it.
    """
    sampler = sampler or CpuSampler()
    waited, share = 0.0, float("nan")
    while True:
        a = sampler.snapshot()
        sleep(window_s)
        b = sampler.snapshot()
        waited += max(b.wall_s - a.wall_s, window_s)  # never 0: a clock that did not move still ends
        share = others_cores(a, b) / sampler.logical_cores
        if share <= threshold:
            return {"quiet": True, "waited_s": waited, "share": share}
        if waited >= max_wait_s:
            return {"quiet": False, "waited_s": waited, "share": share}
