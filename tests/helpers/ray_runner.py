"""A fake quantscope.runner.run_spec for Ray tasks (tests/sweep/test_ray_executor.py): no model, no worker.

Ray runs tasks in its own worker processes, so a test cannot monkeypatch them: the executor names this
function ("helpers.ray_runner:run_spec") and the test puts tests/ on the workers' PYTHONPATH. What it
does is steered by environment variables the test passes in the runtime_env:
QS_RAY_LOG (a folder: one file per start and per end of a run, named KEY.PID.start/.end, holding the
node id, the time and the pid of its stand-in measuring process; the reference's file goes under it
too, so the test's tmp_path removes it), QS_RAY_SLEEP (seconds each run takes:
a `sleep` child in its own session, as run_spec's isolated worker is). An fp16 spec raises instead.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from quantscope.result import Measurement, Result
from quantscope.spec import RunSpec, reference_spec


def _mark(spec: RunSpec, what: str, worker_pid: int = 0) -> None:
    import ray

    log = Path(os.environ["QS_RAY_LOG"])
    node = ray.get_runtime_context().get_node_id()
    (log / f"{spec.key_hash()}.{os.getpid()}.{what}").write_text(f"{node} {time.time()} {worker_pid}")


def run_spec(spec: RunSpec, timeout_s: float = 900.0, reference_file: str | None = None) -> Result:
    from quantscope.env import fingerprint

    if spec.quant.dtype == "fp16":  # an error of ours inside the task (not a lost node)
        _mark(spec, "start")
        raise RuntimeError("fake runner refuses fp16")
    t0 = time.time()
    # the measuring process, as run_spec starts it: its own session, waited on from this thread
    worker = subprocess.Popen(["sleep", os.environ.get("QS_RAY_SLEEP", "0.5")], start_new_session=True)
    _mark(spec, "start", worker.pid)
    worker.wait()
    info: dict = {"t0": t0, "t1": time.time()}
    if spec.quality.enabled and reference_spec(spec) == spec:  # the reference: a file on this node only
        made = Path(tempfile.mkdtemp(prefix="fake-ref-", dir=os.environ["QS_RAY_LOG"])) / "0123abcd.npz"
        made.write_bytes(b"log-probs of " + spec.key_hash().encode())
        info["reference_file"] = str(made)
    elif reference_file is not None:
        info["reference_seen"] = Path(reference_file).read_bytes().decode()
    _mark(spec, "end")
    return Result(spec=spec, env=fingerprint(), status="ok", duration_s=info["t1"] - t0, info=info,
                  measurements=(Measurement("decode_tps", "tok/s", (10.0, 11.0), True),))
