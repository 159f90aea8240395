"""Peak resident memory of THIS process over a block of code (never the machine's used RAM).

Two sources, because each misses something:
- the kernel's high-water mark VmHWM (/proc/self/status) sees every page ever resident, even a
  spike shorter than any sampling interval; writing "5" to /proc/self/clear_refs resets it to the
  current RSS (Documentation/filesystems/proc.rst, "clear_refs"), so it can cover just the block;
- a background thread samples RSS (psutil) every ~10 ms and keeps the samples as a timeline.
Where the reset is refused, VmHWM still counts if it rose during the block (the peak is then
inside it); otherwise the sampled maximum is used.

>>> import numpy as np
>>> with PeakRSS() as rss:
...     a = np.ones(1 << 24)  # 128 MiB, touched
>>> rss.increase_bytes > 100 << 20
True
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
MAX_SAMPLES = 50_000  # past this, every other sample is dropped and the interval doubles


def read_vmhwm(status: Path = _STATUS) -> int | None:
    """VmHWM of this process in bytes, or None where /proc is absent (not Linux)."""
    try:
        text = status.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB (KiB)
    return None


def reset_vmhwm(clear_refs: Path = _CLEAR_REFS) -> bool:
    """Reset the kernel's peak RSS to the current RSS; False where not permitted or not Linux."""
    try:
        clear_refs.write_text("5")
    except OSError:
        return False
    return True


class PeakRSS:
    """Context manager: peak RSS of the current process while the block runs.

    After exit: `peak_bytes` (the peak, see the module note), `baseline_bytes` (RSS at enter),
    `increase_bytes`, `samples` [(seconds since enter, rss bytes)], `hwm_reset` (whether the
    kernel's high-water mark was reset to cover just this block), `hwm_counted` (whether VmHWM
    entered `peak_bytes`). `interval_s=0` disables sampling (VmHWM alone).
    """

    def __init__(self, interval_s: float = 0.01, *, status: Path = _STATUS, clear_refs: Path = _CLEAR_REFS,
                 reset: bool = True):
        self.interval_s = interval_s
        # reset=False: a block inside another PeakRSS (the timed work inside load + timed work) must not
        # reset the kernel's high-water mark the outer one reads at its exit.
        self.reset = reset
        self._status, self._clear_refs = status, clear_refs
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.samples: list[tuple[float, int]] = []
        self.baseline_bytes = 0
        self.peak_bytes = 0
        self.hwm_reset = False
        self.hwm_counted = False  # whether the kernel's VmHWM entered peak_bytes
        self._hwm_enter: int | None = None

    def __enter__(self) -> PeakRSS:
        self.samples = []
        self._stop.clear()
        self.hwm_reset = reset_vmhwm(self._clear_refs) if self.reset else False
        self._hwm_enter = read_vmhwm(self._status)
        self._t0 = time.perf_counter()
        self.baseline_bytes = self._rss()
        self.samples.append((0.0, self.baseline_bytes))
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._sample, name="quantscope-peak-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.samples.append((time.perf_counter() - self._t0, self._rss()))
        sampled = max(rss for _, rss in self.samples)
        hwm = read_vmhwm(self._status)
        rose = hwm is not None and self._hwm_enter is not None and hwm > self._hwm_enter
        counts = hwm is not None and (self.hwm_reset or rose)
        self.peak_bytes = max(sampled, hwm) if counts else sampled
        self.hwm_counted = counts

    @property
    def increase_bytes(self) -> int:
        return self.peak_bytes - self.baseline_bytes

    def _rss(self) -> int:
        return self._proc.memory_info().rss

    def _sample(self) -> None:
        interval = self.interval_s
        # Event.wait sleeps in the kernel between samples: no spinning next to the measured work.
        while not self._stop.wait(interval):
            self.samples.append((time.perf_counter() - self._t0, self._rss()))
            if len(self.samples) > MAX_SAMPLES:
                # Bound memory on long runs: keep the maximum so far, halve the timeline's resolution.
                top = max(self.samples, key=lambda s: s[1])
                self.samples = sorted(set(self.samples[::2]) | {top})
                interval *= 2
