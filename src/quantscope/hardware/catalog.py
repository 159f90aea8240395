"""The hardware catalog (catalog.toml, one cited source per figure) and `local`, this machine measured.

Figures are kept in the datasheet's units in the TOML and converted once here to SI (bytes, bytes/s,
FLOP/s). `local` comes from microbenchmarks cached per machine: read bandwidth (bandwidth.py) and
GEMM throughput per dtype (gemm.py); nothing about it is typed in.

>>> hw = get_hardware("a100-80gb-sxm")
>>> hw.bandwidth_Bps, hw.peak_flops["bf16"]
(2039000000000.0, 312000000000000.0)
>>> get_hardware("a100-80gb").id  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
quantscope.errors.UserError: unknown hardware id 'a100-80gb'. Did you mean 'a100-80gb-pcie', 'a100-80gb-sxm', ...
"""

from __future__ import annotations

import difflib
import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from quantscope.errors import FormatError, UserError

GB = 1e9  # datasheets' GB and GB/s are decimal
TERA = 1e12
LOCAL = "local"
# Compute types a projection may ask for, narrowest last.
COMPUTE_TYPES = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8", "int4", "fp4")
# Not a datasheet figure: the CUDA context, cuBLAS workspace and allocator slack every GPU process
# holds before the model (torch on CUDA: ~0.3-0.5 GiB of context; transformers/vLLM docs advise
# leaving ~1 GB headroom). Stated as an assumption in every projection that uses it.
GPU_RESERVE_BYTES = 1 << 30
LOCAL_RESERVE_BYTES = 512 << 20  # the Python interpreter plus torch's libraries resident in the worker


@dataclass(frozen=True)
class Hardware:
    """One accelerator (or this machine) in SI units. `peak_flops` holds dense figures only."""

    id: str
    name: str
    memory_bytes: float
    bandwidth_Bps: float
    peak_flops: dict[str, float]
    formats: tuple[str, ...]
    tdp_w: float | None = None
    notes: dict[str, str] = field(default_factory=dict)
    source: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    reserve_bytes: float = GPU_RESERVE_BYTES
    kind: str = "gpu"  # gpu | cpu

    def unsupported(self, compute: str) -> str | None:
        """Why this hardware cannot execute `compute`, or None when it can.

        >>> get_hardware("t4").unsupported("bf16")
        't4 cannot run bf16: Turing (sm_75) tensor cores have no bf16'
        """
        if self.kind == "cpu" or compute in self.formats:
            return None
        why = self.notes.get(compute, f"{compute} is not among its formats ({', '.join(self.formats)})")
        return f"{self.id} cannot run {compute}: {why}"

    def peak(self, compute: str) -> float | None:
        """Dense peak FLOP/s for `compute`; fp32 work on a GPU without an fp32 figure uses tf32's."""
        return self.peak_flops.get(compute)


def _entry(hw_id: str, raw: dict[str, Any]) -> Hardware:
    where = f"catalog entry {hw_id!r}"
    try:
        peaks = {k: float(v) * TERA for k, v in raw["peak_tflops"].items()}
        bad = sorted(set(peaks) - set(COMPUTE_TYPES)) + sorted(set(raw["formats"]) - set(COMPUTE_TYPES))
        if bad:
            raise FormatError(f"{where}: unknown compute type(s) {', '.join(bad)}")
        return Hardware(
            id=hw_id, name=raw["name"], memory_bytes=float(raw["memory_gb"]) * GB,
            bandwidth_Bps=float(raw["bandwidth_gbps"]) * GB, peak_flops=peaks, formats=tuple(raw["formats"]),
            tdp_w=raw.get("tdp_w"), notes=dict(raw.get("notes", {})), source=raw["source"],
            sources=dict(raw.get("sources", {})),
        )
    except KeyError as e:
        raise FormatError(f"{where} lacks the field {e.args[0]!r}") from None


@functools.cache
def catalog() -> dict[str, Hardware]:
    """Every catalog entry by id (the TOML is read once)."""
    text = resources.files("quantscope.hardware").joinpath("catalog.toml").read_text()
    data = tomllib.loads(text)
    return {hw_id: _entry(hw_id, raw) for hw_id, raw in data["hardware"].items()}


def hardware_ids() -> list[str]:
    return [*catalog(), LOCAL]


