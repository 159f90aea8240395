"""Building RunSpecs: the one place `quantscope run` and the sweep turn their arguments into specs.

A sweep's rows share the model, workload and quality recipe (`base_spec`); each matrix entry adds its
backend, method and options (`Entry.spec`). `quantscope run` is a sweep of one entry built the same way.
"""

from __future__ import annotations

from pathlib import Path

from quantscope.errors import UserError
from quantscope.spec import QualitySpec, RunSpec, TaskSpec, WorkloadSpec

# The quick workload that `quantscope run` and the default sweep share, so each reuses the other's rows:
# a 128-token prompt and 32 new tokens, 3-5 reps within 8 s, 1,024 scored tokens (5 windows of the llama
# recipe: ctx 512, 255 scored each, 1,275 in all), and a compared configuration's quality pass ended after
# the window crossing 30 s (the reference scores all).
# On the 2-core AVX2 machines the slow CPU paths' quality passes (torchao int8-dynamic 289 s, bf16 105 s)
# were most of a 41-minute default sweep, and `run` with 16,384 tokens took minutes (issue 16 asks 60 s);
# with 64 new tokens and 2,048 scored `run` still took 86.7 s there, 31.3 s of it scoring 9 windows and
# most of the rest warm-up and 3 reps of 192 tokens at ~8 tok/s
# (docs/measurements/make-run-budget-2026-11-30/3-6c47f77-quantscope-run-fp32.log). Decode speed is a
# per-token rate, so 32 tokens measure the same thing with a wider CI (which the table states); fewer
# windows widen the PPL and KLD standard errors.
# More precision: --gen-tokens 64 --max-reps 10 --max-seconds 30 --quality-tokens 16384 --quality-seconds 0.
QUICK_GEN_TOKENS = 32
QUICK_MAX_REPS = 5
QUICK_MAX_SECONDS = 8.0
QUICK_QUALITY_TOKENS = 1024
QUICK_QUALITY_SECONDS = 30.0


def quality_text(text_file: Path | None, dataset: str | None) -> str:
    if text_file and dataset:
        raise UserError("give --text-file or --dataset, not both")
    if text_file:
        if not text_file.is_file():
            raise UserError(f"text file {text_file} does not exist")
        return f"file:{text_file.resolve()}"
    return f"dataset:{dataset}" if dataset else "pydoc"


def default_ctx(recipe: str) -> int:
    """The quality pass's context when none is given: llama.cpp's 512, or the GPTQ papers' 2048."""
    return 512 if recipe == "llama" else 2048


def base_spec(model: str | None, model_flags: dict, workload: WorkloadSpec, *, quality: bool = True,
              recipe: str = "llama", ctx: int | None = None, quality_tokens: int = QualitySpec().max_tokens,
              text: str = "pydoc", reference: str | None = None, device: str = "cpu", seed: int = 0,
              tasks: TaskSpec | None = None, quality_seconds: float | None = None) -> RunSpec:
    """The shared part of every spec of one invocation (no backend, method or options yet).

    A synthetic model never gets a quality pass: its weights are random. Tasks (lm-eval) need the
    optional lm-eval package: missing, it is one line now rather than a failed task part per row.
    """
    from quantscope.models import parse_model

    if tasks is not None and tasks.names:
        from quantscope.quality.tasks import check_tasks

        check_tasks(tasks.names)

    mspec = parse_model(model, **model_flags)
    from quantscope.quality.gguf_tokens import tokens_for

    return RunSpec(
        model=mspec,
        device=device,
        workload=workload,
        quality=QualitySpec(enabled=quality and not mspec.synthetic, recipe=recipe, ctx=ctx or default_ctx(recipe),
                            max_tokens=quality_tokens, text=text, reference=reference, tokens=tokens_for(mspec),
                            max_seconds=quality_seconds),
        seed=seed,
        tasks=tasks or TaskSpec(),
    )


def sweep_specs(base: RunSpec, matrix: Path | None, backends: list[str], quants: list[str],
                dtypes: list[str]) -> list[RunSpec]:
    from quantscope.sweep.matrix import DEFAULT_MATRIX, dedupe, from_flags, from_toml, reference_first, tasks_from_toml

    if matrix is not None and (backends or quants or dtypes):
        raise UserError("give --matrix FILE or --backend/--quant/--dtype lists, not both")
    if matrix is not None:
        entries = from_toml(matrix)
        tasks = tasks_from_toml(matrix)
        if tasks is not None and base.tasks.names and tasks != base.tasks:
            raise UserError(f"--tasks/--task-limit and the [tasks] table of {matrix} disagree: drop one")
        if tasks is not None:
            from dataclasses import replace

            from quantscope.quality.tasks import check_tasks

            check_tasks(tasks.names)
            base = replace(base, tasks=tasks)
    elif backends or quants or dtypes:
        entries = from_flags(backends, quants, dtypes)
    else:
        entries = list(DEFAULT_MATRIX)
    return reference_first(list(dict.fromkeys(e.spec(base) for e in dedupe(entries))))
