"""`quantscope estimate`: projected speed, TTFT, memory and fit of a configuration on catalog hardware.

The command parses and prints; the model is hardware/project.py. Every figure it prints is
projected (never stored), with the interval the calibration's leave-one-out error gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import UserError

Opt = typer.Option
GB = 1e9


def split(values: list[str] | None) -> list[str]:
    """Repeatable and comma-separated option values, in order, without duplicates."""
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip() and x.strip() not in out]
    return out


def load_calibration(store: Path | None, hardware_ids: list[str], threads: int | None = None):
    """The calibration: the store's ok rows (when a store exists) and the published GPU data."""
    from quantscope.env import machine_id, physical_cores
    from quantscope.hardware.calibrate import build_calibration
    from quantscope.hardware.observations import cached_peaks
    from quantscope.store import Store, default_store_path

    path = store or default_store_path()
    rows = []
    if path.exists():
        with Store(path, readonly=True) as st:
            rows = st.results(status="ok")
    elif store is not None:
        raise UserError(f"no store at {path}: pass an existing --store, or leave it out")
    machine = machine_id()
    peaks = cached_peaks(machine, threads or physical_cores())
    return build_calibration(rows, machine, peaks), machine


def fmt_tps(v: float | None, lo: float | None, hi: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3g} [{lo:.3g}-{hi:.3g}]"


def table_lines(projections) -> list[str]:
    head = (f"{'hardware':<15} {'format':<28} {'decode t/s [interval]':<24} {'prefill t/s [interval]':<24} "
            f"{'TTFT s':>8} {'ms/token':>9} {'memory GB':>10} {'fits':>5} {'bound':>8} {'lvl':>3}")
    lines = ["PROJECTED figures (roofline x fitted efficiency; not measurements, never stored)", head]
    for p in projections:
        fmt = p.format if p.backend == "llamacpp" or p.quant == "none" else f"{p.format}/{p.dtype}"
        if not p.supported:
            lines.append(f"{p.hardware:<15} {fmt:<28} {p.reason}")
            continue
        lines.append(
            f"{p.hardware:<15} {fmt:<28} {fmt_tps(p.decode_tps, p.decode_tps_low, p.decode_tps_high):<24} "
            f"{fmt_tps(p.prefill_tps, p.prefill_tps_low, p.prefill_tps_high):<24} {p.ttft_s:>8.3g} "
            f"{p.token_latency_s * 1e3:>9.3g} {p.memory_bytes / GB:>10.3g} {'yes' if p.fits else 'NO':>5} "
            f"{p.bound:>8} {p.calibration_level:>3}")
    return lines


def detail_lines(p) -> list[str]:
    if not p.supported:
        return []
    m = p.memory
    out = [f"{p.hardware} {p.format} ({p.dtype}): memory weights {m['weights'] / GB:.3g} GB + KV cache "
           f"{m['kv_cache'] / GB:.3g} GB + activations {m['activations'] / GB:.3g} GB + runtime reserve "
           f"{m['runtime_reserve'] / GB:.3g} GB = {p.memory_bytes / GB:.3g} of {p.capacity_bytes / GB:.3g} GB; "
           f"prefill {p.prefill_bound}-bound; {p.calibration}"]
    if p.cost_per_mtok is not None:
        out.append(f"  cost: {p.cost_per_mtok:.3g} per million generated tokens at {p.price_per_hour:g}/hour "
                   "(projected decode speed, this batch)")
    out += [f"  note: {n}" for n in p.notes]
    out += [f"  assumes: {a}" for a in p.assumptions]
    return out