def unknown_message(hw_id: str) -> str:
    ids = hardware_ids()
    near = [i for i in ids if hw_id and i.startswith(hw_id)]  # "h100" -> h100-pcie, h100-sxm
    near += [i for i in difflib.get_close_matches(hw_id, ids, n=3, cutoff=0.5) if i not in near]
    hint = f" Did you mean {', '.join(repr(n) for n in near[:3])}?" if near else ""
    return f"unknown hardware id {hw_id!r}.{hint} Known: {', '.join(ids)}"


def get_hardware(hw_id: str, threads: int | None = None) -> Hardware:
    """A catalog entry by id, or `local` (this machine, measured); UserError naming the near ids."""
    hw_id = hw_id.strip().lower()
    if hw_id == LOCAL:
        return local_hardware(threads)
    found = catalog().get(hw_id)
    if found is None:
        raise UserError(unknown_message(hw_id))
    return found


def local_hardware(threads: int | None = None, measure: bool = True) -> Hardware:
    """This machine from its cached microbenchmarks (measured on first use: a few seconds each).

    Read bandwidth is the figure decode's weight streaming resembles (bandwidth.py); peaks come from
    the GEMM benchmark (gemm.py). Memory is the machine's RAM (psutil), not a datasheet.
    """
    import psutil

    from quantscope.env import fingerprint, physical_cores
    from quantscope.hardware.bandwidth import machine_bandwidth
    from quantscope.hardware.gemm import machine_gemm

    fp = fingerprint()
    n = threads or physical_cores()
    bw = machine_bandwidth(fp.machine_id, n)
    gemm = machine_gemm(fp.machine_id, n) if measure else {"flops": {}}
    return Hardware(
        id=LOCAL, name=f"this machine: {fp.cpu_model}, {n} threads", memory_bytes=float(psutil.virtual_memory().total),
        bandwidth_Bps=float(bw["read_Bps"]), peak_flops=dict(gemm["flops"]), formats=tuple(gemm["flops"]),
        source=f"measured: {bw['method']}; {gemm.get('method', 'no GEMM measurement')}",
        sources={"bandwidth": f"read_Bps measured {bw.get('measured_at', 'now')}",
                 "peaks": f"GEMM measured {gemm.get('measured_at', 'now')}"},
        reserve_bytes=LOCAL_RESERVE_BYTES, kind="cpu",
    )


# nvidia-smi names -> catalog ids, most specific first ("NVIDIA A100-SXM4-80GB", "NVIDIA H100 PCIe" ...).
_GPU_NAMES = (
    ("H200", "h200"), ("B200", "b200"), ("H100 PCIE", "h100-pcie"), ("H100", "h100-sxm"),
    ("A100-SXM4-80GB", "a100-80gb-sxm"), ("A100 80GB PCIE", "a100-80gb-pcie"), ("A100-PCIE-80GB", "a100-80gb-pcie"),
    ("A100", "a100-40gb"), ("A10", "a10"), ("L4", "l4"), ("T4", "t4"), ("V100", "v100"),
)


def catalog_id_for_gpu(name: str | None) -> str | None:
    """The catalog id of a GPU as nvidia-smi names it (one GPU), or None when it is not in the catalog.

    >>> catalog_id_for_gpu("NVIDIA H100 80GB HBM3"), catalog_id_for_gpu("NVIDIA A100-SXM4-80GB")
    ('h100-sxm', 'a100-80gb-sxm')

    The NVL (PCIe, NVLink-bridged) parts share the SXM names' first token but not their figures (the
    H200 NVL's TDP is 600 W, its peaks lower): none of them is in the catalog, so none is mapped.

    >>> catalog_id_for_gpu("NVIDIA H200 NVL"), catalog_id_for_gpu("NVIDIA H100 NVL"), catalog_id_for_gpu("NVIDIA H200")
    (None, None, 'h200')
    """
    if not name or " + " in name or " x " in name:
        return None
    import re

    upper = name.upper()
    if re.search(r"(^|[^A-Z0-9])NVL([^A-Z0-9]|$)", upper):
        return None
    for needle, hw_id in _GPU_NAMES:  # whole tokens only: A10 is not A100, L4 is not L40S
        if re.search(rf"(^|[^A-Z0-9]){re.escape(needle)}([^A-Z0-9]|$)", upper):
            return hw_id
    return None
