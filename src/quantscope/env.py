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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from quantscope.present.units import GiB
from quantscope.result import EnvFingerprint
from quantscope.version import __version__

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


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says about the first CPU: names, x86 family/model/stepping, relevant flags."""

    model_name: str
    flags: tuple[str, ...]
    vendor: str | None = None
    family: int | None = None
    model_number: int | None = None
    stepping: int | None = None
    microcode: str | None = None


def _int_or_none(value: str) -> int | None:
    for base in (10, 16):  # x86 gives decimal; Arm's "CPU part" gives 0x..
        try:
            return int(value, base)
        except ValueError:
            continue
    return None


def _cpuinfo(text: str | None = None) -> CpuInfo:
    """The first CPU's block of /proc/cpuinfo (Linux); `text` lets tests pass another machine's file.

    x86 names the fields vendor_id / cpu family / model / stepping / microcode; Arm gives
    "CPU implementer" / "CPU architecture" / "CPU part" / "CPU revision", read into the same slots.
    """
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            text = ""
    first: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key not in first:  # the first processor's block decides (all cores alike here)
            first[key] = value.strip()
    flags = tuple(sorted({f for f in (first.get("flags") or first.get("features") or "").split()
                          if _FLAG_PATTERN.match(f)}))
    name = first.get("model name") or first.get("hardware") or first.get("cpu model") or ""

    def number(*keys: str) -> int | None:
        return next((_int_or_none(first[k]) for k in keys if k in first), None)

    return CpuInfo(
        model_name=name or platform.processor() or platform.machine() or "unknown",
        flags=flags,
        vendor=first.get("vendor_id") or first.get("cpu implementer"),
        family=number("cpu family", "cpu architecture"),
        model_number=number("model", "cpu part"),
        stepping=number("stepping", "cpu revision"),
        microcode=first.get("microcode"),
    )


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
    pkg_dir = Path(__file__).resolve().parent  # env.py sits at the package's root
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


# Machine identity, scheme 2 (issue 16). machine_id decides which stored rows count as "this machine"
# (a resumed sweep reuses only those) and which rows may be compared side by side. It hashes what
# decides which kernels run and how fast:
#   CPU vendor, family, model number, stepping (x86; Arm's implementer/architecture/part/revision),
#   the CPU's model name, the kernel-relevant feature flags (_FLAG_PATTERN: AVX2 vs AVX-512/VNNI/BF16/
#   AMX pick different oneDNN/ggml kernels), physical and logical core counts, RAM in whole GiB,
#   the GPU(s) and the NVIDIA driver's major version.
# Left out, on purpose: microcode (an OS or BIOS update changes it on the same silicon; it is stored
# so a comparison can show it), the kernel, packages (resume checks software separately), hostname.
# Scheme 1 hashed only model name, logical cores, RAM and GPU: an AVX2 and an AVX-512 EPYC, both
# "AMD EPYC", shared one id. The "v2|" prefix keeps every scheme-2 id apart from every scheme-1 id.
#
# Stores written before scheme 2: the store migration (store/migrations.py, step 2) recomputes each
# row's id from its stored fingerprint with machine_identity. Those fingerprints lack vendor/family/
# model/stepping, so an old row gets a different id than a row measured today on the same machine:
# old rows stay readable and comparable among themselves (same stored hardware -> same id), rows of
# different stored flags are told apart, and none is ever reused by a new sweep or compared with new
# rows. Nothing is deleted.
ID_SCHEME = 2


def machine_identity(env: Mapping[str, Any]) -> str:
    """12-hex-digit id of the hardware described by a fingerprint (EnvFingerprint or its stored dict).

    RAM is rounded to whole GiB: the kernel's MemTotal moves by a few MiB between boots.

    >>> a = {"cpu_model": "AMD EPYC", "cpu_flags": ["avx2"], "cores_physical": 2, "cores_logical": 2,
    ...      "ram_bytes": 8 << 30, "gpu": None, "gpu_driver": None}
    >>> machine_identity(a) == machine_identity({**a, "cpu_flags": ["avx2", "avx512f"]})
    False
    """
    d = asdict(env) if isinstance(env, EnvFingerprint) else env
    driver = d.get("gpu_driver")
    parts = [
        f"v{ID_SCHEME}", d.get("cpu_vendor") or "", d.get("cpu_family"), d.get("cpu_model_number"),
        d.get("cpu_stepping"), d.get("cpu_model") or "", ",".join(sorted(d.get("cpu_flags") or ())),
        d.get("cores_physical"), d.get("cores_logical"), round((d.get("ram_bytes") or 0) / GiB),
        d.get("gpu") or "", str(driver).split(".")[0] if driver else "",
    ]
    blob = "|".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@functools.cache
def _hardware() -> dict[str, Any]:
    """What machine_identity hashes, read once per process: CPU, cores, RAM, GPU and driver."""
    cpu = _cpuinfo()
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    gpu, driver = _gpu()
    return {"cpu_vendor": cpu.vendor, "cpu_family": cpu.family, "cpu_model_number": cpu.model_number,
            "cpu_stepping": cpu.stepping, "cpu_model": cpu.model_name, "cpu_flags": cpu.flags,
            "microcode": cpu.microcode, "cores_physical": psutil.cpu_count(logical=False) or logical,
            "cores_logical": logical, "ram_bytes": psutil.virtual_memory().total, "gpu": gpu, "gpu_driver": driver}


def machine_id() -> str:
    """This machine's id: what machine_identity hashes, read without the package versions and git sha
    that a whole fingerprint also reads (~60 ms of importlib.metadata; `recommend` and `compare` answer
    in a second, issue 19). The same id as fingerprint().machine_id.
    """
    return machine_identity(_hardware())


@functools.cache
def fingerprint() -> EnvFingerprint:
    """This machine's EnvFingerprint, computed once per process.

    >>> fingerprint() is fingerprint()
    True
    """
    hw = _hardware()
    fp = EnvFingerprint(
        machine_id="",
        os=platform.platform(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        packages=_packages(),
        quantscope_version=__version__,
        git_sha=_git_sha(),
        **hw,
    )
    return replace(fp, machine_id=machine_identity(fp))


def physical_cores() -> int:
    """Physical core count: llama-bench's default thread count (common_cpu_get_num_math)."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1
