"""GPU telemetry through NVML while the timed work runs: utilisation, power, temperature, clock, memory.

The study quantscope grew from showed these per precision (its slide 8); here a thread samples NVML
every `interval_s` from the start of the timed work to its end, and each quantity is stored as a time
series (Measurement samples + the sample times in meta), so the table can show mean/peak and the
report can draw it. What NVML means by each (nvml.h, "Device Queries"):

- utilization.gpu: percent of the last sample period (1/6 s to 1 s, by product) during which one or
  more kernels ran: busy time, not SM occupancy. utilization.memory: the same for device memory
  reads/writes.
- power: nvmlDeviceGetPowerUsage, milliwatts, the board's draw (averaged by the driver over ~1 s on
  recent GPUs); temperature: the GPU die, °C; clock: the SM clock, MHz; memory used: the device's
  used bytes (all processes; the run's own figure is metrics/gpu_memory.py).
- energy: nvmlDeviceGetTotalEnergyConsumption, millijoules since the driver loaded (Volta and newer),
  read at start and stop: the timed work's joules.

A quantity the GPU does not report (NVMLError, e.g. NotSupported) is left out, never filled in.
Without nvidia-ml-py or a GPU, `available()` says why and nothing is sampled.

>>> tel = GpuTelemetry()
>>> reason = tel.available()  # None on a machine with an NVIDIA GPU and nvidia-ml-py
>>> with tel:
...     pass
>>> isinstance(tel.series, dict)
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_INTERVAL_S = 0.1
MAX_SAMPLES = 5_000  # past this the interval doubles and every other sample is dropped (as PeakRSS)

# name -> (unit, higher_is_better, reader of one handle returning the value in that unit)
_QUANTITIES: dict[str, tuple[str, bool | None, Callable[[Any, Any], float]]] = {
    "gpu_util_pct": ("%", None, lambda nv, h: float(nv.nvmlDeviceGetUtilizationRates(h).gpu)),
    "gpu_mem_util_pct": ("%", None, lambda nv, h: float(nv.nvmlDeviceGetUtilizationRates(h).memory)),
    "gpu_power_w": ("W", False, lambda nv, h: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
    "gpu_temp_c": ("°C", False, lambda nv, h: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))),
    "gpu_sm_clock_mhz": ("MHz", None, lambda nv, h: float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))),
    "gpu_mem_used_bytes": ("bytes", False, lambda nv, h: float(nv.nvmlDeviceGetMemoryInfo(h).used)),
}
UNITS = {name: unit for name, (unit, _, _) in _QUANTITIES.items()}


def _load_nvml() -> tuple[Any, str | None]:
    try:
        import pynvml  # nvidia-ml-py: a ctypes binding, lazy because CPU machines do not have it
    except ImportError:
        return None, "nvidia-ml-py is not installed (pip install nvidia-ml-py) or no NVIDIA GPU"
    return pynvml, None


class GpuTelemetry:
    """Context manager: sample one GPU's NVML quantities on a thread while the block runs.

    After exit: `series` {name: [values]}, `times_s` (seconds since enter, one per sample),
    `energy_j` (None where the GPU has no energy counter), `unsupported` (names NVML refused).
    `nvml` is a seam: tests pass a fake module with the same function names.
    """

    def __init__(self, device_index: int = 0, interval_s: float = DEFAULT_INTERVAL_S, nvml: Any = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.device_index, self.interval_s, self._clock = device_index, interval_s, clock
        self._nv, self._reason = (nvml, None) if nvml is not None else _load_nvml()
        self._handle = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._e0: float | None = None
        self._readers: dict[str, Callable[[Any, Any], float]] = {}
        self.series: dict[str, list[float]] = {}
        self.times_s: list[float] = []
        self.energy_j: float | None = None
        self.unsupported: list[str] = []
        if self._nv is not None:
            self._open()

    def _open(self) -> None:
        nv = self._nv
        try:
            nv.nvmlInit()
            self._handle = nv.nvmlDeviceGetHandleByIndex(self.device_index)
        except nv.NVMLError as e:
            self._reason = f"NVML not readable for GPU {self.device_index}: {e}"
            return
        for name, (_, _, read) in _QUANTITIES.items():  # probe once: keep what this GPU reports
            try:
                read(nv, self._handle)
            except nv.NVMLError:
                self.unsupported.append(name)
                continue
            self._readers[name] = read

    def available(self) -> str | None:
        """None when NVML answers for this GPU, else why telemetry is not measured."""
        return self._reason

    def _energy_mj(self) -> float | None:
        try:
            return float(self._nv.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nv.NVMLError:  # older than Volta, or not exposed (some vGPUs)
            return None

    def _sample(self) -> None:
        t = self._clock() - self._t0
        row = {}
        for name, read in self._readers.items():
            try:
                row[name] = read(self._nv, self._handle)
            except self._nv.NVMLError:
                return  # a transient refusal: skip this whole sample so every series keeps one length
        self.times_s.append(t)
        for name, value in row.items():
            self.series.setdefault(name, []).append(value)

    def _run(self) -> None:
        interval = self.interval_s
        while not self._stop.wait(interval):  # sleeps in the kernel: no spinning beside the work
            self._sample()
            if len(self.times_s) > MAX_SAMPLES:
                self.times_s = self.times_s[::2]
                self.series = {k: v[::2] for k, v in self.series.items()}
                interval *= 2

    def __enter__(self) -> GpuTelemetry:
        self.series, self.times_s, self.energy_j = {}, [], None
        if self._reason:
            return self
        self._stop.clear()
        self._t0 = self._clock()
        self._e0 = self._energy_mj()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="quantscope-gpu-telemetry", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._reason:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample()
        e1 = self._energy_mj()
        self.energy_j = (e1 - self._e0) / 1000.0 if e1 is not None and self._e0 is not None else None
        try:
            self._nv.nvmlShutdown()
        except self._nv.NVMLError:
            pass  # shutting down a library that already failed: nothing left to release

    def measurements_data(self) -> list[tuple[str, str, list[float], bool | None, dict[str, Any]]]:
        """(name, unit, samples, higher_is_better, meta) per sampled quantity; runner/measure.py makes
        Measurements of them (metrics sits below result in the layers)."""
        meta = {"interval_s": self.interval_s, "t_s": list(self.times_s), "device_index": self.device_index,
                "source": "NVML", "scope": "timed work only"}
        return [(name, _QUANTITIES[name][0], list(values), _QUANTITIES[name][1], meta)
                for name, values in self.series.items() if values]

    def info(self, tokens: int | None = None) -> dict[str, Any]:
        """Mean and peak of each series, energy and J/token where counted, and what was not reported."""
        if self._reason:
            return {"measured": False, "reason": self._reason}
        out: dict[str, Any] = {"measured": True, "samples": len(self.times_s), "unsupported": self.unsupported}
        for name, values in self.series.items():
            if values:
                out[name] = {"mean": sum(values) / len(values), "peak": max(values)}
        out["energy_j"] = self.energy_j
        if self.energy_j is not None and tokens:
            out["energy_j_per_token"] = self.energy_j / tokens
        return out
