"""The worker's lifeline: it dies with the process that started it, and its children and job folder go too.

Issue 20 found a worker living on for up to 30 s after its sweep was killed (kill -9, an OOM kill, a
closed terminal), finishing a measurement nobody would store while the resumed sweep's first run
competed with it for the cores, and its job folder left in /tmp. Three pieces close that:

1. `bind_to_parent` (first thing in the worker): on Linux prctl(PR_SET_PDEATHSIG, SIGKILL), so the
   kernel kills the worker the moment its parent dies, even inside a C call; then a check that the
   parent is still the one that started it, because a parent that died between fork and prctl sends
   no signal (prctl(2)). Elsewhere a thread polls getppid().
2. A sentinel forked by the worker before anything else (single-threaded, sleeping in sigtimedwait):
   when the worker ends, it kills what is left of the worker's process group (the worker's own
   children) and, when the owner is gone too, removes the job folder.
3. `reap_stale` (the next run, in the parent): job folders whose owner is gone are removed, and an
   orphaned worker still running in one is stopped and waited for; one that cannot be stopped is
   refused in one line.

tests/runner/test_orphans.py kills a sweep with SIGKILL and finds none of it left after a second.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from quantscope import paths
from quantscope.errors import UserError

JOB_PREFIX = "quantscope-job-"
OWNER_FILE = "owner.json"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.2  # where the kernel cannot tell us (no prctl, no sigtimedwait): how often to look
SENTINEL_WAKE_S = 1.0  # the sentinel's backstop poll; the signal normally wakes it at once
ORPHAN_EXIT_WAIT_S = 5.0  # how long the next run waits for an orphan it has SIGKILLed to be gone
LEGACY_AFTER_S = 3600.0  # a folder without owner.json (older quantscope): stale after twice the longest limit


@dataclass(frozen=True)
class Owner:
    """The process that started a worker: pid plus its start time, so a reused pid is not mistaken for it."""

    pid: int
    started: float | None  # psutil create_time; None where it cannot be read

    @classmethod
    def me(cls) -> Owner:
        return cls(os.getpid(), _create_time(os.getpid()))

    def alive(self) -> bool:
        started = _create_time(self.pid)
        if started is None:
            return _pid_exists(self.pid)
        return self.started is None or abs(started - self.started) < 0.5


def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def _pid_exists(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid)


def new_job_dir() -> Path:
    """A private job folder (mode 0700, unpredictable name) that names its owner's pid, with owner.json."""
    owner = Owner.me()
    job_dir = Path(tempfile.mkdtemp(prefix=f"{JOB_PREFIX}{owner.pid}-"))
    write_owner(job_dir, owner)
    return job_dir


def write_owner(job_dir: Path, owner: Owner, worker_pid: int | None = None) -> None:
    record = {"owner_pid": owner.pid, "owner_started": owner.started, "worker_pid": worker_pid}
    paths.write_text(job_dir / OWNER_FILE, json.dumps(record))


def read_owner(job_dir: Path) -> tuple[Owner | None, int | None]:
    """(owner, worker pid) from owner.json, else the owner pid in the folder's name; (None, None) if neither."""
    try:
        record = json.loads((job_dir / OWNER_FILE).read_text())
        return Owner(int(record["owner_pid"]), record.get("owner_started")), record.get("worker_pid")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    head = job_dir.name[len(JOB_PREFIX):].split("-", 1)[0]
    return (Owner(int(head), None), None) if head.isdigit() else (None, None)


# --- in the worker -----------------------------------------------------------------------------------


