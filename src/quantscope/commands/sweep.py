"""`quantscope sweep`: many configurations, one isolated run each, resumable; then the comparison table,
the recommendation and the HTML report.

The default is the quick matrix on the bundled model (every configuration the code knows, see
sweep/matrix.py) with the quick workload `quantscope run` shares (32 new tokens, at most 5 reps within 8 s, 1024
scored tokens, a compared configuration's quality pass cut after 30 s) and a time budget of ten minutes
(sweep/budget.py): a configuration that no longer fits is deferred to the next sweep, which reuses every
stored row. The lighter quality budget and the deferrals are printed and written into the report.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from quantscope.backends import BACKENDS
from quantscope.errors import UserError
from quantscope.methods import methods_summary
from quantscope.spec import RunSpec, TaskSpec, WorkloadSpec
from quantscope.sweep.specs import (
    QUICK_GEN_TOKENS,
    QUICK_MAX_REPS,
    QUICK_MAX_SECONDS,
    QUICK_QUALITY_SECONDS,
    QUICK_QUALITY_TOKENS,
)

Opt = typer.Option


def sweep_cmd(
    model: Annotated[str | None, Opt("--model", "-m", help="bundled | HF folder | GGUF file | hub id | "
                                     "synthetic:NAME")] = None,
    matrix: Annotated[Path | None, Opt("--matrix", help="TOML file of config tables (backend, dtype, quant, "
                                       "params, options, and config.override tables of per-module rules).")] = None,
    backend: Annotated[list[str] | None, Opt("--backend", help="Backends to combine (repeatable): "
                                             f"{' | '.join(BACKENDS.names())}.")] = None,
    quant: Annotated[list[str] | None, Opt("--quant", help="Methods to combine (repeatable; none = plain). "
                                           f"{methods_summary(6)}.")] = None,
    dtype: Annotated[list[str] | None, Opt("--dtype", help="dtypes to combine (repeatable).")] = None,
    prompt_tokens: Annotated[int, Opt("--prompt-tokens", "-p", help="Prompt length P.")] = 128,
    gen_tokens: Annotated[int, Opt("--gen-tokens", "-g", help="Greedy new tokens G.")] = QUICK_GEN_TOKENS,
    batch: Annotated[int, Opt("--batch", "-b", help="Batch size B.")] = 1,
    warmup: Annotated[int, Opt(help="Untimed warm-up repetitions.")] = 1,
    min_reps: Annotated[int, Opt(help="At least this many timed repetitions.")] = 3,
    max_reps: Annotated[int, Opt(help="At most this many timed repetitions.")] = QUICK_MAX_REPS,
    max_seconds: Annotated[float, Opt(help="Stop repeating after this long.")] = QUICK_MAX_SECONDS,
    ci_target: Annotated[float, Opt(help="Stop when the 95% CI half-width of decode t/s <= this x mean.")] = 0.02,
    threads: Annotated[int | None, Opt(help="Compute threads (default: the runtime's).")] = None,
    device: Annotated[str, Opt(help="cpu | cuda (every row of the sweep).")] = "cpu",
    quality: Annotated[bool, Opt("--quality/--no-quality", help="Perplexity and KLD pass.")] = True,
    recipe: Annotated[str, Opt(help="Perplexity recipe: llama | gptq.")] = "llama",
    ctx: Annotated[int | None, Opt(help="Context of the quality pass (default: the recipe's).")] = None,
    quality_tokens: Annotated[int, Opt(help="Scored tokens per configuration.")] = QUICK_QUALITY_TOKENS,
    quality_seconds: Annotated[float, Opt("--quality-seconds", help="End a compared configuration's quality pass "
                                          "after the window that crosses S seconds (whole windows, at least one; "
                                          "the reference scores all); 0: no cap.")] = QUICK_QUALITY_SECONDS,
    text_file: Annotated[Path | None, Opt(help="Text for the quality pass (default: pydoc_data.topics).")] = None,
    dataset: Annotated[str | None, Opt(help="Dataset for the quality pass, e.g. wikitext-2 (needs network).")] = None,
    tasks: Annotated[str | None, Opt("--tasks", help="lm-eval tasks for every row, comma-separated, e.g. "
                                     "quantscope_cloze (offline); needs quantscope[tasks].")] = None,
    task_limit: Annotated[int | None, Opt("--task-limit", help="First N documents of each task.")] = None,
    allow_pickle: Annotated[bool, Opt("--allow-pickle", help="Load pickle weights (weights_only=True).")] = False,
    trust_remote_code: Annotated[bool, Opt("--trust-remote-code", help="Run the model's own code.")] = False,
    revision: Annotated[str | None, Opt(help="Pinned revision (needed with --trust-remote-code).")] = None,
    offline: Annotated[bool, Opt("--offline", help="Keep to the local caches: no hub model or dataset is "
                                              "downloaded (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1).")] = False,
    timeout: Annotated[float, Opt(help="Seconds before one configuration's worker is stopped.")] = 900.0,
    seed: Annotated[int, Opt(help="Seed for synthetic weights and prompts.")] = 0,
    executor: Annotated[str, Opt("--executor", help="Where the runs happen: local (one isolated worker at a "
                                  "time on this machine) | ray (one Ray task each, one per node at a time; "
                                  "pip install 'quantscope[ray]').")] = "local",
    address: Annotated[str | None, Opt("--address", help="With --executor ray: the cluster's head, HOST:PORT "
                                       "(default: start a local Ray instance).")] = None,
    accelerator_type: Annotated[str | None, Opt("--accelerator-type", help="With --executor ray: run only on "
                                                "nodes with this accelerator, e.g. H100.")] = None,
    force: Annotated[bool, Opt("--force", help="Measure again even configurations already stored.")] = False,
    repeat: Annotated[int, Opt("--repeat", help="Measure each configuration in N separate worker processes, in "
                               "N passes (N rows of one key; the table pools them and shows the spread "
                               "between processes beside the within-run CI).")] = 1,
    wait_quiet: Annotated[float | None, Opt("--wait-quiet", help="Before each run, wait up to S seconds until "
                                            "other processes use at most 10% of the cores.")] = None,
    budget: Annotated[float | None, Opt("--budget", help="Seconds the sweep plans against: a configuration whose "
                                        "expected duration no longer fits is deferred to the next sweep (named, "
                                        "not stored). Default: 600 for the default matrix, none for one you "
                                        "give; 0: no budget.")] = None,
    goal: Annotated[str, Opt(help="Goal of the recommendation: memory | speed | balanced")] = "balanced",
    report: Annotated[Path | None, Opt("--report", help="HTML report to write.")] = Path("quantscope-report.html"),
    no_report: Annotated[bool, Opt("--no-report", help="Write no HTML report.")] = False,
    wide: Annotated[bool, Opt("--wide", help="Every column of the final table, however wide (default: the "
                                             "columns that fit the terminal).")] = False,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
) -> None:
    """Measure many configurations, then print the comparison and the recommendation and write the report.

    Each configuration runs in its own worker. Configurations already ok in the store on this machine are
    reused (--force measures them again); a failure is a row and the sweep goes on; Ctrl-C keeps what is
    finished. Exit code 1 if any configuration failed, 130 after Ctrl-C.

    Example: quantscope sweep --model synthetic:tiny-llama --backend torch --dtype fp32 --dtype bf16
    """
    from rich.markup import escape

    from quantscope.advise.recommend import GOALS
    from quantscope.env import fingerprint
    from quantscope.models import resolve
    from quantscope.models.context import check_fits
    from quantscope.store import open_store
    from quantscope.sweep.execute import plan, run_sweep
    from quantscope.sweep.executors import get_executor
    from quantscope.sweep.matrix import accelerators, from_toml
    from quantscope.sweep.progress import SweepDisplay, guess_durations, local_projection
    from quantscope.sweep.repeat import QuietExecutor, check_repeat, run_repeated
    from quantscope.sweep.specs import base_spec, quality_text, sweep_specs
    from quantscope.sweep.table import out_console

    if goal not in GOALS:
        raise UserError(f"goal {goal!r} is not one of {', '.join(GOALS)}")
    if not 0 < timeout < float("inf"):  # also refuses nan: the worker's clock needs a finite limit
        raise UserError(f"--timeout must be a finite number of seconds > 0, got {timeout:g}")
    ray_options = {k: v for k, v in {"address": address, "accelerator_type": accelerator_type}.items() if v}
    if ray_options and executor != "ray":
        raise UserError(f"--{next(iter(ray_options)).replace('_', '-')} is for --executor ray, not {executor!r}")
    placed = accelerators(from_toml(matrix)) if matrix is not None else {}
    if placed and executor != "ray":
        label, name = next(iter(placed.items()))
        raise UserError(f"matrix file {matrix}: {label} asks for accelerator {name!r}, which only --executor ray "
                        f"places; drop it or sweep with --executor ray")
    runs_on = get_executor(executor, **ray_options, **({"accelerators": placed} if placed else {}))
    check_repeat(repeat)
    budget_s = plan_budget(budget, matrix is None and not (backend or quant or dtype), repeat, executor)
    if wait_quiet is not None:
        runs_on = QuietExecutor(runs_on, wait_quiet)
    if offline:
        from quantscope.models.hub import go_offline

        go_offline()  # before anything resolves the model; the workers inherit it
    model_flags = {"allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code, "revision": revision}
    workload = WorkloadSpec(prompt_tokens=prompt_tokens, gen_tokens=gen_tokens, batch=batch, warmup=warmup,
                            min_reps=min_reps, max_reps=max_reps, max_seconds=max_seconds, ci_target=ci_target,
                            threads=threads)
    if not quality_seconds >= 0:  # also refuses nan
        raise UserError(f"--quality-seconds must be >= 0 (0: no cap), got {quality_seconds:g}")
    base = base_spec(model, model_flags, workload, quality=quality, recipe=recipe, ctx=ctx,
                     quality_tokens=quality_tokens, text=quality_text(text_file, dataset), seed=seed,
                     quality_seconds=quality_seconds or None,
                     device=device, tasks=TaskSpec.parse(tasks, task_limit))
    specs = sweep_specs(base, matrix, backend or [], quant or [], dtype or [])
    # cheap checks (paths, pickle, headers, the model's context) give a one-line error before any work
    check_fits(base, resolve(base.model))
    console = out_console()
    env = fingerprint()
    with open_store(store) as st:
        where, machines = f"machine {env.machine_id}", [env]
        if hasattr(runs_on, "machines"):  # a cluster: rows from any of its machines are reused
            machines = runs_on.machines() or machines
            where = f"{runs_on.where} (machines {', '.join(m.machine_id for m in machines)})"
        steps = plan(st, specs, env, force, machines)
        reused = sum(s.reuse is not None for s in steps)
        console.print(f"sweep: {len(steps)} configurations of {escape(base.model.label)} on {escape(where)}, "
                      f"{reused} reused from {escape(str(st.path))}", highlight=False)
        for line in workload_lines(base):
            console.print(line, highlight=False)
        timer = None
        local = functools.cache(local_projection)  # one calibration for the ETA's guesses and the budget's order
        guessed = guess_durations(st, steps, env.machine_id, local)  # an ETA from the start, not after the first
        if budget_s:
            from quantscope.sweep.budget import FINISH_S, Budget
            from quantscope.sweep.progress import projected_speeds, weight_bits

            timer = Budget(budget_s, guessed=set(guessed), speeds=projected_speeds(steps, env.machine_id, st, local),
                           bits=weight_bits(steps))
            console.print(f"budget: {budget_s:g} s ({FINISH_S:g} s of it kept for the table and the report), the "
                          "reference first, then the fastest by projection, 8-bit and 4-bit weights in turn; a "
                          "configuration that no longer fits is deferred to the next sweep (--budget 0: none)",
                          highlight=False)
        with SweepDisplay(steps, guessed=guessed) as display:
            hooks = {"on_start": display.on_start, "on_done": display.on_done, "on_wait": display.on_wait}
            if repeat == 1:
                outcome = run_sweep(st, steps, env, timeout, executor=runs_on, budget=timer,
                                    on_defer=display.on_defer, **hooks)
            else:  # N passes; the display redraws each pass over the same configurations
                outcome = run_repeated(st, specs, env, timeout, repeat, force, machines, executor=runs_on, **hooks)
        rows = [(row.run_id, row.result) for row in outcome.rows]
        notes = []
        if timer is not None:
            from quantscope.sweep.budget import deferred_notes

            notes = deferred_notes(steps, timer)
        finish(console, rows, base, goal, None if no_report else report, st, wide, notes)
        if timer is not None and timer.overrun_s() > 0:
            console.print(f"[yellow]budget: ended {timer.overrun_s():.0f} s past the {budget_s:g} s budget (a run took "
                          "longer than expected; none is stopped for the budget)[/]", highlight=False)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts().items()))
    if outcome.deferred:
        counts += f", {len(outcome.deferred)} deferred (budget)"
    console.print(f"sweep {'interrupted' if outcome.interrupted else 'done'}: {counts}", highlight=False)
    raise typer.Exit(outcome.exit_code)


def workload_lines(base: RunSpec) -> list[str]:
    from quantscope.spec import QualitySpec

    w, q = base.workload, base.quality
    lines = [f"workload: P={w.prompt_tokens} G={w.gen_tokens} B={w.batch}, {w.min_reps}-{w.max_reps} reps "
             f"within {w.max_seconds:g} s (stop at 95% CI <= {w.ci_target:g} x mean)"]
    if not q.enabled:
        lines.append("quality: not measured (--no-quality or a synthetic model)")
    elif q.max_tokens < QualitySpec().max_tokens:
        lines.append(f"[yellow]quality: {q.max_tokens} scored tokens per configuration (the quick workload; "
                     f"the full pass scores {QualitySpec().max_tokens}): wider standard errors, "
                     "set --quality-tokens for more[/]")
    else:
        lines.append(f"quality: {q.max_tokens} scored tokens per configuration, {q.recipe} recipe, ctx {q.ctx}")
    if q.enabled and q.max_seconds:
        lines.append(f"quality: a compared configuration's pass ends after the window crossing {q.max_seconds:g} s "
                     "(whole windows; the reference scores all; --quality-seconds 0 for no cap)")
    return lines


def plan_budget(budget: float | None, default_matrix: bool, repeat: int, executor: str) -> float | None:
    """The sweep's time budget in seconds, or None: --budget, else DEFAULT_S for the default matrix on the
    local executor; one line for a budget that cannot apply.

    >>> plan_budget(None, True, 1, "local"), plan_budget(None, False, 1, "local"), plan_budget(0, True, 1, "local")
    (600.0, None, None)
    """
    from quantscope.sweep.budget import DEFAULT_S

    if budget is not None and not budget >= 0:  # also refuses nan
        raise UserError(f"--budget must be >= 0 seconds (0: no budget), got {budget:g}")
    if budget is None:
        return DEFAULT_S if default_matrix and repeat == 1 and executor == "local" else None
    if budget and (repeat != 1 or executor != "local"):
        raise UserError("--budget plans one pass on this machine: not with --repeat or --executor ray")
    return budget or None


def finish(console, rows, base: RunSpec, goal: str, report: Path | None, st, wide: bool = False,
           notes: list[str] | None = None) -> None:
    """The comparison table, the recommendation, and the report, for the rows of this sweep; `notes` (the
    budget's deferrals) are printed after the table and written into the report."""
    from rich.markup import escape

    from quantscope.advise.recommend import Constraints, recommend
    from quantscope.advise.text import recommendation_lines
    from quantscope.analysis.compare import capped_notes, contention_notes, pool_processes
    from quantscope.analysis.summary import default_baseline, summarize
    from quantscope.sweep.table import print_comparison

    if not rows:
        return
    summaries = [summarize(i, r) for i, r in rows]
    ok = [s for s in summaries if s.ok]
    baseline = default_baseline(summaries)
    print_comparison(summaries, baseline, f"{base.model.label}: {len(ok)} of {len(rows)} configurations ok",
                     console, wide)
    for note in contention_notes(rows) + capped_notes(rows) + (notes or []):
        console.print(f"[yellow]{escape(note)}[/]", highlight=False)
    # one row per configuration: rows from several processes (--repeat) pooled, the process the unit
    ranked = [summarize(i, r) for i, r in pool_processes(rows)]
    for line in recommendation_lines(recommend(ranked, goal, Constraints())):
        console.print(line, highlight=False)
    if report is not None:
        from quantscope.report.build import build_report

        path = build_report(rows, report, baseline=None, goal=goal, constraints=Constraints(), notes=list(notes or []),
                            st=st)
        console.print(f"report: {path.resolve()}", highlight=False)
