"""Results built by hand (no model, no worker) for the sweep, compare, recommend, report and API tests.

Samples are drawn from seeded generators, so every test sees the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quantscope.result import EnvFingerprint, Measurement, Result
from quantscope.spec import ModelSpec, QualitySpec, QuantSpec, RunSpec, WorkloadSpec

MiB = 1 << 20
WORKLOAD = WorkloadSpec(max_reps=5, max_seconds=10.0)
QUALITY = QualitySpec(max_tokens=4096)


def make_env(machine_id: str = "test-machine", packages: dict[str, str] | None = None) -> EnvFingerprint:
    return EnvFingerprint(
        machine_id=machine_id, cpu_model="Test CPU", cpu_flags=("avx2",), cores_physical=2, cores_logical=2,
        ram_bytes=24 << 30, gpu=None, gpu_driver=None, os="Linux-test", python="3.11.7",
        packages=packages or {"torch": "2.13.0"}, quantscope_version="0.1.0", git_sha="abc123",
    )


def make_spec(backend: str = "torch", dtype: str = "fp32", quant: str = "none", options=(), *,
              model_ref: str = "SmolLM2-135M-Instruct", model_source: str = "bundled",
              workload: WorkloadSpec = WORKLOAD, quality: QualitySpec = QUALITY) -> RunSpec:
    return RunSpec(model=ModelSpec(model_source, model_ref), quant=QuantSpec(dtype=dtype, method=quant),
                   backend=backend, workload=workload, quality=quality, options=tuple(options))


def make_result(spec: RunSpec | None = None, *, status: str = "ok", decode: float = 20.0, decode_sd: float = 0.5,
                reps: int = 5, rss_mib: float = 900.0, weights_mib: float = 500.0, kld: float | None = None,
                top1: float | None = None, ppl_nll: float | None = 2.5, machine_id: str = "test-machine",
                seed: int = 0, reason: str | None = None, env: EnvFingerprint | None = None,
                info: dict | None = None) -> Result:
    """An ok Result with raw samples (decode/prefill per rep, per-token latencies, memory, quality),
    or a row of another status with its reason. kld=None and ppl_nll set: the reference's quality."""
    spec = spec or make_spec()
    env = env or make_env(machine_id)
    if status != "ok":
        return Result(spec=spec, env=env, status=status, reason=reason or f"{status} in a test",
                      started_at="2026-11-24T10:00:00+00:00", duration_s=1.0, info=info or {})
    rng = np.random.default_rng(seed)
    d = rng.normal(decode, decode_sd, reps)
    m = [
        Measurement("decode_tps", "tok/s", d, True, {"stop_rule": "ci"}),
        Measurement("prefill_tps", "tok/s", rng.normal(decode * 20, decode_sd * 20, reps), True),
        Measurement("ttft_s", "s", rng.normal(0.05, 0.002, reps), False),
        Measurement("token_latency_s", "s", np.abs(rng.normal(1 / decode, 0.1 / decode, reps * 16)), False),
        Measurement("peak_rss_bytes", "bytes", [rss_mib * MiB], False),
        Measurement("weight_bytes", "bytes", [weights_mib * MiB], False),
        Measurement("achieved_bandwidth_Bps", "B/s", d * weights_mib * MiB, True,
                    {"machine_read_Bps": 30e9, "threads": 2}),
        Measurement("bandwidth_fraction", "ratio", d * weights_mib * MiB / 30e9, True,
                    {"machine_read_Bps": 30e9, "threads": 2}),
    ]
    if ppl_nll is not None and spec.quality.enabled:
        meta = {"recipe": "llama", "ctx": 512, "tokens_scored": 256, "windows": 1, "bos": "none",
                "text_source": "pydoc", "text_sha256": "f" * 64}
        m.append(Measurement("nll", "nat", rng.normal(ppl_nll, 1.0, 256), False, meta))
        if kld is not None:
            m.append(Measurement("kld", "nat", rng.exponential(kld, 256), False, {"reference": {}}))
            m.append(Measurement("same_top1", "ratio", (rng.random(256) < (top1 if top1 is not None else 1.0)),
                                 True))
    return Result(spec=spec, env=env, status="ok", measurements=tuple(m),
                  started_at="2026-11-24T10:00:00+00:00", duration_s=12.0,
                  info={"stop_rule": "ci", "reps": reps, "energy": "RAPL not exposed (test)", **(info or {})})


def sweep_fixture() -> list[Result]:
    """A small sweep: the FP32 reference, BF16, two llama.cpp types and an unsupported float8 row.

    Speed rises and quality falls with fewer bits; q4_0 is fastest and smallest but its KLD is 0.08 nat.
    """
    return [
        make_result(make_spec(), decode=20.0, rss_mib=900, weights_mib=513, seed=1),
        make_result(make_spec(dtype="bf16"), decode=24.0, rss_mib=620, weights_mib=257, kld=0.002, top1=0.99,
                    seed=2),
        make_result(make_spec("llamacpp", quant="q8_0"), decode=45.0, rss_mib=300, weights_mib=137, kld=0.004,
                    top1=0.97, seed=3),
        make_result(make_spec("llamacpp", quant="q4_0"), decode=60.0, rss_mib=200, weights_mib=80, kld=0.08,
                    top1=0.85, seed=4),
        make_result(make_spec("torchao", "bf16", "float8-dynamic"), status="unsupported",
                    reason="torchao 0.18.0: Float8 dynamic quantization requires CUDA compute capability >= 8.9"),
    ]


def store_with(path: Path, results: list[Result]) -> list[int]:
    from quantscope.store import Store

    with Store(path) as st:
        return [st.add(r) for r in results]
