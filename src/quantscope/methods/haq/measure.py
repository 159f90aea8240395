"""Measured cost tables: decode time of GGUF files through llama.cpp itself, on this machine.

For each tensor shape group (q/o, k/v, gate/up, down in a llama block) and each format, one GGUF is
written with that group in the format and every other searched tensor in the base format; its decode
step time minus the all-base file's, divided by the group's tensor count, is that shape's cost in
that format (costs are differences, so the base format costs 0 and base_s is the all-base step).
The base file is timed before each group, and its median is base_s, so drift shows up as spread.

Timing follows llama-bench's test_gen (one token, one llama_decode per step, warm-up apart); files
load only in a child process (DESIGN.md: llama.cpp parses GGUF only in a worker). Tables are cached
as JSON under the cache root, keyed by machine id, model digest, formats and settings.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quantscope.methods.haq.cost import CostTable, shape_key
from quantscope.methods.haq.space import Layer

TABLE_VERSION = 1  # history: 1 (2026-11-29) group-switch differences against an all-base file


# --- child side -----------------------------------------------------------------------------------
def time_decode_files(paths: list[str], tokens: int, reps: int, threads: int) -> list[dict[str, Any]]:
    """Seconds per decode step of each file: every file loaded at once, then `reps` rounds in which each
    file decodes `tokens` steps in turn (after one warm-up round), so a slow spell of this shared machine
    (FACTS.md: 5-30x stalls) falls on every file alike; a run's figure is the median of its steps."""
    import llama_cpp as L

    from quantscope.backends.llamacpp.convert import captured_log, log_errors

    loaded = []
    with captured_log() as log:
        try:
            for path in paths:
                mp = L.llama_model_default_params()
                mp.n_gpu_layers = 0
                model = L.llama_model_load_from_file(path.encode(), mp)
                if not model:
                    raise RuntimeError(f"llama.cpp could not load {path}: {log_errors(log) or 'no reason'}")
                cp = L.llama_context_default_params()
                cp.n_ctx, cp.n_threads, cp.n_threads_batch, cp.no_perf = tokens + 8, threads, threads, True
                ctx = L.llama_init_from_model(model, cp)
                loaded.append((model, ctx, L.llama_get_memory(ctx)))
            one = (L.llama_token * 1)()
            batch = L.llama_batch_get_one(one, 1)
            runs: list[list[float]] = [[] for _ in paths]
            for rep in range(reps + 1):
                for k, (_model, ctx, mem) in enumerate(loaded):
                    L.llama_memory_clear(mem, False)
                    steps = []
                    for i in range(tokens):
                        one[0] = (7 * i + 1) % 100
                        start = time.perf_counter()
                        if L.llama_decode(ctx, batch) != 0:
                            raise RuntimeError(f"llama_decode failed on {paths[k]}")
                        steps.append(time.perf_counter() - start)
                    if rep:  # the first round is the warm-up
                        runs[k].append(statistics.median(steps))
        finally:
            for model, ctx, _mem in loaded:
                L.llama_free(ctx)
                L.llama_model_free(model)
    return [{"path": p, "step_s": r, "size": Path(p).stat().st_size} for p, r in zip(paths, runs, strict=True)]


def time_files(paths: list[str], tokens: int = 64, reps: int = 5, threads: int | None = None) -> list[dict[str, Any]]:
    from quantscope.artifacts.child import run_child
    from quantscope.env import physical_cores

    return run_child("quantscope.methods.haq.measure:time_decode_files",
                     {"paths": [str(p) for p in paths], "tokens": tokens, "reps": reps,
                      "threads": threads or physical_cores()})


# --- parent side ----------------------------------------------------------------------------------
def table_key(machine_id: str, model_digest: str, formats: tuple[str, ...], settings: dict[str, Any]) -> str:
    blob = json.dumps({"v": TABLE_VERSION, "machine": machine_id, "model": model_digest, "formats": formats,
                       **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def table_path(key: str) -> Path:
    from quantscope.paths import cache_root

    return cache_root("haq-costs") / f"{key}.json"


def measure_llamacpp_table(src_f32: Path, layers: list[Layer], formats: tuple[str, ...], *, machine_id: str,
                           model_digest: str, base: str = "q8_0", embed: str = "q8_0", tokens: int = 64,
                           reps: int = 5, threads: int | None = None, refresh: bool = False,
                           progress: Callable[[str], None] = lambda _s: None) -> CostTable:
    """The measured table for these layers and formats (cached per machine; `refresh` re-measures)."""
    from quantscope.methods.haq.export import Quantized, write_policy_gguf
    from quantscope.paths import write_text

    settings = {"base": base, "embed": embed, "tokens": tokens, "reps": reps, "threads": threads}
    key = table_key(machine_id, model_digest, formats, settings)
    cached = table_path(key)
    if cached.is_file() and not refresh:
        return CostTable.from_dict(json.loads(cached.read_text()))
    groups: dict[str, list[Layer]] = {}
    for lay in layers:
        groups.setdefault(shape_key(lay), []).append(lay)
    quantized = Quantized()
    all_base = {lay.name: base for lay in layers}
    base_steps: list[float] = []
    per: dict[str, dict[str, float]] = {}
    samples: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="quantscope-haq-") as tmp:
        for g, members in groups.items():
            progress(f"timing shape {g} ({len(members)} tensors) in {len(formats)} formats")
            files = [Path(tmp) / "base.gguf"]
            write_policy_gguf(src_f32, all_base, embed, files[0], quantized)
            others = [f for f in formats if f != base]
            for f in others:
                files.append(Path(tmp) / f"{f}.gguf")
                write_policy_gguf(src_f32, {**all_base, **{lay.name: f for lay in members}}, embed, files[-1],
                                  quantized)
            timed = time_files([str(p) for p in files], tokens, reps, threads)
            base_med = statistics.median(timed[0]["step_s"])
            base_steps.append(base_med)
            per[g] = {base: 0.0}
            for f, t in zip(others, timed[1:], strict=True):
                per[g][f] = (statistics.median(t["step_s"]) - base_med) / len(members)
            runs = {f: t["step_s"] for f, t in zip(others, timed[1:], strict=True)}
            samples[g] = {"base": timed[0]["step_s"], **runs}
            for f in others:  # free the group's quantized copies: only the base ones are reused
                for lay in members:
                    quantized.data.pop((lay.name, f), None)
    table = CostTable("llamacpp", f"local:{machine_id}", "measured", formats, statistics.median(base_steps), per,
                      (f"measured here through llama.cpp: decode step of a file with one shape group switched "
                       f"from {base}, minus the all-{base} file, per tensor; {tokens} steps x {reps} runs",),
                      {"base_step_s": base_steps, "groups": samples, "settings": settings})
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_text(cached, json.dumps(table.to_dict()))
    return table
