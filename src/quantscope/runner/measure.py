"""One run inside the worker process: load -> warm-up -> timed workload -> quality -> Result.

Called by runner/worker.py in a fresh process; never in the parent (model files are untrusted and
a crash or OOM must cost only the worker).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from typing import Any

from quantscope.backends import get_backend
from quantscope.backends.base import Unsupported
from quantscope.result import Measurement, Result
from quantscope.runner.prompt import prompt_ids
from quantscope.runner.timing import TimedRuns, timed_workload
from quantscope.spec import RunSpec


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def bandwidth_ratio(weight_bytes: int, decode_tps: float, batch: int, machine_Bps: float) -> tuple[float, float]:
    """Achieved weight-streaming bandwidth and its fraction of the machine's measured bandwidth.

    Each decode step reads every weight once for the whole batch (gpt-fast's "achieved bandwidth"):
    bytes/s = weight_bytes * steps/s, steps/s = decode_tps / batch.
    """
    achieved = weight_bytes * decode_tps / batch
    return achieved, achieved / machine_Bps


def speed_measurements(runs: TimedRuns, spec: RunSpec) -> list[Measurement]:
    wl = spec.workload
    rule = {"stop_rule": runs.stop_rule, "discarded_stalls": runs.discarded_stalls,
            "warmup_reps": runs.warmup_reps, "ci_target": wl.ci_target}
    out = [
        Measurement("decode_tps", "tok/s", runs.decode_tps(wl.batch), True, rule),
        Measurement("prefill_tps", "tok/s", runs.prefill_tps(wl.batch, wl.prompt_tokens), True),
        Measurement("ttft_s", "s", [r.prefill_s for r in runs.reps], False),
        Measurement("token_latency_s", "s", [s for r in runs.reps for s in r.step_s], False),
    ]
    others = [r.others_cores for r in runs.reps]
    if runs.reps and all(c is not None for c in others):
        out.append(Measurement("others_cpu_cores", "cores", others, False,
                               {k: v for k, v in runs.contention().items() if k != "measured"}))
    energies = [r.energy_j for r in runs.reps]
    if all(e is not None for e in energies):
        tokens = wl.batch * (wl.prompt_tokens + wl.gen_tokens)
        out.append(Measurement("energy_j_per_token", "J/tok", [e / tokens for e in energies], False,
                               {"tokens_per_rep": tokens, "counter": "rapl/nvml"}))
    return out


def memory_measurements(backend, file_bytes: int, peak_rss: int, weight_bytes: int) -> list[Measurement]:
    out = [
        Measurement("peak_rss_bytes", "bytes", [peak_rss], False, {"scope": "worker process VmHWM"}),
        Measurement("weight_bytes", "bytes", [weight_bytes], False),
    ]
    if file_bytes:
        out.append(Measurement("file_bytes", "bytes", [file_bytes], False))
    out += [Measurement(k, "bytes", [v], False) for k, v in backend.device_memory().items()]
    return out


def bandwidth_measurements(runs: TimedRuns, spec: RunSpec, weight_bytes: int, env, threads: int):
    if spec.device != "cpu":
        return [], {}
    from quantscope.hardware.bandwidth import machine_bandwidth

    bw = machine_bandwidth(env.machine_id, threads)
    machine = bw["read_Bps"]
    pairs = [bandwidth_ratio(weight_bytes, tps, spec.workload.batch, machine)
             for tps in runs.decode_tps(spec.workload.batch)]
    meta = {"baseline": "machine read-only bandwidth", "machine_read_Bps": machine, "threads": threads}
    return [
        Measurement("achieved_bandwidth_Bps", "B/s", [a for a, _ in pairs], True, meta),
        Measurement("bandwidth_fraction", "ratio", [f for _, f in pairs], True, meta),
    ], {"machine_bandwidth": bw}


@contextlib.contextmanager
def gpu_telemetry(spec: RunSpec):
    """NVML telemetry around the timed work of a CUDA run (None on CPU; the reason kept if unreadable)."""
    if spec.device != "cuda":
        yield None
        return
    from quantscope.metrics.gpu_telemetry import GpuTelemetry

    # torch's "cuda" is the first visible device; NVML ignores CUDA_VISIBLE_DEVICES and counts every GPU
    # (in PCI order, as CUDA does with CUDA_DEVICE_ORDER=PCI_BUS_ID), so map a numeric first entry.
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    with GpuTelemetry(device_index=int(first) if first.isdigit() else 0) as tel:
        yield tel


def execute(spec: RunSpec, reference_file: str | None = None) -> Result:
    """Measure `spec` in this process and return its Result (status ok or unsupported).

    Exceptions propagate: the worker turns them into failed / oom rows.
    """
    from quantscope.env import fingerprint
    from quantscope.metrics.contention import CpuSampler
    from quantscope.metrics.energy import EnergyMeter
    from quantscope.metrics.memory import PeakRSS
    from quantscope.models import resolve

    started, t0 = now_iso(), time.perf_counter()
    env = fingerprint()
    backend = get_backend(spec.backend)

    def done(status: str, measurements=(), reason=None, info=None) -> Result:
        return Result(spec=spec, env=env, status=status, measurements=tuple(measurements), reason=reason,
                      started_at=started, duration_s=time.perf_counter() - t0, info=info or {})

    reason = backend.supports(spec)
    if reason:
        return done("unsupported", reason=reason)
    artifact = resolve(spec.model)
    info: dict[str, Any] = {"model_digest": artifact.digest, "model_format": artifact.format,
                            "synthetic": artifact.synthetic}
    if artifact.revision:  # a hub model: the commit its revision resolved to (models/hub.py)
        info["model_revision"] = artifact.revision
    if artifact.format == "gguf":
        from quantscope.models.gguf import checked_gguf

        info["gguf"] = checked_gguf(artifact.path, artifact.digest)  # untrusted file: parsed here, in the worker
    meter = EnergyMeter()
    energy_reason = meter.available()
    info["energy"] = energy_reason or "measured"
    with PeakRSS() as rss:
        from quantscope import progress

        progress.report("load", f"loading {spec.model.label} with {spec.backend}")
        t_load = time.perf_counter()
        try:
            info.update(backend.load(spec, artifact))
        except Unsupported as e:
            return done("unsupported", reason=str(e), info=info)
        load_s = time.perf_counter() - t_load
        ids, info["prompt"] = prompt_ids(backend, spec.workload.prompt_tokens, spec.workload.batch, spec.seed)
        with gpu_telemetry(spec) as tel, PeakRSS(reset=False) as timed_rss:
            runs = timed_workload(backend, ids, spec.workload, energy=None if energy_reason else meter.read,
                                  cpu=CpuSampler())
    info.update(stop_rule=runs.stop_rule, reps=len(runs.reps), discarded_stalls=runs.discarded_stalls,
                contention=runs.contention())
    measurements = speed_measurements(runs, spec)
    if tel is not None:
        measurements += [Measurement(*row) for row in tel.measurements_data()]
        tokens = len(runs.reps) * spec.workload.batch * (spec.workload.prompt_tokens + spec.workload.gen_tokens)
        info["gpu_telemetry"] = tel.info(tokens)
    weight_bytes = backend.weight_bytes()
    # A converting backend loads another file than the source (an ONNX graph, a quantized GGUF): its size.
    file_bytes = info.get("file_bytes") or artifact.file_bytes
    measurements += memory_measurements(backend, file_bytes, rss.peak_bytes, weight_bytes)
    # The timed work alone: a bf16 load holds the fp32 checkpoint for a moment, so the peak above can
    # be far above what the model needs while it generates (issue 16).
    measurements.append(Measurement("timed_rss_bytes", "bytes", [timed_rss.peak_bytes], False,
                                    {"scope": "worker process, timed work only (sampled; VmHWM if it rose)"}))
    measurements.append(Measurement("load_s", "s", [load_s], False))
    bw, bw_info = bandwidth_measurements(runs, spec, weight_bytes, env, info.get("threads") or 1)
    measurements += bw
    info.update(bw_info)
    if spec.quality.enabled and not artifact.synthetic:
        from quantscope.runner.quality_step import quality_measurements

        progress.report("quality", "starting the quality pass")
        q, q_info = quality_measurements(backend, spec, artifact, reference_file, info.get("gguf"))
        measurements += q
        info.update(q_info)
    elif artifact.synthetic:
        info["quality"] = "not measured: synthetic random weights have no meaningful quality"
    if spec.tasks.names:  # lm-eval on the same loaded model, after the quality pass (issue 18)
        from quantscope.runner.task_step import task_measurements

        t, t_info = task_measurements(backend, spec, artifact)
        measurements += t
        info.update(t_info)
    backend.close()
    return done("ok", measurements, info=info)
