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


AVX512_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0xa10113e
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 hypervisor

processor\t: 1
vendor_id\t: AuthenticAMD
"""
AVX2_EPYC = AVX512_EPYC.replace("model\t\t: 17", "model\t\t: 1").replace(" avx512f avx512_vnni avx512_bf16", "")


def hw(**over):
    """A stored fingerprint's hardware fields (what machine_identity reads)."""
    base = {"cpu_vendor": "AuthenticAMD", "cpu_family": 25, "cpu_model_number": 1, "cpu_stepping": 1,
            "cpu_model": "AMD EPYC", "cpu_flags": ["avx", "avx2"], "cores_physical": 2, "cores_logical": 2,
            "ram_bytes": 24 * env.GiB, "gpu": None, "gpu_driver": None, "microcode": "0x1000065"}
    return {**base, **over}


def test_cpuinfo_reads_vendor_family_model_stepping_and_the_relevant_flags():
    cpu = env._cpuinfo(AVX512_EPYC)
    assert (cpu.vendor, cpu.family, cpu.model_number, cpu.stepping, cpu.microcode) == (
        "AuthenticAMD", 25, 17, 1, "0xa10113e")
    assert cpu.flags == ("avx", "avx2", "avx512_bf16", "avx512_vnni", "avx512f", "fma", "sse4_2")


def test_two_machines_that_differ_only_in_cpu_flags_get_different_ids():
    """The issue's case: both read "AMD EPYC", same cores and RAM; one has AVX-512 with VNNI and BF16."""
    avx512, avx2 = env._cpuinfo(AVX512_EPYC), env._cpuinfo(AVX2_EPYC)
    assert avx512.model_name == avx2.model_name
    assert env.machine_identity(hw(cpu_flags=avx512.flags)) != env.machine_identity(hw(cpu_flags=avx2.flags))


@pytest.mark.parametrize("field, value", [
    ("cpu_vendor", "GenuineIntel"), ("cpu_family", 6), ("cpu_model_number", 17), ("cpu_stepping", 2),
    ("cores_physical", 1), ("cores_logical", 4), ("ram_bytes", 48 * env.GiB), ("gpu", "NVIDIA H100"),
])
def test_every_hardware_field_enters_the_id(field, value):
    assert env.machine_identity(hw(**{field: value})) != env.machine_identity(hw())


def test_the_id_ignores_ram_jitter_driver_minor_microcode_and_flag_order():
    a = env.machine_identity(hw(gpu="NVIDIA H200", gpu_driver="550.54.15"))
    assert a == env.machine_identity(hw(gpu="NVIDIA H200", gpu_driver="550.90.07", microcode="0x1000066",
                                        ram_bytes=24 * env.GiB + 5 * (1 << 20), cpu_flags=["avx2", "avx"]))
    assert a != env.machine_identity(hw(gpu="NVIDIA H200", gpu_driver="560.28.03"))  # driver major


def test_this_machines_id_is_its_fingerprints_identity_and_stable():
    fp = fingerprint()
    assert fp.machine_id == env.machine_identity(fp) == env.machine_identity(dataclasses.asdict(fp))
    fingerprint.cache_clear()
    env._hardware.cache_clear()
    try:
        assert fingerprint().machine_id == fp.machine_id  # a fresh probe of the same machine
        assert env.machine_id() == fp.machine_id  # the id alone, without the package versions
    finally:
        fingerprint.cache_clear()


def test_a_fingerprint_stored_before_identity_v2_gets_an_id_apart_from_todays():
    """Old rows lack vendor/family/model/stepping: their recomputed id never equals a new row's."""
    old = {k: v for k, v in hw().items() if k not in ("cpu_vendor", "cpu_family", "cpu_model_number",
                                                      "cpu_stepping", "microcode")}
    assert env.machine_identity(old) != env.machine_identity(hw())
    assert env.machine_identity(old) == env.machine_identity(dict(old))  # stable for the same stored data


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
