"""The worker process: `python -m quantscope.runner.worker JOB_DIR`.

Reads JOB_DIR/job.json {"spec": RunSpec.to_dict(), "reference_file": ...}, measures it with
quantscope.runner.measure.execute, and writes JOB_DIR/result.json (JSON, atomically: tmp + rename).
An exception becomes a Result too (oom / unsupported / failed with a one-line reason); its
traceback goes to stderr, which the parent keeps as the log.

On SIGTERM (the parent's timeout) faulthandler writes every thread's Python stack to stderr,
from a C signal handler that runs even while the worker is stuck inside a C extension, and then
the default action ends the process at once: the log shows where the run hung.

The worker dies with the process that started it, and its own children with it (runner/lifeline.py):
a measurement nobody will store must not compete for the cores with the next one.
"""

from __future__ import annotations

import datetime as dt
import faulthandler
import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from quantscope import paths
from quantscope.result import EnvFingerprint, Result
from quantscope.runner.lifeline import bind_to_parent
from quantscope.spec import RunSpec

REASON_CHARS = 500
# Messages of allocation failures that arrive as RuntimeError rather than MemoryError:
# torch CPU ("DefaultCPUAllocator: can't allocate memory" / "not enough memory"), CUDA
# ("CUDA out of memory", torch.OutOfMemoryError), and "Cannot allocate memory" (ENOMEM).
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


def one_line(exc: BaseException) -> str:
    """'ExcType: first line of the message', short enough for a table cell."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:REASON_CHARS]


def _is_oom(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:  # follow the chain: libraries re-raise as other types
        seen.add(id(exc))
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
            return True
        if isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in OOM_MARKERS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, reason) for an exception raised by a run.

    >>> classify(MemoryError())
    ('oom', 'out of memory: MemoryError')
    >>> classify(ValueError("bad shape\\nmore detail"))
    ('failed', 'ValueError: bad shape')
    """
    from quantscope.backends.base import Unsupported

    if isinstance(exc, Unsupported):
        return "unsupported", (str(exc).strip() or type(exc).__name__)[:REASON_CHARS]
    if _is_oom(exc):
        return "oom", f"out of memory: {one_line(exc)}"
    return "failed", one_line(exc)


def exception_result(spec: RunSpec, exc: BaseException, started_at: str = "", duration_s: float = 0.0,
                     env: EnvFingerprint | None = None, info: dict[str, Any] | None = None) -> Result:
    """The Result row for a run that raised `exc` (status oom / unsupported / failed)."""
    if env is None:
        from quantscope.env import fingerprint

        env = fingerprint()
    status, reason = classify(exc)
    return Result(spec=spec, env=env, status=status, reason=reason, started_at=started_at,
                  duration_s=duration_s, info={**(info or {}), "exception": type(exc).__name__})


def _jsonable(obj: Any) -> Any:
    """json.dumps fallback: numpy scalars and arrays, paths, sets. Anything else is an error."""
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_result(job_dir: Path, result: Result) -> None:
    """Write result.json atomically: the parent sees the whole file or none."""
    try:
        text = json.dumps(result.to_dict(), default=_jsonable)
    except (TypeError, ValueError) as e:
        traceback.print_exc()
        failed = Result(spec=result.spec, env=result.env, status="failed", started_at=result.started_at,
                        duration_s=result.duration_s,
                        reason=f"the run's result could not be written as JSON ({one_line(e)})")
        text = json.dumps(failed.to_dict())
    paths.write_text(job_dir / "result.json", text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m quantscope.runner.worker JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[0])
    from quantscope import progress

    progress.start(job_dir / progress.FILE)  # the parent polls it while it waits (runner/isolate.py)
    # First, while this process has one thread: die with the parent, children and job folder with it
    # (the sentinel it forks must not inherit the SIGTERM stack dump below).
    bind_to_parent(job_dir)
    faulthandler.enable()  # SIGSEGV/SIGABRT/...: Python stacks to stderr, then the default action
    faulthandler.register(signal.SIGTERM, all_threads=True, chain=True)
    payload = json.loads((job_dir / "job.json").read_text())
    spec = RunSpec.from_dict(payload["spec"])
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    try:
        from quantscope.runner.measure import execute

        result = execute(spec, reference_file=payload.get("reference_file"))
    except Exception as exc:  # MemoryError is an Exception too; KeyboardInterrupt/SystemExit pass
        traceback.print_exc()
        result = exception_result(spec, exc, started_at, time.perf_counter() - t0)
    write_result(job_dir, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
