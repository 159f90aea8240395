"""One `quantscope search`: the problem, the cost table, the quality proxy, both searches, then the
policies written, measured and compared with the uniform formats of nearby size.

Everything heavy happens here so the command only parses and prints. What is measured and what is
predicted stay apart in the report: `measured` holds file sizes and decode times taken from the
written GGUFs (llama.cpp), `predicted_s` the cost table's figure (projected for catalog hardware).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantscope.errors import UserError
from quantscope.methods.calibration import CalibrationSpec
from quantscope.methods.haq.cost import CostTable
from quantscope.methods.haq.ddpg import DDPGConfig
from quantscope.methods.haq.search import (
    Budget,
    Found,
    describe_range,
    fixed_bytes,
    make_problem,
    policy_bytes,
    search_ddpg,
    search_ilp,
)
from quantscope.methods.haq.space import LLAMACPP_FORMATS, check_formats, layers_from_shape
from quantscope.spec import ModelSpec

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class SearchRequest:
    model: ModelSpec
    backend: str
    budget: Budget
    hardware: str = "local"
    methods: tuple[str, ...] = ("ddpg", "ilp")
    formats: tuple[str, ...] | None = None
    episodes: int = 120
    warmup: int = 20
    embed: str = "q8_0"
    export: Path | None = None
    seed: int = 0
    calib_samples: int = 2
    calib_seq_len: int = 128
    time_tokens: int = 64
    time_reps: int = 5
    threads: int | None = None
    refresh_table: bool = False
    measure: bool = True


@dataclass
class SearchReport:
    request: SearchRequest
    layers: list[Any]
    formats: tuple[str, ...]
    budget_value: float
    budget_range: tuple[float, float]
    resource: str
    table: CostTable | None
    found: list[Found]
    uniform: list[dict[str, Any]]
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> size, step times
    exported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)


def _check(req: SearchRequest) -> tuple[str, ...]:
    from quantscope.methods.haq.export import check_writable

    formats = check_formats(req.backend, req.formats)
    for m in req.methods:
        if m not in ("ddpg", "ilp"):
            raise UserError(f"--method {m!r} is not ddpg or ilp")
    if req.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {req.episodes}")
    if req.backend == "llamacpp" and req.embed not in LLAMACPP_FORMATS:
        raise UserError(f"--embed {req.embed!r}: the embedding type is one of {', '.join(LLAMACPP_FORMATS)}")
    if req.export is not None:
        check_writable(req.export)
    return formats


def cost_table(req: SearchRequest, shape: Any, layers: list[Any], formats: tuple[str, ...], artifact: Any,
               progress: Progress) -> CostTable:
    """Measured here (local) or projected (a catalog id) — never one posing as the other."""
    if req.hardware != "local":
        from quantscope.hardware.calibrate import build_calibration
        from quantscope.hardware.catalog import get_hardware
        from quantscope.methods.haq.cost import projected_table

        hw = get_hardware(req.hardware)
        if req.backend != "llamacpp":
            raise UserError("projected cost tables are made for llama.cpp formats; use --backend llamacpp "
                            "with --hardware " + req.hardware)
        return projected_table(shape, layers, formats, hw, build_calibration(None))
    from quantscope.env import fingerprint

    machine = fingerprint().machine_id
    if req.backend == "torchao":
        from quantscope.methods.haq.measure_torchao import measure_torchao_table

        return measure_torchao_table(layers, formats, machine, progress=lambda s: progress(s, 0, 0))
    from quantscope.backends.llamacpp.convert import ensure_gguf
    from quantscope.methods.haq.measure import measure_llamacpp_table
    from quantscope.models.materialize import source_digest

    src, _, _ = ensure_gguf(artifact, req.seed, "f32")
    return measure_llamacpp_table(src, layers, formats, machine_id=machine,
                                  model_digest=source_digest(artifact, req.seed), embed=req.embed,
                                  tokens=req.time_tokens, reps=req.time_reps, threads=req.threads,
                                  refresh=req.refresh_table, progress=lambda s: progress(s, 0, 0))


def _sensitivity(proxy: Any, formats: tuple[str, ...], key: dict[str, Any], progress: Progress) -> np.ndarray:
    """The per-layer sensitivity table, cached by model, formats and calibration tokens (it is the
    slow part of the ILP: one forward per layer and format)."""
    from quantscope.paths import cache_root, write_text

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_root("haq-sensitivity") / f"{digest}.json"
    if path.is_file():
        return np.array(json.loads(path.read_text())["kld"])
    sens = proxy.sensitivity(formats, lambda i, n: progress("sensitivity", i, n))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps({"key": key, "kld": sens.tolist()}))
    return sens


def run_search(req: SearchRequest, progress: Progress = lambda _p, _d, _t: None) -> SearchReport:
    from quantscope.methods.haq.proxy import KLDProxy
    from quantscope.models import resolve
    from quantscope.models.materialize import source_digest
    from quantscope.models.shape import shape_for_spec

    formats = _check(req)
    shape = shape_for_spec(req.model)
    layers = layers_from_shape(shape, req.backend)
    artifact = resolve(req.model)
    embed = req.embed if req.backend == "llamacpp" else "none"
    need_table = req.budget.resource == "latency" or req.hardware != "local"
    table = cost_table(req, shape, layers, formats, artifact, progress) if need_table else None
    problem = make_problem(req.backend, shape, layers, formats, req.budget, table, embed)
    fixed = fixed_bytes(req.backend, shape, embed)
    progress("reference logits on calibration text", 0, 0)
    proxy = KLDProxy(artifact, req.seed, layers, req.backend, CalibrationSpec(req.calib_samples, req.calib_seq_len))
    report = SearchReport(req, layers, formats, problem.budget, describe_range(problem), problem.resource, table,
                          [], [], calibration=proxy.calibration_info)
    for method in req.methods:
        if method == "ilp":
            key = {"model": source_digest(artifact, req.seed), "backend": req.backend, "formats": formats,
                   "tokens": proxy.calibration_info.get("tokens_sha256"), "v": 1}
            found = search_ilp(problem, _sensitivity(proxy, formats, key, progress))
            found.proxy_kld = proxy.kld(found.policy)
        else:
            found = search_ddpg(problem, proxy.kld, req.episodes, DDPGConfig(warmup=req.warmup, seed=req.seed or 234),
                                lambda e, n, _r: progress("ddpg episodes", e, n))
        found.weight_bytes = policy_bytes(req.backend, layers, found.policy, fixed)
        report.found.append(found)
    for fmt in formats:
        policy = [fmt] * len(layers)
        report.uniform.append({"format": fmt, "bytes": policy_bytes(req.backend, layers, policy, fixed),
                               "predicted_s": table.policy_s(layers, policy) if table else None,
                               "proxy_kld": proxy.kld(policy)})
    if req.backend == "torchao":
        report.notes.append("torchao proxy: int8-dynamic's activation rounding is not simulated")
    _write_and_measure(req, report, artifact, embed, progress)
    return report


def _write_and_measure(req: SearchRequest, report: SearchReport, artifact: Any, embed: str,
                       progress: Progress) -> None:
    from quantscope.methods.haq.export import policy_quant, policy_toml

    best = min(report.found, key=lambda f: f.proxy_kld if f.proxy_kld is not None else np.inf)
    names = [lay.name for lay in report.layers]
    if req.backend == "torchao":
        if req.export is not None:
            quant = policy_quant(dict(zip(names, best.policy, strict=True)), "none")
            Path(req.export).write_text(policy_toml(quant, f"quantscope search ({best.method}), torchao"))
            report.exported.append(str(req.export))
        report.notes.append("torchao policies are timed by `quantscope run --backend torchao --policy FILE`")
        return
    from quantscope.backends.llamacpp.convert import ensure_gguf
    from quantscope.methods.haq.export import Quantized, write_policy_gguf
    from quantscope.methods.haq.measure import time_files

    src, _, _ = ensure_gguf(artifact, req.seed, "f32")
    cache = Quantized()
    with tempfile.TemporaryDirectory(prefix="quantscope-search-") as tmp:
        files: dict[str, Path] = {}
        for found in report.found:
            exported = req.export is not None and found is best
            path = Path(req.export) if exported else Path(tmp) / f"{found.method}.gguf"
            progress(f"writing the {found.method} policy's GGUF", 0, 0)
            write_policy_gguf(src, dict(zip(names, found.policy, strict=True)), embed, path, cache)
            files[found.method] = path
            if exported:
                quant = policy_quant(dict(zip(names, found.policy, strict=True)), embed)
                toml = Path(req.export).with_suffix(".toml")
                toml.write_text(policy_toml(quant, f"quantscope search ({found.method}); run it with "
                                                   f"quantscope run --backend llamacpp --policy {toml.name}"))
                report.exported += [str(path), str(toml)]
        if req.measure:
            for u in report.uniform:
                path = Path(tmp) / f"uniform-{u['format']}.gguf"
                write_policy_gguf(src, {}, u["format"], path, cache)
                files[f"uniform {u['format']}"] = path
            progress("timing the written files through llama.cpp", 0, 0)
            timed = time_files([str(p) for p in files.values()], req.time_tokens, req.time_reps, req.threads)
            for label, t in zip(files, timed, strict=True):
                report.measured[label] = {"file_bytes": t["size"], "step_s": t["step_s"],
                                          "median_step_s": statistics.median(t["step_s"])}
