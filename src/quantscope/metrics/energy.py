"""Energy from the hardware's own counters: RAPL on CPUs, NVML on NVIDIA GPUs. Never an estimate.

RAPL: the Linux powercap sysfs (Documentation/power/powercap/powercap.rst) exposes one zone per
CPU package, /sys/class/powercap/intel-rapl:N (the same driver serves recent AMD CPUs), with a cumulative
`energy_uj` that wraps at `max_energy_range_uj`. Only top-level zones named "package-*" are
summed: their sub-zones (core, uncore, dram) and a top-level "psys" zone overlap the packages.
Since Linux 5.10 `energy_uj` is readable by root only (CVE-2020-8694, "Platypus").
NVML: nvmlDeviceGetTotalEnergyConsumption, millijoules since the driver loaded (Volta and newer).

The sysfs reading is written by hand: it is a few file reads, and the libraries that do it
(codecarbon, pyRAPL) bring estimation fallbacks and dependencies we do not want.

>>> meter = EnergyMeter()
>>> reason = meter.available()  # None when a counter is readable, else why not
>>> if reason is None:
...     meter.start(); joules = meter.stop()
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


@dataclass
class RaplZone:
    """One package's counter and the last raw value read, to detect wraparound."""

    name: str
    energy_file: Path
    max_range_uj: int
    last_uj: int

    def read_delta_uj(self) -> int:
        now = int(self.energy_file.read_text())
        return self.advance(now)

    def advance(self, now_uj: int) -> int:
        """Microjoules since the last read; a smaller value means the counter wrapped once.

        The counter must be read at least once per wrap period (max range / power: minutes at
        hundreds of watts), as turbostat and scaphandre assume too.
        """
        delta = now_uj - self.last_uj
        if delta < 0:
            delta += self.max_range_uj
        self.last_uj = now_uj
        return delta


def rapl_zones(powercap: Path = POWERCAP) -> tuple[list[RaplZone], str | None]:
    """The readable RAPL package zones under `powercap`, or ([], reason) when there are none."""
    if not powercap.is_dir():
        return [], f"RAPL not exposed at {powercap} (container, VM or non-Linux host)"
    zones, denied = [], False
    for zone_dir in sorted(powercap.iterdir()):
        if not _PACKAGE_ZONE.match(zone_dir.name):
            continue
        try:
            name = (zone_dir / "name").read_text().strip()
            if not name.startswith("package"):
                continue  # "psys" (platform) already includes the packages
            max_range = int((zone_dir / "max_energy_range_uj").read_text())
            first = int((zone_dir / "energy_uj").read_text())
        except PermissionError:
            denied = True
            continue
        except (OSError, ValueError):
            continue
        zones.append(RaplZone(name, zone_dir / "energy_uj", max_range, first))
    if zones:
        return zones, None
    if denied:
        return [], (f"RAPL energy_uj under {powercap} is readable by root only (Linux >= 5.10, "
                    "CVE-2020-8694): run as root or grant read access to measure CPU energy")
    return [], f"no RAPL package zone under {powercap}"


class NvmlCounters:
    """Total-energy counters of every NVIDIA GPU, through nvidia-ml-py (imported lazily)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._nvml = None
        self._handles: list = []
        self._last_mj: list[int] = []
        try:
            import pynvml
        except ImportError:
            driver_here = Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi")
            self.reason = ("NVIDIA driver present but nvidia-ml-py is not installed: pip install nvidia-ml-py"
                           if driver_here else "no NVIDIA GPU")
            return
        try:
            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self._last_mj = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
        except pynvml.NVMLError as e:  # no driver, or a GPU older than Volta (NotSupported)
            self.reason = f"NVML energy counter not readable: {e}"
            self._handles = []
            return
        if not self._handles:
            self.reason = "NVML found no GPU"
            return
        self._nvml = pynvml

    @property
    def ok(self) -> bool:
        return self._nvml is not None

    def read_delta_j(self) -> float:
        now = [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
        delta_mj = sum(n - last for n, last in zip(now, self._last_mj, strict=True))
        self._last_mj = now
        return delta_mj / 1000.0


class EnergyMeter:
    """Joules used by the CPU packages (RAPL) plus the NVIDIA GPUs (NVML), whichever are readable.

    These are machine-level counters: they include anything else running on the machine during
    the measurement, which is why benchmarks here run alone. `sources` names what was summed.
    `read()` is a cumulative counter (joules since construction or `start()`); `start()`/`stop()`
    bracket one region.
    """

    def __init__(self, powercap: Path = POWERCAP, nvml: bool = True) -> None:
        self._zones, rapl_reason = rapl_zones(powercap)
        self._gpu = NvmlCounters() if nvml else None
        reasons = [rapl_reason] if rapl_reason else []
        if self._gpu is not None and not self._gpu.ok:
            reasons.append(self._gpu.reason)
        gpu_ok = self._gpu is not None and self._gpu.ok
        self.sources: list[str] = (["rapl"] if self._zones else []) + (["nvml"] if gpu_ok else [])
        self._reason = None if self.sources else "; ".join(r for r in reasons if r) or "no energy counter"
        self._total_j = 0.0

    def available(self) -> str | None:
        """None when at least one counter is readable, else the reason energy is not measured."""
        return self._reason

    def read(self) -> float:
        """Joules accumulated since construction or the last `start()`."""
        if self._reason:
            raise RuntimeError(f"energy not measurable: {self._reason}")
        uj = sum(z.read_delta_uj() for z in self._zones)
        gpu_j = self._gpu.read_delta_j() if self._gpu is not None and self._gpu.ok else 0.0
        self._total_j += uj / 1e6 + gpu_j
        return self._total_j

    def start(self) -> None:
        self.read()
        self._total_j = 0.0

    def stop(self) -> float:
        """Joules since `start()`."""
        return self.read()
