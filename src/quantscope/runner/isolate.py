"""Run one job in a fresh worker process and say what became of it, whatever the worker does.

The worker gets its own session (setsid), so on a timeout the whole process group (the worker
and anything it started, e.g. torch.compile's compile workers) is stopped: SIGTERM, a grace
period, then SIGKILL. Its stdout/stderr go to files, never pipes, so a chatty worker cannot block
on a full pipe. The parent sleeps in the kernel while it waits (a thread blocked in wait4, the
caller blocked on an Event), never a polling loop. The answer comes back as JSON in result.json,
written atomically by the worker; a missing or unreadable file is a "failed" outcome, not an
exception in the parent.

>>> import sys
>>> write_empty = "import sys; open(sys.argv[1] + '/result.json', 'w').write('{}')"
>>> out = run_job({}, 5.0, argv=[sys.executable, "-c", write_empty])
>>> out.status, out.result
('ok', {})
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantscope.present.units import MiB
from quantscope.result import EnvFingerprint, Result
from quantscope.runner.lifeline import Owner, new_job_dir, reap_stale, write_owner
from quantscope.spec import RunSpec

MAX_RESULT_BYTES = 512 * MiB  # a result carries raw samples: MBs at most; more is garbage
TAIL_CHARS = 4000
REAP_AFTER_KILL_S = 10.0
PROGRESS_POLL_S = 0.5  # with a progress callback the parent wakes this often to read the worker's file


@dataclass
class JobOutcome:
    """What became of one worker. `status`: ok (a result came back) | timeout | crashed | oom | failed."""

    status: str
    reason: str | None
    result: dict[str, Any] | None
    returncode: int | None
    stderr_tail: str
    wall_s: float
    started_at: str = ""  # ISO 8601 UTC
    peak_rss_bytes: int | None = None  # the worker's own peak RSS, from wait4's rusage


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _tail(path: Path, chars: int = TAIL_CHARS) -> str:
    """The end of a log file, read from its end (the file may be huge)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4 * chars))
            return f.read().decode(errors="replace")[-chars:]
    except OSError:
        return ""


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output on stderr"


def _oom_kills() -> int | None:
    """The kernel's count of OOM kills since boot (/proc/vmstat oom_kill, Linux >= 4.13)."""
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


class _Reaper:
    """Reap one child in a thread blocked in os.wait4, so the caller can sleep on an Event.

    wait4 also gives the child's rusage, whose ru_maxrss (KiB on Linux) is its peak RSS:
    the figure the OOM message needs once the process is gone.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.done = threading.Event()
        self.status: int | None = None
        self.maxrss_bytes: int | None = None
        threading.Thread(target=self._wait, name=f"quantscope-reap-{proc.pid}", daemon=True).start()

    def _wait(self) -> None:
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
        except ChildProcessError:
            status, usage = None, None
        self.status = status
        if status is not None:
            self.proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
        if usage is not None:
            self.maxrss_bytes = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        self.done.set()


def _start(argv: list[str], job_dir: Path) -> subprocess.Popen:
    with open(job_dir / "stdout.log", "wb") as out, open(job_dir / "stderr.log", "wb") as err:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True, close_fds=True)


def run_job(payload: dict[str, Any], timeout_s: float, *, argv: list[str] | None = None,
            grace_s: float = 5.0, on_progress: Callable[[dict[str, Any]], None] | None = None) -> JobOutcome:
    """Run `python -m quantscope.runner.worker JOB_DIR` (or `argv + [JOB_DIR]`) on `payload`.

    The worker reads JOB_DIR/job.json and writes JOB_DIR/result.json. After `timeout_s` the
    process group gets SIGTERM, after min(grace_s, timeout_s) more SIGKILL, so even a worker
    that ignores SIGTERM ends within about twice the limit. On KeyboardInterrupt the group is
    killed and the interrupt re-raised. The private job folder (mode 0700) is removed afterwards.

    First, job folders of runs whose process is gone are removed, and an orphaned worker still running
    in one is stopped (runner/lifeline.py): it would compete with this run for the cores.
    `on_progress(report)` gets each new report the worker writes to JOB_DIR/progress.json (progress.py).
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    reap_stale()
    job_dir = new_job_dir()  # mode 0700, unpredictable name, owner.json for the worker and the next run
    try:
        (job_dir / "job.json").write_text(json.dumps(payload))
        command = [*(argv or [sys.executable, "-m", "quantscope.runner.worker"]), str(job_dir)]
        return _supervise(command, job_dir, timeout_s, min(grace_s, timeout_s), on_progress)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def _wait(done: threading.Event, timeout_s: float, job_dir: Path,
          on_progress: Callable[[dict[str, Any]], None] | None) -> bool:
    """Wait up to `timeout_s` for the worker; True if it ended. Without `on_progress` one sleep in the
    kernel; with it, a wake-up every PROGRESS_POLL_S to pass on a new report from the worker's file."""
    if on_progress is None:
        return done.wait(timeout_s)
    from quantscope import progress

    deadline = time.monotonic() + timeout_s
    seen = None
    while True:
        left = deadline - time.monotonic()
        if done.wait(max(min(PROGRESS_POLL_S, left), 0.0)):
            return True
        if left <= 0:
            return False
        report = progress.read(job_dir / progress.FILE)
        if report is not None and report != seen:
            seen = report
            on_progress(report)