def _prctl_pdeathsig(sig: int) -> bool:
    """prctl(PR_SET_PDEATHSIG, sig) through libc; False where there is no such call (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def bind_to_parent(job_dir: Path) -> None:
    """Tie this worker's life to its owner's (see the module docstring). Call before any thread starts.

    Exits at once (code 3) when the owner is already gone: nobody would read the result.
    """
    owner, _ = read_owner(job_dir)
    if owner is None:  # started by hand (python -m quantscope.runner.worker DIR): nothing to bind to
        return
    _fork_sentinel(job_dir, owner)
    if _prctl_pdeathsig(signal.SIGKILL):
        if os.getppid() != owner.pid:  # the owner died between fork and prctl: no signal will come
            os._exit(3)
        return
    threading.Thread(target=_watch_parent, args=(owner.pid,), name="quantscope-lifeline", daemon=True).start()


def _watch_parent(pid: int) -> None:
    while os.getppid() == pid:
        time.sleep(POLL_S)
    os._exit(3)  # the sentinel sees this and takes the children and the folder with it


def _fork_sentinel(job_dir: Path, owner: Owner) -> None:
    worker = os.getpid()
    if os.getpgrp() != worker:  # not the leader of a group of its own: never kill someone else's group
        return
    if os.fork() != 0:
        return
    try:
        _sentinel(worker, job_dir, owner)
    finally:
        os._exit(0)


def _sentinel(worker: int, job_dir: Path, owner: Owner) -> None:
    """Sleep until the worker ends; then its group goes, and the folder too when the owner is gone."""
    wake = signal.SIGUSR2
    can_wait = hasattr(signal, "sigtimedwait")
    if can_wait:  # blocked before prctl: a signal that arrives early stays pending, so no wake-up is lost
        signal.pthread_sigmask(signal.SIG_BLOCK, {wake})
        _prctl_pdeathsig(wake)
    while os.getppid() == worker:
        if can_wait:
            signal.sigtimedwait({wake}, SENTINEL_WAKE_S)
        else:
            time.sleep(POLL_S)
    if not owner.alive():
        shutil.rmtree(job_dir, ignore_errors=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)  # the worker's children, and this sentinel last


# --- in the next run ---------------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    import psutil

    try:
        return psutil.Process(pid).cmdline()
    except (psutil.Error, OSError):
        return []


def _newest_mtime(job_dir: Path, default: float) -> float:
    try:
        return max([default, *(f.stat().st_mtime for f in job_dir.iterdir())])
    except OSError:
        return default


def _in_use(job_dir: Path) -> bool:
    """Whether any process's command line names the folder (a worker of an older quantscope in it)."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if str(job_dir) in (proc.info.get("cmdline") or []):
            return True
    return False


def reap_stale(say=None, tmp: Path | None = None) -> list[Path]:
    """Remove job folders whose owner is gone, after stopping an orphaned worker still running in one.

    Only this user's folders are touched, and only a process whose command line names the folder is
    signalled (pids are reused). Returns the folders removed. UserError when an orphan cannot be stopped.
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    removed = []
    for job_dir in sorted(Path(tmp or tempfile.gettempdir()).glob(f"{JOB_PREFIX}*")):
        try:
            st = job_dir.lstat()
        except OSError:
            continue
        if not job_dir.is_dir() or job_dir.is_symlink() or st.st_uid != os.getuid():
            continue
        owner, worker = read_owner(job_dir)
        if owner is None:  # an older quantscope's folder: only when long untouched and no process uses it
            if time.time() - _newest_mtime(job_dir, st.st_mtime) < LEGACY_AFTER_S or _in_use(job_dir):
                continue
        elif owner.alive():
            continue  # a live run's folder (this process's, or a concurrent run's)
        if worker is not None and str(job_dir) in _cmdline(worker):
            _stop_orphan(worker, job_dir, owner, say)
        shutil.rmtree(job_dir, ignore_errors=True)
        removed.append(job_dir)
    return removed


def _stop_orphan(worker: int, job_dir: Path, owner: Owner | None, say) -> None:
    whose = f"of process {owner.pid}, which is gone" if owner else "whose owner is gone"
    say(f"quantscope: stopping an orphaned worker (pid {worker}, {whose}): it would compete for the cores")
    try:
        os.killpg(worker, signal.SIGKILL)  # the worker leads its own group: its children go with it
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + ORPHAN_EXIT_WAIT_S
    while time.monotonic() < deadline:
        if str(job_dir) not in _cmdline(worker):
            return
        time.sleep(0.05)
    raise UserError(f"an orphaned quantscope worker (pid {worker}) still runs after SIGKILL, so measurements "
                    f"now would compete with it for the cores: end it (kill -9 {worker}) and rerun")
