"""The task pass inside a run: lm-eval on the model the run just timed (quality/tasks/).

The task part never decides the row's status: the speed row stands, and `info["tasks"]` says why
no accuracy was measured (unsupported runtime, synthetic weights, a dataset that cannot be had).
"""

from __future__ import annotations

import time
from typing import Any

from quantscope.errors import UserError
from quantscope.result import Measurement
from quantscope.spec import RunSpec


def task_measurements(backend, spec: RunSpec, artifact) -> tuple[list[Measurement], dict[str, Any]]:
    from quantscope.quality.tasks import harness
    from quantscope.quality.tasks.outcomes import task_measurements as to_measurements

    if artifact.synthetic:
        return [], {"tasks": "not measured: synthetic random weights have no meaningful accuracy"}
    reason = harness.drive_reason(backend)
    if reason:
        return [], {"tasks": f"unsupported: {reason}"}
    t0 = time.perf_counter()
    try:
        version = harness.require_lm_eval()
        out, own = harness.evaluate(backend.model, backend.tokenizer, spec.tasks.names, spec.tasks.limit)
    except UserError as e:  # missing lm-eval, unknown task, dataset offline: one line, speed row kept
        return [], {"tasks": f"failed: {e}"}
    return to_measurements(out, spec.tasks.limit, own, version), {"tasks_s": time.perf_counter() - t0,
                                                                   "tasks": "measured"}
