"""The environment fingerprint: sane fields, stable machine id, no heavy imports."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

import quantscope
from quantscope import env
from quantscope.env import fingerprint

pytestmark = pytest.mark.unit


def test_fields_are_sane_and_json_serialisable():
    fp = fingerprint()
    assert re.fullmatch(r"[0-9a-f]{12}", fp.machine_id)
    assert fp.cpu_model and fp.cpu_model != "unknown"
    assert 1 <= fp.cores_physical <= fp.cores_logical == psutil.cpu_count()
    assert fp.ram_bytes == psutil.virtual_memory().total
    assert fp.python.endswith(".".join(map(str, sys.version_info[:3])))
    assert fp.quantscope_version == quantscope.__version__
    assert fp.packages.get("numpy") == __import__("numpy").__version__
    assert (fp.gpu is None) == (fp.gpu_driver is None)
    json.dumps(dataclasses.asdict(fp))


def test_cpu_flags_are_a_relevant_subset_of_cpuinfo():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo")
    all_flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.split(":")[0].strip().lower() in ("flags", "features"):
            all_flags = set(line.split(":", 1)[1].split())
            break
    fp = fingerprint()
    assert set(fp.cpu_flags) <= all_flags
    assert list(fp.cpu_flags) == sorted(fp.cpu_flags)
    assert not {"fpu", "vme", "pae", "hypervisor"} & set(fp.cpu_flags)  # noise is dropped
    if "avx2" in all_flags:
        assert "avx2" in fp.cpu_flags


def test_cached_within_the_process():
    assert fingerprint() is fingerprint()


def test_machine_id_depends_on_hardware_only():
    a = env._machine_id("Xeon", 8, 32 * env.GiB, None)
    assert a == env._machine_id("Xeon", 8, 32 * env.GiB + 5 * (1 << 20), None)  # MemTotal jitter
    assert a != env._machine_id("Xeon", 16, 32 * env.GiB, None)
    assert a != env._machine_id("Xeon", 8, 32 * env.GiB, "NVIDIA H100")


def test_git_sha_is_this_checkout():
    fp = fingerprint()
    repo = Path(quantscope.__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        assert fp.git_sha is None
        return
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("git cannot read this checkout")
    assert fp.git_sha.removesuffix("-dirty") == head.stdout.strip()


def test_importing_and_fingerprinting_loads_no_heavy_runtime():
    code = ("import sys, quantscope.env; quantscope.env.fingerprint(); "
            "print(' '.join(m for m in ('torch', 'transformers', 'onnxruntime', 'llama_cpp', "
            "'bitsandbytes', 'torchao') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
