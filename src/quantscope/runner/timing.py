"""The timed workload: warm-up apart, prefill and decode timed apart, repeated until stable.

The runner owns every clock read; backends only do work (see backends/base.py). One repetition is
prefill of P prompt tokens (which yields the first new token: TTFT) then G single-token decode steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from quantscope.metrics.contention import CpuSampler, contention_info, others_cores
from quantscope.metrics.stats import describe
from quantscope.spec import WorkloadSpec

# FACTS.md: whole runs on these machines sometimes slow down 5-30x with nothing visible in vmstat.
# A fixed pure-Python spin loop timed around each repetition detects it; a repetition during which the
# probe ran this much slower than its calibrated best is noise: it is discarded and redone.
STALL_FACTOR = 2.0
MAX_STALL_DISCARDS = 5
PROBE_ITERATIONS = 50_000


def spin_probe(iterations: int = PROBE_ITERATIONS) -> float:
    """Seconds for a fixed amount of pure-Python work (a few ms): a canary for machine stalls."""
    t0 = time.perf_counter_ns()
    acc = 0
    for i in range(iterations):
        acc += i * i
    return (time.perf_counter_ns() - t0) / 1e9


@dataclass
class Rep:
    prefill_s: float
    step_s: list[float]
    energy_j: float | None = None
    others_cores: float | None = None  # other processes' CPU use during this rep (metrics/contention.py)
    steal_cores: float | None = None


@dataclass
class TimedRuns:
    reps: list[Rep] = field(default_factory=list)
    stop_rule: str = ""
    discarded_stalls: int = 0
    warmup_reps: int = 0
    wall_s: float = 0.0
    logical_cores: int = 0  # of the CpuSampler; 0 when contention was not sampled

    def contention(self) -> dict:
        """Others' CPU use over the kept reps and whether it flags the run (contention_info)."""
        cores = [r.others_cores for r in self.reps if r.others_cores is not None]
        steal = [r.steal_cores for r in self.reps if r.steal_cores is not None]
        if not cores:
            return {"measured": False}
        return contention_info(cores, self.logical_cores, sum(steal) / len(steal) if steal else None)

    def decode_tps(self, batch: int) -> list[float]:
        return [batch * len(r.step_s) / sum(r.step_s) for r in self.reps]

    def prefill_tps(self, batch: int, prompt_tokens: int) -> list[float]:
        return [batch * prompt_tokens / r.prefill_s for r in self.reps]


def one_rep(backend, input_ids: np.ndarray, gen_tokens: int, clock=time.perf_counter_ns) -> Rep:
    t0 = clock()
    tok = backend.prefill(input_ids)
    t1 = clock()
    steps = []
    for _ in range(gen_tokens):
        a = clock()
        tok = backend.decode(tok)
        steps.append((clock() - a) / 1e9)
    return Rep(prefill_s=(t1 - t0) / 1e9, step_s=steps)


def stop_rule(decode_tps: list[float], elapsed_s: float, wl: WorkloadSpec) -> str | None:
    """Which rule ends the repetitions now, or None to go on.

    >>> stop_rule([10.0, 10.0, 10.0], 1.0, WorkloadSpec())
    'ci'
    """
    n = len(decode_tps)
    if n < wl.min_reps:
        return None
    if describe(decode_tps).rel_ci95 <= wl.ci_target:
        return "ci"
    if n >= wl.max_reps:
        return "max_reps"
    if elapsed_s >= wl.max_seconds:
        return "max_seconds"
    return None


def _report_reps(runs: TimedRuns, wl: WorkloadSpec) -> None:
    """The repetitions so far for the parent's progress line: decode mean and its 95 % CI (relative)."""
    from quantscope import progress

    tps = runs.decode_tps(wl.batch)
    d = describe(tps)
    progress.report("reps", f"rep {len(tps)} of {wl.min_reps}-{wl.max_reps}", decode_tps=d.mean,
                    ci_rel=d.rel_ci95 if len(tps) > 1 else None, ci_target=wl.ci_target)


def timed_workload(
    backend,
    input_ids: np.ndarray,
    wl: WorkloadSpec,
    energy: Callable[[], float] | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
    cpu: CpuSampler | None = None,
) -> TimedRuns:
    """Warm up (never counted), then repeat until `stop_rule` says stop.

    `energy`, when given, returns a cumulative joule counter; it is read outside the clocked region.
    `clock` (nanoseconds) times the reps and the stop rule's elapsed time; tests pass a fake one.
    `cpu`, when given, samples other processes' CPU time around each rep (also outside the clocked
    region, beside the stall canary): contention is recorded per rep, never a reason to redo one.
    """
    runs = TimedRuns(warmup_reps=wl.warmup, logical_cores=cpu.logical_cores if cpu else 0)
    from quantscope import progress

    start = clock()
    for k in range(wl.warmup):
        progress.report("warmup", f"warm-up {k + 1} of {wl.warmup} (not counted)")
        one_rep(backend, input_ids, wl.gen_tokens, clock)
    probe_best = min(spin_probe() for _ in range(3))
    timed_start = clock()
    while True:
        before = spin_probe()
        e0 = energy() if energy else None
        c0 = cpu.snapshot() if cpu else None
        rep = one_rep(backend, input_ids, wl.gen_tokens, clock)
        if cpu:
            c1 = cpu.snapshot()
            rep.others_cores = others_cores(c0, c1)
            rep.steal_cores = (c1.steal_s - c0.steal_s) / max(c1.wall_s - c0.wall_s, 1e-9)
        if energy:
            rep.energy_j = energy() - e0
        after = spin_probe()
        stalled = max(before, after) > STALL_FACTOR * probe_best
        if stalled and runs.discarded_stalls < MAX_STALL_DISCARDS:
            runs.discarded_stalls += 1
            progress.report("reps", f"a repetition ran while the machine stalled: redone "
                            f"({runs.discarded_stalls} of at most {MAX_STALL_DISCARDS})")
            continue
        runs.reps.append(rep)
        rule = stop_rule(runs.decode_tps(wl.batch), (clock() - timed_start) / 1e9, wl)
        _report_reps(runs, wl)
        if rule:
            runs.stop_rule = rule
            break
    runs.wall_s = (clock() - start) / 1e9
    return runs
