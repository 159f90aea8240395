"""Numbered records for store tests (`indexed_result(i)`: distinct, checkable samples per i; no
environment probing, no model) and the bodies of the store tests' child processes."""

from __future__ import annotations

import sys

from quantscope.result import EnvFingerprint, Measurement, Result
from quantscope.spec import ModelSpec, QuantSpec, RunSpec


def make_env(machine_id: str = "test-machine") -> EnvFingerprint:
    return EnvFingerprint(
        machine_id=machine_id,
        cpu_model="Test CPU @ 2.0GHz",
        cpu_flags=("avx2", "avx512f"),
        cores_physical=2,
        cores_logical=2,
        ram_bytes=24 << 30,
        gpu=None,
        gpu_driver=None,
        os="Linux-test",
        python="3.11.7",
        packages={"torch": "2.13.0"},
        quantscope_version="0.1.0",
        git_sha=None,
    )


def samples_for(i: int, n: int) -> tuple[float, ...]:
    """Deterministic, distinct samples for result number i, so a reader can check every value."""
    return tuple(1.0 + i + k / 7.0 for k in range(n))


def indexed_result(
    i: int = 0,
    *,
    status: str = "ok",
    n_samples: int = 5,
    machine_id: str = "test-machine",
    model_ref: str = "SmolLM2-135M-Instruct",
    dtype: str = "fp32",
) -> Result:
    spec = RunSpec(model=ModelSpec("bundled", model_ref), quant=QuantSpec(dtype=dtype), seed=i)
    measurements: tuple[Measurement, ...] = ()
    if status == "ok":
        measurements = (
            Measurement("decode_tps", "tok/s", samples_for(i, n_samples), higher_is_better=True,
                        meta={"stop": "ci", "reps": n_samples}),
            Measurement("prefill_latency_s", "s", tuple(0.01 * s for s in samples_for(i, n_samples)),
                        higher_is_better=False),
            Measurement("peak_rss_bytes", "bytes", (123456789.0,), higher_is_better=None),
        )
    return Result(
        spec=spec,
        env=make_env(machine_id),
        status=status,
        measurements=measurements,
        reason=None if status == "ok" else f"{status} for test",
        started_at=f"2026-11-24T10:00:{i % 60:02d}+00:00",
        duration_s=1.5 + i,
        info={"index": i, "model_digest": "sha256:abc"},
    )


def add_many(path: str, count: int, first: int, start, out) -> None:
    """multiprocessing target: wait for the start signal, open the store (so processes also race to
    migrate a fresh file), add `count` results, and put ("ok", ids) or ("error", message) on `out`."""
    from quantscope.store import open_store

    start.wait(30)
    try:
        with open_store(path) as store:  # a file path or a postgresql:// URL
            ids = [store.add(indexed_result(first + k, n_samples=50)) for k in range(count)]
        out.put(("ok", ids))
    except Exception as e:  # reported to the parent, which fails the test with the message
        out.put(("error", f"{type(e).__name__}: {e}"))


def crash_child(path: str, n_samples: int) -> None:
    """Add results forever, printing "<run id> <index>" after each commit; the parent kills it with -9."""
    from quantscope.store import open_store

    with open_store(path) as store:
        i = 0
        while True:
            run_id = store.add(indexed_result(i, n_samples=n_samples))
            sys.stdout.write(f"{run_id} {i}\n")
            sys.stdout.flush()
            i += 1
