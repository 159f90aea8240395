"""Between-process variance and quiet machines: `sweep --repeat N` and `sweep --wait-quiet S`.

Why separate processes: decode tok/s differs more between two processes than within one (issue 16:
27.96 vs 25.7 tok/s, each with a 95 % CI under 1 %): thread placement, memory layout and the
allocator's state are fixed per process, so a within-run CI says nothing about them. `--repeat N`
measures each configuration in N workers and stores N rows of the one key; analysis.compare's
`between_process` pools them with the process as the unit.

The N processes are N passes over the configurations, not N runs back to back: pass n measures each
configuration that has fewer than n ok rows of this machine (sweep.execute.plan, nth=n). Interleaving
spreads slow drift of the machine (heat, a neighbour) over every configuration instead of one, and
a resumed or interrupted sweep picks up at the first configuration still short of N rows. The
default, N = 1, is one pass: the sweep's cost is unchanged.

`--wait-quiet S` waits before each measurement, at most S seconds, until other processes use at
most metrics.contention.CONTENTION_SHARE of the cores; what the wait found is stored in the row's
info ("wait_quiet"), and the row's own contention flag says what happened during it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from quantscope.errors import UserError
from quantscope.sweep.execute import SweepOutcome, plan, run_sweep
from quantscope.sweep.executors import Executor, Job, LocalExecutor

MAX_REPEAT = 20


def check_repeat(repeat: int) -> int:
    if not 1 <= repeat <= MAX_REPEAT:
        raise UserError(f"--repeat must be between 1 and {MAX_REPEAT} processes per configuration, got {repeat}")
    return repeat


class QuietExecutor:
    """Wraps the local executor: before each job, wait (bounded) for a quiet machine, and store what was
    found in the row's info. Only local: a cluster's nodes are not this machine."""

    def __init__(self, inner: Executor, max_wait_s: float, wait=None) -> None:
        if inner.name != "local":
            raise UserError(f"--wait-quiet watches this machine: use it with --executor local, not {inner.name!r}")
        if not 0 < max_wait_s < float("inf"):
            raise UserError(f"--wait-quiet must be a finite number of seconds > 0, got {max_wait_s:g}")
        from quantscope.metrics.contention import wait_quiet

        self.inner, self.max_wait_s, self._wait = inner, max_wait_s, wait or wait_quiet
        self.name = inner.name  # run_sweep keeps one measurement at a time for a local executor

    def execute(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Any]]:
        for job in jobs:
            found = self._wait(self.max_wait_s)
            for done, result in self.inner.execute([job]):
                yield done, dataclasses.replace(result, info={**result.info, "wait_quiet": found})


def run_repeated(st, specs, env, timeout: float, repeat: int = 1, force: bool = False, machines=None,
                 executor: Executor | None = None, on_pass=None, **hooks) -> SweepOutcome:
    """`repeat` passes of plan + run_sweep (see the module note); one outcome with every row once.

    on_pass(n, steps) is called before pass n (a caller prints how many each pass reuses); `hooks`
    go to run_sweep (on_start, on_done). Ctrl-C in any pass ends the sweep there.
    """
    check_repeat(repeat)
    executor = executor or LocalExecutor()
    total = SweepOutcome()
    seen: set[int] = set()
    ended: dict[str, tuple[int, Any]] = {}  # key -> a row that did not end ok in an earlier pass
    for n in range(1, repeat + 1):
        on_machines = {"machines": machines} if machines is not None else {}  # a cluster's machines
        steps = plan(st, specs, env, force, nth=n, **on_machines)
        for step in steps:  # a configuration that failed once is not tried N times: its row stands
            if step.reuse is None and step.spec.key_hash() in ended:
                step.reuse = ended[step.spec.key_hash()]
        if on_pass:
            on_pass(n, steps)
        outcome = run_sweep(st, steps, env, timeout, executor=executor, **hooks)
        for row in outcome.rows:
            if row.result.status != "ok" and row.run_id is not None:
                ended.setdefault(row.spec.key_hash(), (row.run_id, row.result))
            if row.run_id is None or row.run_id not in seen:  # an unsupported row is reused by every pass
                total.rows.append(row)
                seen.add(row.run_id)
        if outcome.interrupted:
            total.interrupted = True
            break
    return total
