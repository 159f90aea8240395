"""`quantscope fit`: which model x precision fits where, and the largest batch x context that does.

The seeds' scalability table, computed from each model's config and each format's real bytes
instead of typed. The logic is hardware/fit.py; this parses and prints.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from quantscope.commands.estimate import split
from quantscope.errors import UserError

Opt = typer.Option
GB = 1e9
# Shorthands for the usual precisions, each a real runtime configuration (backend, quant, dtype).
PRESETS = {
    "fp32": ("torch", "none", "fp32"),
    "fp16": ("torch", "none", "fp16"),
    "bf16": ("torch", "none", "bf16"),
    "int8": ("bnb", "int8", "fp16"),  # LLM.int8(), what transformers' load_in_8bit runs
    "int4": ("bnb", "nf4", "fp16"),  # NF4, transformers' load_in_4bit
}
DEFAULT_MODELS = ("synthetic:distilgpt2", "synthetic:gpt2", "synthetic:tinyllama-1.1b", "synthetic:llama-1b",
                  "synthetic:llama2-7b", "synthetic:llama3-8b", "synthetic:llama2-13b", "synthetic:llama2-70b")


def parse_precision(text: str) -> tuple[str, str, str]:
    """fp16 | int8 | int4 ... or BACKEND:QUANT[:DTYPE] (e.g. llamacpp:q4_k_m, torchao:int4-weight-only:bf16)."""
    if text in PRESETS:
        return PRESETS[text]
    parts = text.split(":")
    if len(parts) in (2, 3):
        return parts[0], parts[1], parts[2] if len(parts) == 3 else "fp32"
    raise UserError(f"precision {text!r} is not one of {', '.join(PRESETS)} nor BACKEND:QUANT[:DTYPE]")


def cell(r: dict) -> str:
    if not r["fits"]:
        why = "unsupported" if not r["supported"] else f"+{r['shortfall_bytes'] / GB:.1f} GB"
        return f"no ({why})"
    ctx = f"{r['max_context_at_batch']:,}" + ("*" if r["context_capped_by_model"] else "")
    return f"ctx {ctx} / b {r['max_batch_at_context']:,}"


def fit_cmd(
    hardware: Annotated[list[str] | None, Opt("--hardware", "--hw", help="Catalog ids, comma-separated.")] = None,
    model: Annotated[list[str] | None, Opt("--model", "-m", help="Models (as for `run`, or config.json), "
                                           "comma-separated or repeated (default: the seeds' 82M...70B).")] = None,
    quant: Annotated[list[str] | None, Opt("--quant", help="Precisions: fp16, int8, int4 ... or "
                                           "BACKEND:QUANT[:DTYPE], comma-separated.")] = None,
    prompt_tokens: Annotated[int, Opt("--prompt-tokens", "-p", help="Prompt length (prefill activations).")] = 128,
    context: Annotated[int, Opt(help="Context for the largest batch.")] = 2048,
    batch: Annotated[int, Opt("--batch", "-b", help="Batch for the largest context.")] = 1,
    fmt: Annotated[str, Opt("--format", help="table | json")] = "table",
) -> None:
    """Which model x precision fits which GPU, with the largest context (at --batch) and batch (at --context).

    Example: quantscope fit --hardware t4,a100-80gb-sxm,h100-sxm,h200 --quant fp16,int8,int4
    """
    from quantscope.hardware.catalog import get_hardware
    from quantscope.hardware.fit import largest_fit
    from quantscope.models.shape import model_shape

    if fmt not in ("table", "json"):
        raise UserError(f"unknown format {fmt!r}: use table or json")
    hws = [get_hardware(h) for h in split(hardware) or ["t4", "a100-80gb-sxm", "h100-sxm", "h200"]]
    precisions = [(q, parse_precision(q)) for q in split(quant) or ["fp16", "int8", "int4"]]
    shapes = [model_shape(m) for m in split(model) or list(DEFAULT_MODELS)]
    rows = []
    for shape in shapes:
        for name, (backend, q, dtype) in precisions:
            fits = [largest_fit(shape, hw, backend, q, dtype, prompt=prompt_tokens, context=context, batch=batch)
                    for hw in hws]
            rows.append((shape, name, fits))
    if fmt == "json":
        typer.echo(json.dumps([dict(r, precision=name, params=shape.total_params) for shape, name, fits in rows
                               for r in fits], indent=2))
        return
    typer.echo(f"memory fit (projected from config and format bytes; weights + KV + activations + reserve): "
               f"'ctx N / b M' = largest context at batch {batch} / largest batch at context {context} (or the "
               "model's maximum when smaller); * = the model's own maximum context, not memory, is the limit")
    head = f"{'model':<26} {'params':>7} {'precision':<10} {'weights GB':>10} " + " ".join(
        f"{hw.id + f' ({hw.memory_bytes / GB:.0f} GB)':<26}" for hw in hws)
    typer.echo(head)
    for shape, name, fits in rows:
        weights = fits[0]["weights_bytes"] / GB
        typer.echo(f"{shape.name:<26} {shape.total_params / 1e9:>6.3g}B {name:<10} {weights:>10.3g} "
                   + " ".join(f"{cell(r):<26}" for r in fits))
    unsupported = {(r["hardware"], r["reason"]) for _, _, fits in rows for r in fits if r["reason"]}
    for hw_id, reason in sorted(unsupported):
        typer.echo(f"unsupported on {hw_id}: {reason}")
