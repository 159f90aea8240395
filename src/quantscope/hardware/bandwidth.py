"""Main-memory bandwidth of this machine: a small STREAM-like benchmark in numpy, cached per machine.

Kernels and byte counts follow STREAM (McCalpin, https://www.cs.virginia.edu/stream/ref.html):
copy  c = a          counts 2 arrays (read a, write c)
triad a = b + s * c  counts 3 arrays (read b, c, write a)
read  sum(a)         counts 1 array  (the read-only kernel that decode's weight streaming resembles)
Write-allocate traffic is not counted, as in STREAM. Arrays are far larger than the last-level cache;
the best of several repetitions is kept, and the results are checked afterwards, as STREAM does.

Written by hand because STREAM itself is a C program to compile; numpy releases the GIL inside
its loops, so N Python threads each working on 1/N of the arrays load N cores.

>>> bw = measure_bandwidth(threads=1, array_bytes=8 << 20, reps=2)
>>> bw["copy_Bps"] > 0
True
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from quantscope import paths
from quantscope.errors import UserError

ARRAY_BYTES = 256 << 20  # per array; STREAM asks for >= 4x the last-level cache
REPS = 5
TRIAD_SCALAR = 3.0
# The triad runs in blocks that fit in L2 so that s * c never goes to memory as a temporary:
# numpy has no fused multiply-add, and a full-size temporary would add 2 arrays of traffic.
TRIAD_BLOCK_ELEMS = 32 << 10  # 256 KiB of float64
METHOD = (f"numpy STREAM-like copy/triad/read, float64, best of {REPS} reps, "
          "STREAM byte counting (copy 2, triad 3, read 1 arrays), no write-allocate")
# A measurement is kept as the machine's figure only when it ran undisturbed (FACTS.md: whole runs
# here slow down 5-30x at times, and two benchmarks at once slow each other far more than 2x).
MIN_ON_CPU = 0.9
MAX_OTHER_LOAD = 0.25
ATTEMPTS = 3
RETRY_PAUSE_S = 1.0
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _chunks(n: int, parts: int) -> list[slice]:
    step = -(-n // parts)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _copy(a: np.ndarray, c: np.ndarray, s: slice) -> None:
    np.copyto(c[s], a[s])


def _triad(a: np.ndarray, b: np.ndarray, c: np.ndarray, s: slice) -> None:
    tmp = np.empty(TRIAD_BLOCK_ELEMS)
    for start in range(s.start, s.stop, TRIAD_BLOCK_ELEMS):
        stop = min(start + TRIAD_BLOCK_ELEMS, s.stop)
        t = tmp[: stop - start]
        np.multiply(c[start:stop], TRIAD_SCALAR, out=t)
        np.add(b[start:stop], t, out=a[start:stop])


def _read(a: np.ndarray, s: slice) -> float:
    return float(a[s].sum())


def _on_cpu(fn, s: slice) -> float:
    """Run one thread's share; return the CPU time this thread got (stalls on memory count as CPU)."""
    t0 = time.thread_time()
    fn(s)
    return time.thread_time() - t0


def _best_time(pool: ThreadPoolExecutor, fn, parts: list[slice], reps: int) -> tuple[float, float]:
    """(best wall seconds, on-CPU fraction of that rep = threads' CPU time / (threads x wall)).

    An on-CPU fraction well under 1 means our threads were descheduled: another process (or a
    spinning thread pool in this one, or the hypervisor) took the cores, and the number is low.
    """
    best, share = float("inf"), 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        cpu = sum(f.result() for f in [pool.submit(_on_cpu, fn, s) for s in parts])
        wall = time.perf_counter() - t0
        if wall < best:
            best, share = wall, cpu / (len(parts) * wall)
    return best, share


def _busy_s() -> float:
    """CPU seconds the whole machine has been busy (not idle or waiting on I/O), all cores.

    Steal (time the hypervisor gave to other guests) counts as busy; guest time is already inside
    user time on Linux (proc(5), /proc/stat), so it is not added twice.
    """
    t = psutil.cpu_times()
    not_busy = ("idle", "iowait", "guest", "guest_nice")
    return sum(t) - sum(getattr(t, f, 0.0) for f in not_busy)


