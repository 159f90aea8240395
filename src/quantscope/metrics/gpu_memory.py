"""GPU memory of this process as the driver sees it (NVML), beside torch's own allocator counters."""

from __future__ import annotations

import os


def nvml_process_bytes(device_index: int = 0) -> int | None:
    """Bytes NVML reports for this process on the device, or None where NVML is not readable.

    torch's max_memory_allocated misses the CUDA context and other libraries' allocations; NVML's
    per-process figure is what `nvidia-smi` shows and what decides whether a model fits.
    """
    try:
        import pynvml  # nvidia-ml-py; lazy: absent on CPU machines
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                return int(proc.usedGpuMemory)
        return None
    except pynvml.NVMLError:
        return None
