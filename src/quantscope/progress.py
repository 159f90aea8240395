"""What a run is doing now, told by the worker to the parent through one small file in the job folder.

The worker calls `report(phase, detail)` at each step (load, convert, warmup, reps, quality); the
parent polls the file while it waits (runner/isolate.py) and draws it (display.RunProgress). A file,
not a pipe: the worker never blocks on a reader, and a reader that is slow or gone costs the worker
nothing. Each write is atomic (tmp + rename), throttled to WRITE_EVERY_S within one phase, and done
outside every clocked region (between repetitions, between quality windows). Outside a worker (no
file set) `report` does nothing.

>>> start(None); report("load", "reading weights")  # no job folder: nothing written
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

PHASES = ("load", "convert", "warmup", "reps", "quality")
FILE = "progress.json"
WRITE_EVERY_S = 0.25

_target: Path | None = None
_last: tuple[str, float] = ("", 0.0)


def start(path: str | os.PathLike[str] | None) -> None:
    """Where this process reports to (the worker's job folder file), or None for nowhere."""
    global _target, _last
    _target = Path(path) if path is not None else None
    _last = ("", 0.0)


def report(phase: str, detail: str = "", **figures: Any) -> None:
    """Say what the run does now: `report("reps", "rep 3 of 3-10", decode_tps=41.2, ci_rel=0.03)`.

    A new phase is written at once; within a phase at most every WRITE_EVERY_S.
    """
    global _last
    if _target is None:
        return
    now = time.monotonic()
    if phase == _last[0] and now - _last[1] < WRITE_EVERY_S:
        return
    _last = (phase, now)
    text = json.dumps({"phase": phase, "detail": detail, "t": time.time(), **figures}, default=str)
    tmp = _target.with_name(f".{_target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, _target)
    except OSError:
        pass  # progress is a courtesy: a full disk must not fail the measurement


def read(path: Path) -> dict[str, Any] | None:
    """The last report in `path`, or None (none yet, or unreadable: the next poll tries again)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "phase" in data else None