def _own_cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def measure_bandwidth(threads: int, array_bytes: int = ARRAY_BYTES, reps: int = REPS) -> dict[str, Any]:
    """Best-of-`reps` copy, triad and read-only bandwidth in bytes/s with `threads` threads.

    `contended` is True when the best repetitions did not have their cores to themselves or
    other processes kept the machine busy: then the figures understate the machine.

    Takes about a second with the defaults (3 x 256 MiB arrays) at tens of GB/s.
    """
    if threads < 1:
        raise UserError(f"bandwidth threads must be >= 1, got {threads}")
    n = array_bytes // 8
    a, b, c = np.full(n, 1.0), np.full(n, 2.0), np.zeros(n)  # filled: every page is touched first
    parts = _chunks(n, threads)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for f in [pool.submit(_copy, a, c, s) for s in parts]:  # untimed warm-up: faults in c, starts threads
            f.result()
        busy0, own0, t0 = _busy_s(), _own_cpu_s(), time.perf_counter()
        copy_s, copy_share = _best_time(pool, lambda s: _copy(a, c, s), parts, reps)
        triad_s, triad_share = _best_time(pool, lambda s: _triad(a, b, c, s), parts, reps)
        read_s, read_share = _best_time(pool, lambda s: _read(a, s), parts, reps)
        wall = time.perf_counter() - t0
        others_s = max(0.0, (_busy_s() - busy0) - (_own_cpu_s() - own0))
    # STREAM's check: after copy c == a == 1.0; after each triad a = b + s*c = 2 + 3*1.
    expected = 2.0 + TRIAD_SCALAR * 1.0
    probe = np.linspace(0, n - 1, 1024).astype(np.int64)
    if not (np.all(c[probe] == 1.0) and np.all(a[probe] == expected)):
        raise RuntimeError("bandwidth kernels computed wrong values: the measurement is not valid")
    array = n * 8
    on_cpu = min(copy_share, triad_share, read_share)
    other_load = others_s / (wall * (psutil.cpu_count() or 1))
    return {
        "copy_Bps": 2 * array / copy_s,
        "triad_Bps": 3 * array / triad_s,
        "read_Bps": array / read_s,
        "threads": threads,
        "array_bytes": array,
        "reps": reps,
        "method": METHOD,
        "on_cpu_fraction": on_cpu,  # of the best reps: < 1 when our threads lost their cores
        "other_cpu_load": other_load,  # share of the machine's CPU used by other processes meanwhile
        "contended": on_cpu < MIN_ON_CPU or other_load > MAX_OTHER_LOAD,
    }


def data_dir() -> Path:
    """$XDG_DATA_HOME/quantscope (default ~/.local/share/quantscope), per the XDG base-dir spec."""
    return paths.data_root()


def machine_bandwidth(machine_id: str, threads: int) -> dict[str, Any]:
    """This machine's bandwidth with `threads` threads: measured once, then read from the cache.

    The cache is $XDG_DATA_HOME/quantscope/bandwidth-<machine_id>-t<threads>.json with the date and
    method. A file lock keeps two processes from measuring at once (they would halve each other).
    A measurement disturbed by other work (`contended`, see measure_bandwidth) is retried, and if
    every attempt was disturbed it is returned marked so, and not cached.

    >>> from quantscope.env import fingerprint
    >>> machine_bandwidth(fingerprint().machine_id, 2)["triad_Bps"] > 0  # doctest: +SKIP
    True
    """
    if not _SAFE_ID.match(machine_id):
        raise UserError(f"machine id {machine_id!r} is not a short hash: pass EnvFingerprint.machine_id")
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bandwidth-{machine_id}-t{threads}.json"
    with open(folder / f".bandwidth-{machine_id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = _read_cache(path, machine_id, threads)
        if cached is not None:
            return cached
        result = _undisturbed_measurement(threads)
        measured_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        result.update(machine_id=machine_id, measured_at=measured_at)
        if result["contended"]:
            return result  # returned, marked, but not kept: the next run measures again
        paths.write_text(path, json.dumps(result, indent=2))  # atomic: a reader never sees half a file
        return result


def _undisturbed_measurement(threads: int) -> dict[str, Any]:
    """The first uncontended of up to ATTEMPTS measurements, else the fastest contended one."""
    tries = []
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(RETRY_PAUSE_S)  # let a neighbour's burst pass
        tries.append(measure_bandwidth(threads))
        if not tries[-1]["contended"]:
            break
    best = max(tries, key=lambda r: r["read_Bps"])
    best["attempts"] = len(tries)
    return best


def _read_cache(path: Path, machine_id: str, threads: int) -> dict[str, Any] | None:
    """The cached result, or None when missing, unreadable or not for this machine (then re-measured)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keys = ("copy_Bps", "triad_Bps", "read_Bps")
    if not isinstance(data, dict):
        return None
    # `contended` must be present and False: files written before the check existed are re-measured.
    valid = (data.get("machine_id") == machine_id and data.get("threads") == threads
             and data.get("contended") is False
             and all(isinstance(data.get(k), int | float) and data[k] > 0 for k in keys))
    return data if valid else None
