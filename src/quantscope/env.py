"""The machine and software a run is measured on: `fingerprint() -> EnvFingerprint`.

Nothing heavy is imported here: package versions come from importlib.metadata (installed metadata,
never `import torch`), the GPU from nvidia-smi or NVML. Every probe degrades to None / "unknown"
rather than failing, because a fingerprint is taken even for runs that fail.

>>> fp = fingerprint()
>>> len(fp.machine_id)
12
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import psutil

import quantscope
from quantscope.present.units import GiB
from quantscope.result import EnvFingerprint

# Distribution names (as pip knows them) whose versions change what a run measures.
PACKAGES = (
    "torch", "transformers", "torchao", "bitsandbytes", "onnxruntime", "onnxruntime-genai",
    "llama_cpp_python", "gguf", "numpy", "safetensors", "accelerate", "optimum-onnx",
)

# CPU features that decide which kernels a runtime can use (x86: AVX/AVX-512/AMX/VNNI/F16C;
# Arm: NEON dot product, i8mm, SVE, bf16). The full flag list is mostly irrelevant noise.
_FLAG_PATTERN = re.compile(
    r"^(avx.*|amx.*|fma|f16c|sse4_1|sse4_2|ssse3|.*vnni.*|.*bf16.*|.*fp16.*"  # x86
    r"|asimd.*|sve.*|i8mm|dotprod|fphp)$"  # Arm (the "Features" line)
)
_SUBPROCESS_TIMEOUT_S = 10.0


def _cpuinfo() -> tuple[str, tuple[str, ...]]:
    """CPU model name and the relevant subset of its feature flags, from /proc/cpuinfo (Linux)."""
    model, flags = "", set()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = {f for f in value.split() if _FLAG_PATTERN.match(f)}
    return model or platform.processor() or platform.machine() or "unknown", tuple(sorted(flags))


def _gpu() -> tuple[str | None, str | None]:
    """(GPU name, driver version) of the NVIDIA GPUs here, or (None, None) when there is none.

    Several GPUs read "N x name". nvidia-smi first (ships with the driver), then NVML.
    """
    names, driver = _gpu_from_smi()
    if not names:
        names, driver = _gpu_from_nvml()
    if not names:
        return None, None
    if len(set(names)) > 1:
        return " + ".join(names), driver
    return (names[0] if len(names) == 1 else f"{len(names)} x {names[0]}"), driver


def _gpu_from_smi() -> tuple[list[str], str | None]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return [], None
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT_S, check=True)
    except (OSError, subprocess.SubprocessError):
        return [], None
    rows = [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line.strip()]
    rows = [r for r in rows if len(r) == 2]
    return [r[0] for r in rows], (rows[0][1] if rows else None)


def _gpu_from_nvml() -> tuple[list[str], str | None]:
    try:
        import pynvml  # nvidia-ml-py: a thin ctypes binding, not a heavy runtime
    except ImportError:
        return [], None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded: no NVIDIA GPU here
        return [], None
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        names = [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                 for i in range(pynvml.nvmlDeviceGetCount())]
        as_str = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        return as_str, driver.decode() if isinstance(driver, bytes) else str(driver)
    except Exception:
        return [], None
    finally:
        pynvml.nvmlShutdown()


def _packages() -> dict[str, str]:
    """Installed versions of the runtimes that matter, read from metadata (never imported)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _git_sha() -> str | None:
    """The commit of the quantscope checkout this code runs from.

    "<sha>-dirty" when src/ has edits or new files.

    None when the package is not a git checkout (an installed wheel), or git is missing. The
    top-level check keeps a wheel installed inside some other repository's venv from reporting
    that repository's commit.
    """
    pkg_dir = Path(quantscope.__file__).resolve().parent
    git = shutil.which("git")
    if not git:
        return None

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run([git, "-C", str(pkg_dir), *args], capture_output=True, text=True,
                                 timeout=_SUBPROCESS_TIMEOUT_S, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    top = run("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() / "src" / "quantscope" != pkg_dir:
        return None
    sha = run("rev-parse", "HEAD")
    if not sha:
        return None
    dirty = run("status", "--porcelain", "--", ":/src")
    return f"{sha}-dirty" if dirty else sha


def _machine_id(cpu_model: str, cores_logical: int, ram_bytes: int, gpu: str | None) -> str:
    """Short hash of what makes two machines' speed numbers comparable.

    RAM is rounded to whole GiB: the kernel's MemTotal moves by a few MiB between boots.
    """
    blob = f"{cpu_model}|{cores_logical}|{round(ram_bytes / GiB)}|{gpu or ''}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@functools.cache
def fingerprint() -> EnvFingerprint:
    """This machine's EnvFingerprint, computed once per process.

    >>> fingerprint() is fingerprint()
    True
    """
    cpu_model, flags = _cpuinfo()
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    ram = psutil.virtual_memory().total
    gpu, driver = _gpu()
    return EnvFingerprint(
        machine_id=_machine_id(cpu_model, logical, ram, gpu),
        cpu_model=cpu_model,
        cpu_flags=flags,
        cores_physical=physical,
        cores_logical=logical,
        ram_bytes=ram,
        gpu=gpu,
        gpu_driver=driver,
        os=platform.platform(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        packages=_packages(),
        quantscope_version=quantscope.__version__,
        git_sha=_git_sha(),
    )


def physical_cores() -> int:
    """Physical core count: llama-bench's default thread count (common_cpu_get_num_math)."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1
