"""Run a RunSpec in its own process and get a Result back, whatever happens to the process."""

from __future__ import annotations

from quantscope.result import Result
from quantscope.spec import RunSpec


def run_spec(spec: RunSpec, timeout_s: float = 900.0, reference_file: str | None = None,
             on_progress=None) -> Result:
    """Measure `spec` in a fresh worker process (setsid); a timeout, crash or OOM becomes a typed Result.

    `on_progress(report)`: each phase the worker reports (quantscope.progress), while it runs."""
    from quantscope.runner.isolate import outcome_result, run_job

    payload = {"spec": spec.to_dict(), "reference_file": reference_file}
    outcome = run_job(payload, timeout_s, on_progress=on_progress)
    return outcome_result(spec, outcome)
