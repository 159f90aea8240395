"""`quantscope run`: measure one configuration in an isolated worker and store the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantscope.backends import BACKENDS
from quantscope.errors import UserError
from quantscope.methods import methods_summary
from quantscope.spec import Override, RunSpec, TaskSpec, WorkloadSpec
from quantscope.sweep.specs import (
    QUICK_GEN_TOKENS,
    QUICK_MAX_REPS,
    QUICK_MAX_SECONDS,
    QUICK_QUALITY_SECONDS,
    QUICK_QUALITY_TOKENS,
)

Opt = typer.Option
# Help texts come from the registries, so a new runtime or method shows up here by registering.
BACKEND_HELP = f"Runtime: {' | '.join(BACKENDS.names())}."
QUANT_HELP = f"Quantization method of the backend ('none': the plain dtype). {methods_summary(6)}."


def parse_params(items: list[str]) -> dict[str, object]:
    """--qparam group_size=64 -> {"group_size": 64}; values are JSON scalars where they parse as such.

    >>> parse_params(["group_size=64", "kv_cache=false", "name=x"])
    {'group_size': 64, 'kv_cache': False, 'name': 'x'}
    """
    import json

    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"option {item!r} is not KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def run_cmd(
    model: Annotated[str | None, Opt("--model", "-m", help="bundled | HF folder | GGUF file | hub id | "
                                     "synthetic:NAME (e.g. synthetic:llama-1b)")] = None,
    backend: Annotated[str, Opt(help=BACKEND_HELP)] = "torch",
    dtype: Annotated[str, Opt(help="fp32 | bf16 | fp16")] = "fp32",
    quant: Annotated[str, Opt(help=QUANT_HELP)] = "none",
    qparam: Annotated[list[str] | None, Opt(help="Method parameter KEY=VALUE (repeatable), e.g. "
                                            "group_size=32; a method that takes none refuses it.")] = None,
    override: Annotated[list[str] | None, Opt(help="Per-module policy rule PATTERN=METHOD[(k=v,...)], first "
                                              "match wins; PATTERN is a glob on the module name or re:REGEX; "
                                              "METHOD none keeps it unquantized (repeatable), e.g. "
                                              "lm_head=none 're:.*mlp.*=int8-weight-only'.")] = None,
    policy: Annotated[Path | None, Opt(help="Policy TOML: optional quant/params and override tables "
                                       "(pattern, quant, params), applied before any --override.")] = None,
    device: Annotated[str, Opt(help="cpu | cuda")] = "cpu",
    prompt_tokens: Annotated[int, Opt("--prompt-tokens", "-p", help="Prompt length P.")] = 128,
    gen_tokens: Annotated[int, Opt("--gen-tokens", "-g", help="Greedy new tokens G.")] = QUICK_GEN_TOKENS,
    batch: Annotated[int, Opt("--batch", "-b", help="Batch size B.")] = 1,
    warmup: Annotated[int, Opt(help="Untimed warm-up repetitions.")] = 1,
    min_reps: Annotated[int, Opt(help="At least this many timed repetitions.")] = 3,
    max_reps: Annotated[int, Opt(help="At most this many timed repetitions (more precision: 10).")] = QUICK_MAX_REPS,
    max_seconds: Annotated[float, Opt(help="Stop repeating after this long (once min-reps are done; more "
                                            "precision: 30).")] = QUICK_MAX_SECONDS,
    ci_target: Annotated[float, Opt(help="Stop when the 95% CI half-width of decode t/s <= this x mean.")] = 0.02,
    threads: Annotated[int | None, Opt(help="Compute threads (default: the runtime's).")] = None,
    compile: Annotated[bool, Opt("--compile", help="torch.compile the model (part of the run's key).")] = False,
    opt: Annotated[list[str] | None, Opt("--opt", help="Backend option KEY=VALUE, part of the run's key "
                                          "(torch-family: compile; ort: kv_cache, n_threads, opt_level, ep; "
                                          "llamacpp: n_threads, n_batch, n_ubatch, flash_attn, type_k, type_v); "
                                          "repeatable.")] = None,
    quality: Annotated[bool, Opt("--quality/--no-quality", help="Perplexity and KLD pass.")] = True,
    recipe: Annotated[str, Opt(help="Perplexity recipe: llama (ctx 512, second half scored) | gptq.")] = "llama",
    ctx: Annotated[int | None, Opt(help="Context of the quality pass (default: the recipe's).")] = None,
    quality_tokens: Annotated[int, Opt(help="Scored tokens in the quality pass (the default sweep's; more "
                                           "precision: 16384).")] = QUICK_QUALITY_TOKENS,
    quality_seconds: Annotated[float, Opt("--quality-seconds", help="End a compared configuration's quality pass "
                                          "after the window that crosses S seconds (whole windows; the "
                                          "reference scores all); 0: no cap.")] = QUICK_QUALITY_SECONDS,
    text_file: Annotated[Path | None, Opt(help="Text for the quality pass (default: pydoc_data.topics).")] = None,
    dataset: Annotated[str | None, Opt(help="Dataset for the quality pass, e.g. wikitext-2 (needs network).")] = None,
    reference: Annotated[str | None, Opt(help="Key hash (prefix) of a stored run to use as the KLD reference.")] = None,
    tasks: Annotated[str | None, Opt("--tasks", help="lm-eval tasks after the timed work, comma-separated, e.g. "
                                     "quantscope_cloze (offline) or hellaswag,arc_easy (needs their datasets); "
                                     "needs quantscope[tasks].")] = None,
    task_limit: Annotated[int | None, Opt("--task-limit", help="Evaluate the first N documents of each task "
                                          "(lm-eval's --limit).")] = None,
    allow_pickle: Annotated[bool, Opt("--allow-pickle", help="Load pickle weights (weights_only=True).")] = False,
    trust_remote_code: Annotated[bool, Opt("--trust-remote-code", help="Run the model's own code.")] = False,
    revision: Annotated[str | None, Opt(help="Pinned revision (needed with --trust-remote-code).")] = None,
    offline: Annotated[bool, Opt("--offline", help="Keep to the local caches: no hub model or dataset is "
                                              "downloaded (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1).")] = False,
    timeout: Annotated[float, Opt(help="Seconds before the worker is stopped (status timeout).")] = 900.0,
    seed: Annotated[int, Opt(help="Seed for synthetic weights and prompts.")] = 0,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No live progress on stderr (none either when stderr "
                                                      "is not a terminal).")] = False,
) -> None:
    """Measure one configuration in its own process and store it with its raw samples.

    While it runs, stderr shows each phase (load, conversion, warm-up, repetitions with the running
    CI, quality pass with tokens/s) and how long it took.

    Example: quantscope run --model synthetic:llama-1b --dtype bf16 --no-quality
    """
    from quantscope.sweep.matrix import Entry, policy_from_toml
    from quantscope.sweep.specs import base_spec, quality_text

    if backend not in BACKENDS:
        raise UserError(BACKENDS.unknown_message(backend))
    if not 0 < timeout < float("inf"):  # also refuses nan: the worker's clock needs a finite limit
        raise UserError(f"--timeout must be a finite number of seconds > 0, got {timeout:g}")
    workload = WorkloadSpec(prompt_tokens=prompt_tokens, gen_tokens=gen_tokens, batch=batch, warmup=warmup,
                            min_reps=min_reps, max_reps=max_reps, max_seconds=max_seconds, ci_target=ci_target,
                            threads=threads)
    if not quality_seconds >= 0:  # also refuses nan
        raise UserError(f"--quality-seconds must be >= 0 (0: no cap), got {quality_seconds:g}")
    if offline:
        from quantscope.models.hub import go_offline

        go_offline()  # before anything resolves the model; the workers inherit it
    model_flags = {"allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code, "revision": revision}
    base = base_spec(model, model_flags, workload, quality=quality, recipe=recipe, ctx=ctx,
                     quality_tokens=quality_tokens, text=quality_text(text_file, dataset), reference=reference,
                     device=device, seed=seed, tasks=TaskSpec.parse(tasks, task_limit),
                     quality_seconds=quality_seconds or None)
    options = {**parse_params(opt or []), **({"compile": True} if compile else {})}
    params = parse_params(qparam or [])
    rules: tuple[Override, ...] = ()
    if policy is not None:
        default, policy_params, rules = policy_from_toml(policy)
        if default is not None and quant not in ("none", default):
            raise UserError(f"--quant {quant} and the policy file's quant = {default!r} disagree: drop one")
        quant = default or quant
        params = {**dict(policy_params), **params}
    rules += tuple(Override.parse(text) for text in override or [])
    entry = Entry(backend, dtype, quant, params=tuple(params.items()), options=tuple(options.items()),
                  overrides=rules)
    spec = entry.spec(base)
    code = measure_and_store(spec, store, timeout, quiet)
    raise typer.Exit(code)


def measure_and_store(spec: RunSpec, store_path: Path | None, timeout: float, quiet: bool = False) -> int:
    """Run (after its reference when the quality pass needs one), store, print; the exit code."""
    from quantscope.api import measure
    from quantscope.display import RunProgress, summary_lines
    from quantscope.store import default_store_path

    with RunProgress(quiet=quiet) as live:
        run_id, result = measure(spec, store_path, timeout, say=typer.echo, on_progress=live.on_progress)
    for line in summary_lines(result):
        typer.echo(line)
    if spec.tasks.names:
        from quantscope.analysis.tasks import drop_lines
        from quantscope.store import open_store

        with open_store(store_path) as st:
            for line in drop_lines(st, result):
                typer.echo(line)
    typer.echo(f"  stored as run {run_id} in {store_path or default_store_path()} (key {spec.key_hash()})")
    if result.status == "failed" and result.info.get("exception") == "UserError":
        return 2  # bad input found once the model was loaded (an unmapped architecture): a usage error
    return 0 if result.status in ("ok", "unsupported") else 1