def _supervise(command: list[str], job_dir: Path, timeout_s: float, grace_s: float,
               on_progress: Callable[[dict[str, Any]], None] | None = None) -> JobOutcome:
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    oom_before = _oom_kills()
    t0 = time.perf_counter()
    proc = _start(command, job_dir)
    pgid = proc.pid  # start_new_session: the worker leads its own group
    write_owner(job_dir, Owner.me(), worker_pid=proc.pid)  # lets the next run find it if we die
    reaper = _Reaper(proc)
    sent: list[int] = []
    try:
        if not _wait(reaper.done, timeout_s, job_dir, on_progress):
            sent.append(signal.SIGTERM)
            _killpg(pgid, signal.SIGTERM)
            if not reaper.done.wait(grace_s):
                sent.append(signal.SIGKILL)
                _killpg(pgid, signal.SIGKILL)
                # SIGKILL cannot be ignored; only a process stuck in the kernel (D state) outlasts this.
                reaper.done.wait(max(grace_s, REAP_AFTER_KILL_S))
    except BaseException:  # KeyboardInterrupt while waiting: the worker must not outlive us
        _killpg(pgid, signal.SIGKILL)
        reaper.done.wait(grace_s)
        raise
    finally:
        _killpg(pgid, signal.SIGKILL)  # leftovers of the group (the id is not reused while it has members)
    wall_s = time.perf_counter() - t0
    stderr_tail = _tail(job_dir / "stderr.log")
    rc = proc.returncode
    outcome = JobOutcome("failed", None, None, rc, stderr_tail, wall_s, started_at, reaper.maxrss_bytes)
    result, bad = _read_result(job_dir / "result.json")
    if result is not None:
        # A complete result stands even if the worker then hung or crashed while shutting down.
        outcome.status, outcome.result = "ok", result
        if rc != 0:
            outcome.reason = f"worker wrote its result, then {_how_it_ended(rc, sent, timeout_s)}"
        return outcome
    if sent:
        outcome.status = "timeout"
        how = ("stopped by SIGTERM" if sent == [signal.SIGTERM]
               else f"ignored SIGTERM for {grace_s:g} s, SIGKILL")
        outcome.reason = f"no result within the {timeout_s:g} s limit ({how})"
    elif rc is not None and rc < 0:
        outcome.status, outcome.reason = _signal_outcome(-rc, reaper.maxrss_bytes, oom_before)
    elif bad:
        outcome.reason = f"worker wrote an unreadable result.json ({bad}); stderr: {_last_line(stderr_tail)}"
    else:
        outcome.reason = f"worker exited with code {rc} without a result: {_last_line(stderr_tail)}"
    return outcome


def _how_it_ended(rc: int, sent: list[int], timeout_s: float) -> str:
    if sent:
        return f"did not exit within the {timeout_s:g} s limit"
    return f"was killed by {_signal_name(-rc)}" if rc < 0 else f"exited with code {rc}"


def _signal_outcome(signum: int, maxrss: int | None, oom_before: int | None) -> tuple[str, str]:
    """A death by a signal we did not send: crashed, or oom for an unexplained SIGKILL."""
    if signum != signal.SIGKILL:
        return "crashed", f"worker killed by {_signal_name(signum)}"
    peak = f"peak RSS {maxrss / MiB:,.0f} MiB" if maxrss else "peak RSS unknown"
    oom_after = _oom_kills()
    if oom_before is not None and oom_after is not None and oom_after > oom_before:
        return "oom", ("worker killed by SIGKILL from the kernel's OOM killer "
                       f"(/proc/vmstat oom_kill rose; {peak})")
    return "oom", f"worker killed by SIGKILL, most likely the kernel's OOM killer ({peak})"


def _read_result(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(result, None), or (None, why it is unusable); (None, None) when there is no file at all."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, str(e)
    if size > MAX_RESULT_BYTES:
        return None, f"{size:,} bytes, more than a result can be"
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, f"not JSON: {e}"
    if not isinstance(data, dict):
        return None, f"a JSON {type(data).__name__}, not an object"
    return data, None


def outcome_result(spec: RunSpec, outcome: JobOutcome, env: EnvFingerprint | None = None) -> Result:
    """The typed Result row for `outcome`: the worker's own Result when one came back, else a
    timeout / crashed / oom / failed row carrying the reason, the stderr tail and the peak RSS."""
    if outcome.result is not None:
        try:
            result = Result.from_dict(outcome.result)
        except Exception as e:  # any schema mismatch in the worker's JSON: a failed row, not a crash
            reason = f"worker result does not match the Result schema ({type(e).__name__}: {e})"
            return _row(spec, outcome, env, "failed", reason)
        if outcome.reason:
            result.info.setdefault("worker_exit", outcome.reason)
        return result
    return _row(spec, outcome, env, outcome.status if outcome.status != "ok" else "failed",
                outcome.reason or "worker returned no result")


def _row(spec: RunSpec, outcome: JobOutcome, env: EnvFingerprint | None, status: str, reason: str) -> Result:
    if env is None:
        from quantscope.env import fingerprint

        env = fingerprint()
    info: dict[str, Any] = {"returncode": outcome.returncode, "stderr_tail": outcome.stderr_tail[-2000:]}
    if outcome.peak_rss_bytes:
        info["worker_peak_rss_bytes"] = outcome.peak_rss_bytes
    return Result(spec=spec, env=env, status=status, reason=reason, started_at=outcome.started_at,
                  duration_s=outcome.wall_s, info=info)
