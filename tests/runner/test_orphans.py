"""No orphan after a killed run: the worker, its children and its job folder go with the process that
started it (runner/lifeline.py), and the next run clears whatever an older process left.

Every test gives the processes it starts a TMPDIR of their own, so the job folders it looks for are its
own and never those of another run on the machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from quantscope.runner.lifeline import JOB_PREFIX, Owner, reap_stale, write_owner

GONE_WITHIN_S = 1.0


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its (new) parent to reap it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(predicate, timeout_s: float, poll_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    return None


def job_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob(f"{JOB_PREFIX}*"))


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def using(tmp: Path) -> list[int]:
    """Processes whose command line names a path under `tmp` (workers name their job folder)."""
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(tmp) in arg for arg in proc.info.get("cmdline") or []) and alive(proc.pid):
            out.append(proc.pid)
    return out


# A worker stand-in: binds to its parent as the real worker does, starts a child of its own, says so,
# and sleeps. What it shows holds for the real worker, whose main() makes the same call first.
FAKE_WORKER = textwrap.dedent("""
    import json, os, subprocess, sys, time
    from pathlib import Path
    from quantscope.runner.lifeline import bind_to_parent
    job_dir = Path(sys.argv[-1])
    bind_to_parent(job_dir)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(os.environ["READY_FILE"]).write_text(json.dumps({"worker": os.getpid(), "child": child.pid,
                                                          "job_dir": str(job_dir)}))
    time.sleep(120)
""")


@pytest.mark.unit
def test_worker_its_child_and_its_folder_go_when_the_owner_is_killed(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    ready = tmp_path / "ready.json"
    owner_body = ("import sys; from quantscope.runner.isolate import run_job\n"
                  f"run_job({{}}, 300, argv=[sys.executable, {str(script)!r}])\n")
    env = {**os.environ, "TMPDIR": str(tmp), "READY_FILE": str(ready)}
    owner = subprocess.Popen([sys.executable, "-c", owner_body], env=env)
    try:
        assert wait_for(ready.exists, 60), "the fake worker never started"
        pids = json.loads(ready.read_text())
        assert len(job_dirs(tmp)) == 1 and alive(pids["worker"]) and alive(pids["child"])
        sentinel = [p for p in descendants(pids["worker"]) if p != pids["child"]]
        assert len(sentinel) == 1  # the worker's lifeline, sleeping until the worker ends
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        time.sleep(GONE_WITHIN_S)
        left = [name for name in ("worker", "child") if alive(pids[name])]
        assert not left and not alive(sentinel[0]), f"still running: {left}"
        assert job_dirs(tmp) == []  # removed by the worker's sentinel, not left for the next run
    finally:
        owner.kill()
        owner.wait()


@pytest.mark.unit
def test_a_worker_whose_parent_is_not_its_owner_exits_at_once(tmp_path):
    # The race prctl(2) warns of: the owner died between fork and PR_SET_PDEATHSIG, so the worker now
    # has another parent and no signal will come. Here the owner named in owner.json is pid 1.
    job_dir = tmp_path / f"{JOB_PREFIX}1-x"
    job_dir.mkdir()
    write_owner(job_dir, Owner(1, None))
    (job_dir / "job.json").write_text(json.dumps({"spec": {}}))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "quantscope.runner.worker", str(job_dir)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    assert not (job_dir / "result.json").exists()
    assert time.monotonic() - t0 < 60


def dead_owner() -> Owner:
    """An owner that existed and is gone: a process that has exited and been reaped."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return Owner(p.pid, time.time() - 1)


@pytest.mark.unit
def test_next_run_stops_an_orphan_and_removes_stale_folders_only(tmp_path):
    gone, live = tmp_path / f"{JOB_PREFIX}gone", tmp_path / f"{JOB_PREFIX}live"
    gone.mkdir()
    live.mkdir()
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(gone)],
                              start_new_session=True)
    try:
        write_owner(gone, dead_owner(), worker_pid=orphan.pid)
        write_owner(live, Owner.me())
        lines: list[str] = []
        removed = reap_stale(say=lines.append, tmp=tmp_path)
        assert removed == [gone] and live.is_dir() and not gone.exists()
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert len(lines) == 1 and f"orphaned worker (pid {orphan.pid}" in lines[0]
    finally:
        orphan.kill()
        orphan.wait()


@pytest.mark.unit
def test_a_folder_of_an_older_quantscope_is_left_while_recent_or_in_use(tmp_path):
    legacy = tmp_path / f"{JOB_PREFIX}abcd1234"  # no owner in its name or in an owner.json
    legacy.mkdir()
    (legacy / "job.json").write_text("{}")
    assert reap_stale(say=lambda _line: None, tmp=tmp_path) == []
    old = time.time() - 2 * 3600
    for path in (legacy / "job.json", legacy):
        os.utime(path, (old, old))
    assert reap_stale(say=lambda _line: None, tmp=tmp_path) == [legacy]


@pytest.mark.integration
def test_sweep_killed_mid_run_leaves_no_process_and_no_job_folder_after_the_next_run(tmp_path):
    """Issue 20's own check: kill -9 a sweep's parent while its worker measures."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    store = tmp_path / "s.sqlite"
    env = {**os.environ, "TMPDIR": str(tmp), "QUANTSCOPE_STORE": str(store)}
    cli = [sys.executable, "-m", "quantscope.cli"]
    sweep = subprocess.Popen([*cli, "sweep", "--model", "synthetic:tiny-llama", "--no-quality", "--dtype", "fp32",
                              "--dtype", "bf16", "--no-report"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        def worker_running() -> bool:
            family = descendants(sweep.pid)  # the worker and, once its main() runs, its sentinel
            return len(family) >= 2 and any("quantscope.runner.worker" in " ".join(_cmd(p)) for p in family)

        assert wait_for(worker_running, 180), "the sweep never started a worker"
        time.sleep(0.5)  # mid-run: the worker is importing torch or measuring
        family = descendants(sweep.pid)
        assert family
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        time.sleep(GONE_WITHIN_S)
        assert [p for p in family if alive(p)] == [], "part of the killed sweep still runs"
        assert using(tmp) == []
    finally:
        sweep.kill()
        sweep.wait()
    nxt = subprocess.run([*cli, "run", "--model", "synthetic:tiny-llama", "--no-quality", "-p", "8", "-g", "4",
                          "--min-reps", "1", "--max-reps", "1", "--warmup", "0"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert nxt.returncode == 0, nxt.stderr
    assert job_dirs(tmp) == []


def _cmd(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []
