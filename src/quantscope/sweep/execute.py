"""Run a sweep: plan (what the store already has), then each configuration in its own worker.

Resume rules (each one a test in tests/sweep/):
- A configuration whose key has an `ok` row from this machine is reused, not rerun (`force` reruns it).
  An ok row whose quality pass found no reference log-probs is rerun once the reference exists.
- An `unsupported` row is reused while the software that decided it (package versions, quantscope
  version, git sha) is unchanged: asking again would give the same answer after seconds of imports.
- Anything else (failed, timeout, oom, crashed, interrupted, or never run) is run again.
- A run that fails is stored as its row and the sweep goes on. Ctrl-C stops the worker (runner's
  job), stores the running configuration as `interrupted`, keeps every finished row, and stops.

>>> SweepOutcome([]).exit_code
0
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from quantscope.errors import UserError
from quantscope.result import EnvFingerprint, Result
from quantscope.spec import RunSpec, reference_spec
from quantscope.sweep.executors import Executor, Job, LocalExecutor

FAILED = ("failed", "timeout", "oom", "crashed")  # statuses that make the sweep's exit code 1
NO_REFERENCE_NOTE = "not measured: no reference"  # quality_step's note when a run had no reference file


@dataclass
class Step:
    """One configuration of the plan: reuse a stored row, or run it (expected_s from an earlier run)."""

    spec: RunSpec
    reuse: tuple[int, Result] | None = None
    expected_s: float | None = None


@dataclass
class Row:
    spec: RunSpec
    run_id: int | None
    result: Result
    reused: bool


@dataclass
class SweepOutcome:
    rows: list[Row] = field(default_factory=list)
    interrupted: bool = False
    deferred: list[Step] = field(default_factory=list)  # put off by the time budget: not run, not stored

    @property
    def exit_code(self) -> int:
        """130 after Ctrl-C (the shell's convention), 1 if any configuration failed, else 0.

        unsupported is an answer, not a failure (as for `quantscope run`)."""
        if self.interrupted:
            return 130
        return 1 if any(r.result.status in FAILED for r in self.rows) else 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.result.status] = out.get(r.result.status, 0) + 1
        return out


def same_software(a: EnvFingerprint, b: EnvFingerprint) -> bool:
    return (a.packages, a.quantscope_version, a.git_sha) == (b.packages, b.quantscope_version, b.git_sha)


def reusable(result: Result, env: EnvFingerprint) -> bool:
    """Whether a stored row of this key on this machine answers the question without running again."""
    if result.status == "ok":
        return not str(result.info.get("quality", "")).startswith(NO_REFERENCE_NOTE)
    return result.status == "unsupported" and same_software(result.env, env)


def plan(st, specs: list[RunSpec], env: EnvFingerprint, force: bool = False,
         machines: list[EnvFingerprint] | None = None, nth: int = 1) -> list[Step]:
    """One Step per spec: the stored row to reuse (unless `force`) and the expected run time.

    `machines`: where the runs may land (a Ray cluster's machines; default: this one). A row stored from
    any of them is reused, each judged against its own machine's software. Only rows of exactly these
    machine ids count (env.machine_identity: another CPU, even under the same name, is another machine).
    `nth`: pass n of `sweep --repeat` (sweep/repeat.py) reuses the n-th newest ok row, so each pass adds
    one process's row per configuration until there are n."""
    steps = []
    for spec in specs:
        key = spec.key_hash()
        reuse, expected = None, None
        for m in machines or [env]:
            ok = st.latest_ok(key, m.machine_id) if nth == 1 else nth_ok(st, key, m.machine_id, nth)
            newest = st.results(key_hash=key, machine_id=m.machine_id, limit=1)
            expected = expected if expected is not None else (steady_s(ok[1]) if ok else None)
            # pass n > 1 must not fall back on the newest ok row: that one already counted in pass 1
            last = newest[0] if newest and (nth == 1 or newest[0][1].status != "ok") else None
            for candidate in (ok, last):
                if reuse is None and not force and candidate and reusable(candidate[1], m):
                    reuse = candidate
        steps.append(Step(spec, reuse, expected))
    return steps


def steady_s(result: Result) -> float:
    """A run's duration without its one-time conversions (an ONNX export, a GGUF write: 190 s of a 254 s
    row on a fresh AVX2 machine), which the artifact cache keeps: what measuring it again costs.

    >>> from quantscope.spec import RunSpec
    >>> steady_s(Result(spec=RunSpec(), env=None, status="ok", duration_s=254.0, info={"convert_s": 190.0}))
    64.0
    """
    return max(result.duration_s - float(result.info.get("convert_s") or 0.0), 0.0)


def nth_ok(st, key: str, machine_id: str, nth: int) -> tuple[int, Result] | None:
    """The n-th newest ok row of this key on this machine (1 = the newest), or None."""
    oks = st.results(key_hash=key, machine_id=machine_id, status="ok", limit=nth)
    return oks[nth - 1] if len(oks) >= nth else None


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def unknown_backend_row(spec: RunSpec, env: EnvFingerprint) -> Result | None:
    """An unsupported row for a backend this quantscope does not have (registered by name), else None."""
    from quantscope.backends import BACKENDS

    if spec.backend in BACKENDS:
        return None
    return Result(spec=spec, env=env, status="unsupported", started_at=now_iso(),
                  reason=f"this quantscope has no such runtime: {BACKENDS.unknown_message(spec.backend)}")


def interrupted_row(spec: RunSpec, env: EnvFingerprint, started_at: str, seconds: float) -> Result:
    return Result(spec=spec, env=env, status="interrupted", started_at=started_at, duration_s=seconds,
                  reason=f"stopped by Ctrl-C after {seconds:.1f} s; rerun the sweep to measure it")


class _Reference:
    """Whether the KLD reference is usable: once it fails in this sweep, the others run without it
    (speed and memory still measured) instead of each trying the reference again."""

    def __init__(self) -> None:
        self.failed: str | None = None

    def file_for(self, st, spec: RunSpec, timeout: float) -> str | None:
        from quantscope.runner.reference import find_reference

        if self.failed or not spec.quality.enabled or spec.model.synthetic:
            return None
        try:
            return find_reference(st, spec, timeout)
        except UserError as e:  # the reference run failed: the row runs, its quality note says why
            self.failed = str(e)
            return None

    def saw(self, spec: RunSpec, result: Result) -> None:
        if is_reference(spec) and result.status != "ok":
            self.failed = f"the FP32 reference ended {result.status}: {result.reason}"


Hook = Callable[..., Any]


def run_sweep(st, steps: list[Step], env: EnvFingerprint, timeout: float,
              on_start: Hook | None = None, on_done: Hook | None = None,
              executor: Executor | None = None, claims=None, on_wait: Hook | None = None,
              budget=None, on_defer: Hook | None = None) -> SweepOutcome:
    """Measure every step that is not reused through `executor` (default: LocalExecutor), storing each
    row as soon as it exists. Only this driver writes the store; the executor returns Results.

    Each configuration is claimed in the store before it runs, and the machine's measuring slot held
    while it runs (store/claims.py; `claims` defaults to this store's): a configuration another sweep
    has claimed is put off to the end, and then its row is taken once that sweep stores it, so two
    sweeps on one store measure each configuration once and never two at the same time.

    on_start(index, step) and on_done(index, row) let a caller draw progress, on_wait(holder) say that
    another sweep holds what this one waits for, on_defer(index, step, why) that the budget put a step off;
    they do no work here.

    `budget` (sweep/budget.py; local executor only): the steps run in its order, and a step whose
    expected duration does not fit in what is left is deferred (not run, not stored, in outcome.deferred).
    """
    from quantscope.store.claims import SLOT, Claims

    executor = executor or LocalExecutor()
    own_claims = claims is None
    claims = claims or Claims(st.path, env.machine_id)
    # the slot keeps measurements on this machine apart; an executor elsewhere (a cluster) spreads them
    one_at_a_time = executor.name == "local"
    newest = st.results(limit=1)
    start_id = newest[0][0] if newest else 0  # a row of ours-to-be with a higher id: another sweep's
    reference = _Reference()
    done: dict[int, Row] = {}
    in_flight: dict[int, tuple[str, float]] = {}  # handed to the executor, no result yet: (started_at, t0)

    def finish(i: int, result: Result, reused_id: int | None = None) -> None:
        reference.saw(steps[i].spec, result)
        if budget is not None and reused_id is None and result.status == "ok" and not is_reference(steps[i].spec):
            budget.saw(steady_s(result))  # the reference scores every window: not like the others
        run_id = reused_id if reused_id is not None else st.add(result)
        done[i] = Row(steps[i].spec, run_id, result, reused=reused_id is not None)
        if on_done:
            on_done(i, done[i])

    def measured_meanwhile(i: int) -> bool:
        """Whether another sweep stored this configuration since this one began: take its row."""
        rows = st.results(key_hash=steps[i].spec.key_hash(), machine_id=env.machine_id, limit=1)
        if not rows or rows[0][0] <= start_id or rows[0][1].status == "interrupted":
            return False
        claims.release(steps[i].spec.key_hash())
        finish(i, rows[0][1], reused_id=rows[0][0])
        return True

    def job(i: int) -> Job:
        spec = steps[i].spec
        if spec.quality.enabled and not is_reference(spec):  # the reference may be another's to run
            claims.wait_for(reference_spec(spec).key_hash(), on_wait)
            claims.release(reference_spec(spec).key_hash())
        ref_file = reference.file_for(st, spec, timeout)
        is_ref = is_reference(spec)
        if one_at_a_time:
            claims.wait_for(SLOT, on_wait)  # one measurement at a time on this machine
        in_flight[i] = (now_iso(), time.perf_counter())
        return Job(i, spec, timeout, reference_file=ref_file, is_reference=is_ref)

    if budget is not None and not one_at_a_time:
        raise UserError(f"a time budget is for the local executor (one run at a time), not {executor.name!r}")
    order = budget_order(steps, budget.speeds, budget.bits) if budget is not None else range(len(steps))

    def jobs() -> Iterator[Job]:
        later = []
        for i in order:
            step = steps[i]
            put_off = budget is not None and step.reuse is None and not is_reference(step.spec)  # never the reference
            if put_off and not budget.admits(step, i):
                if on_defer:
                    on_defer(i, step, budget.deferred[i])
                continue
            if on_start:
                on_start(i, step)
            if step.reuse is not None:
                finish(i, step.reuse[1], reused_id=step.reuse[0])
                continue
            unknown = unknown_backend_row(step.spec, env)
            if unknown is not None:
                finish(i, unknown)
                continue
            if claims.claim(step.spec.key_hash()) is not None:
                later.append(i)  # another sweep measures it now: its row is taken at the end
                continue
            if not measured_meanwhile(i):
                yield job(i)
        for i in later:
            if on_start:
                on_start(i, steps[i])
            claims.wait_for(steps[i].spec.key_hash(), on_wait)  # sleeps until the other sweep releases it
            if not measured_meanwhile(i):  # the other sweep was stopped before storing it: ours to measure
                yield job(i)

    outcome = SweepOutcome()
    try:
        for job_done, result in executor.execute(jobs()):
            in_flight.pop(job_done.index, None)
            finish(job_done.index, result)
            if one_at_a_time:
                claims.release(SLOT)
            claims.release(job_done.spec.key_hash())
    except KeyboardInterrupt:
        outcome.interrupted = True
        for i, (started_at, t0) in sorted(in_flight.items()):
            finish(i, interrupted_row(steps[i].spec, env, started_at, time.perf_counter() - t0))
    finally:
        if own_claims:
            claims.close()  # every claim of this sweep released, whatever ended it
    outcome.rows = [done[i] for i in sorted(done)]
    outcome.deferred = [steps[i] for i in sorted(budget.deferred)] if budget is not None else []
    return outcome


def budget_order(steps: list[Step], speeds: dict[int, float], bits: dict[int, float]) -> list[int]:
    from quantscope.sweep.budget import budget_order as order

    return order(steps, lambda s: is_reference(s.spec), speeds, bits)


def is_reference(spec: RunSpec) -> bool:
    """Whether this run is the FP32 reference whose log-probs the sweep's other rows read."""
    return spec.quality.enabled and reference_spec(spec) == spec