def estimate_cmd(
    model: Annotated[str | None, Opt("--model", "-m", help="Anything `run` accepts, or a config.json (or a "
                                     "folder holding one). No weights are read.")] = None,
    hardware: Annotated[list[str] | None, Opt("--hardware", "--hw", help="Catalog id(s) or `local`, "
                                              "comma-separated (e.g. t4,a100-80gb-sxm,h200).")] = None,
    backend: Annotated[str, Opt(help="Runtime, as for `run`: torch | torchao | bnb | ort | llamacpp.")] = "torch",
    quant: Annotated[list[str] | None, Opt(help="Method(s) as for `run` (none, int8-weight-only, nf4, q4_0 ...), "
                                           "comma-separated.")] = None,
    dtype: Annotated[str, Opt(help="fp32 | bf16 | fp16")] = "fp32",
    qparam: Annotated[list[str] | None, Opt(help="Method option KEY=VALUE (repeatable).")] = None,
    prompt_tokens: Annotated[int, Opt("--prompt-tokens", "-p", help="Prompt length P (prefill, TTFT).")] = 128,
    context: Annotated[int | None, Opt(help="Tokens held in the KV cache (default P + 128).")] = None,
    batch: Annotated[int, Opt("--batch", "-b", help="Sequences decoded together.")] = 1,
    compile: Annotated[bool, Opt("--compile", help="Project the torch.compile'd runtime (its own data).")] = False,
    price_per_hour: Annotated[float | None, Opt("--price-per-hour", help="Hourly price of the hardware: "
                                                "adds the cost per million generated tokens.")] = None,
    fmt: Annotated[str, Opt("--format", help="table | json")] = "table",
    store: Annotated[Path | None, Opt("--store", help="Result store whose ok rows calibrate `local` "
                                      "(default: the usual store, when it exists).")] = None,
) -> None:
    """Project decode and prefill speed, TTFT, memory and fit on hardware that is not here.

    Example: quantscope estimate -m synthetic:llama3-8b --hardware t4,a100-80gb-sxm,h200 --dtype fp16
    """
    from quantscope.commands.run import parse_params
    from quantscope.hardware.catalog import get_hardware
    from quantscope.hardware.project import project
    from quantscope.models.shape import model_shape

    if fmt not in ("table", "json"):
        raise UserError(f"unknown format {fmt!r}: use table or json")
    if batch < 1 or prompt_tokens < 1 or (context is not None and context < prompt_tokens):
        raise UserError("batch and prompt tokens must be >= 1 and the context at least the prompt")
    if price_per_hour is not None and price_per_hour <= 0:
        raise UserError("--price-per-hour must be > 0")
    hw_ids = split(hardware) or ["local"]
    hws = [get_hardware(h) for h in hw_ids]  # an unknown id fails here, before any work
    shape = model_shape(model)
    calib, machine = load_calibration(store, hw_ids)
    params = tuple(parse_params(qparam or []).items())
    runtime = backend + ("+compile" if compile else "")
    out = [project(shape, hw, backend, q, dtype, params, calibration=calib, batch=batch, prompt=prompt_tokens,
                   context=context, runtime=runtime, machine_id=machine, price_per_hour=price_per_hour)
           for hw in hws for q in split(quant) or ["none"]]
    supported = [p for p in out if p.supported]
    if (context is not None or batch > 1) and supported and not any(p.fits for p in supported):
        p = supported[0]
        raise UserError(f"batch {batch} x context {p.context} does not fit {p.hardware}: it needs "
                        f"{p.memory_bytes / GB:.2f} GB, {(p.memory_bytes - p.capacity_bytes) / GB:.2f} GB more than "
                        f"its {p.capacity_bytes / GB:.0f} GB; lower --batch or --context (see `quantscope fit`)")
    if fmt == "json":
        data = [p.to_dict() for p in out]
        typer.echo(json.dumps(data[0] if len(data) == 1 else data, indent=2))
        return
    typer.echo(f"model {shape.name}: {shape.total_params / 1e9:.3g} B parameters, {shape.layers} layers, "
               f"batch {batch}, prompt {prompt_tokens}, context {out[0].context}")
    for line in table_lines(out):
        typer.echo(line)
    for p in out:
        for line in detail_lines(p):
            typer.echo(line)


def projected_beside_lines(rows, hardware: list[str] | None, store: Path | None = None) -> list[str]:
    """For `report`/`recommend --hardware`: each measured row beside its projection on each hardware."""
    from quantscope.hardware.catalog import get_hardware
    from quantscope.hardware.project import project_results

    hw_ids = split(hardware)
    if not hw_ids:
        return []
    hws = [get_hardware(h) for h in hw_ids]
    calib, machine = load_calibration(store, hw_ids)
    lines = []
    for hw in hws:
        lines.append(f"PROJECTED on {hw.id} ({hw.name}), not measured: decode t/s [interval] beside the decode "
                     "measured here; memory and fit there")
        for run_id, r, p in project_results(rows, hw, calib, machine):
            here = r.get("decode_tps")
            measured = f"{here.value:.3g} t/s measured here" if here is not None and here.samples else "-"
            label = f"run {run_id} {r.spec.backend}/{r.spec.quant.label}"
            if isinstance(p, str):
                lines.append(f"  {label}: {p}")
            elif not p.supported:
                lines.append(f"  {label}: {p.reason}")
            else:
                lines.append(f"  {label}: {fmt_tps(p.decode_tps, p.decode_tps_low, p.decode_tps_high)} t/s projected "
                             f"(level {p.calibration_level}) vs {measured}; {p.memory_bytes / GB:.3g} GB, "
                             f"{'fits' if p.fits else 'does NOT fit'}")
    return lines
