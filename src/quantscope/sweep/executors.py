"""Executors: where a sweep's measurements run. The driver (sweep/execute.py) plans, finds each run's
reference and alone writes the store; an executor only turns jobs into Results.

The seam is one method, `execute(jobs) -> iterator of (job, result)`. `jobs` is a lazy iterator: the
driver builds a job (finding its reference log-probs) only when the executor asks for the next one, so
a sequential executor sees the reference stored before the rows that compare against it. An executor
that runs jobs concurrently (Ray) must finish a job with `is_reference` before it pulls the next one,
and may yield results in any order. A KeyboardInterrupt raised from `execute` stops the sweep; the
driver stores every job it handed out and got no result for as `interrupted`.

An executor that runs on other machines may also offer `machines() -> list[EnvFingerprint]`: the
machines its runs can land on, so the plan reuses rows stored from any of them (sweep/ray_executor.py).

>>> sorted(EXECUTORS.names())
['local', 'ray']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from quantscope.registry import Registry
from quantscope.result import Result
from quantscope.spec import RunSpec


@dataclass(frozen=True)
class Job:
    """One configuration to measure: its place in the plan, its spec, and what the worker needs."""

    index: int
    spec: RunSpec
    timeout_s: float
    reference_file: str | None = None
    is_reference: bool = False  # the run whose log-probs every other row reads: finish it first


class Executor(Protocol):
    name: str

    def execute(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Result]]:
        """Measure each job (each in its own isolated worker) and yield its Result as it ends."""


class LocalExecutor:
    """One isolated worker at a time on this machine: two benchmarks on one machine distort each other.

    The runner is looked up at call time (quantscope.runner.run_spec), so tests can replace it.
    """

    name = "local"

    def execute(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Result]]:
        from quantscope import runner

        for job in jobs:
            yield job, runner.run_spec(job.spec, job.timeout_s, reference_file=job.reference_file)


# Executor name -> class (lazy "module:attr" strings for executors with heavy imports, e.g. Ray).
EXECUTORS: Registry[type] = Registry("executor")
EXECUTORS.add("local", LocalExecutor)
EXECUTORS.add("ray", "quantscope.sweep.ray_executor:RayExecutor")  # each run a Ray task; needs quantscope[ray]


def get_executor(name: str, **options) -> Executor:
    """A fresh executor by name (UserError with a near-name hint on a typo); `options` go to its
    constructor (ray: address=...)."""
    return EXECUTORS.get(name)(**options)
