"""`quantscope search`: a format per layer under a budget, with costs measured on the target (HAQ).

The logic is methods/haq/ (session.py); this parses and prints. Figures are labelled: "measured"
(written files timed here through llama.cpp), "predicted" (the cost table: measured per shape here,
or projected for catalog hardware) and "proxy KLD" (calibration text, not the evaluation text: judge
the exported policy with `quantscope run --policy FILE`, which runs the full quality pass).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import UserError
from quantscope.present.units import MiB

Opt = typer.Option


def _budget(budget_bytes: float | None, budget_bpw: float | None, budget_latency_ms: float | None,
            budget_latency_of: str | None):
    from quantscope.methods.haq.search import Budget

    given = [(k, v) for k, v in (("bytes", budget_bytes), ("bpw", budget_bpw), ("latency_ms", budget_latency_ms),
                                 ("latency_of", budget_latency_of)) if v is not None]
    if len(given) != 1:
        raise UserError("give exactly one budget: --budget-bytes N, --budget-bpw X, --budget-latency-ms T or "
                        "--budget-latency-of FORMAT")
    kind, value = given[0]
    if kind != "latency_of" and not float(value) > 0:
        raise UserError(f"--budget-{kind.replace('_', '-')} must be > 0, got {value}")
    return Budget(kind, value)


def policy_grid(layers, policy) -> list[str]:
    """One line per block: the format of each kind (q k v o gate up down)."""
    from quantscope.methods.haq.space import KINDS

    kinds = [k for k in KINDS if any(lay.kind == k for lay in layers)]
    rows: dict[int, dict[str, str]] = {}
    for lay, fmt in zip(layers, policy, strict=True):
        rows.setdefault(lay.block, {})[lay.kind] = fmt
    head = "  block " + " ".join(f"{k.split('_')[-1]:>16}" for k in kinds)
    return [head] + [f"  {b:>5} " + " ".join(f"{r.get(k, '-'):>16}" for k in kinds) for b, r in sorted(rows.items())]


def _cost(value: float, resource: str) -> str:
    return f"{value / MiB:.2f} MiB" if resource == "bytes" else f"{value * 1e3:.3f} ms/step"


def report_lines(rep) -> list[str]:
    import collections

    req, lines = rep.request, []
    lo, hi = rep.budget_range
    if req.budget.kind == "bpw":  # bits per weight of the searched Linears, as asked
        params = sum(lay.params for lay in rep.layers)
        span = f"{rep.budget_value * 8 / params:.3f} bits/weight (policies span {lo * 8 / params:.3f} .. " \
               f"{hi * 8 / params:.3f})"
    else:
        span = f"{_cost(rep.budget_value, rep.resource)} (policies span {_cost(lo, rep.resource)} .. " \
               f"{_cost(hi, rep.resource)})"
    lines.append(f"search {req.backend} on {req.model.label}: {len(rep.layers)} layers x formats "
                 f"{', '.join(rep.formats)}; budget {span}")
    if rep.table is not None:
        lines.append(f"cost table: {rep.table.provenance.upper()} for {rep.table.hardware}; {rep.table.notes[0]}")
    lines.append(f"quality proxy: mean KLD vs the FP32 reference on {rep.calibration.get('samples')} x "
                 f"{rep.calibration.get('seq_len')} calibration tokens ({rep.calibration.get('source')})")
    for f in rep.found:
        counts = collections.Counter(f.policy)
        wbytes = f.weight_bytes
        pred = f", predicted {rep.table.policy_s(rep.layers, f.policy) * 1e3:.3f} ms/step" if rep.table else ""
        lines.append(f"\n{f.method.upper()}: proxy KLD {f.proxy_kld:.5f}, weights {wbytes / MiB:.2f} MiB{pred}, "
                     f"search {f.seconds:.1f} s; " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
        m = rep.measured.get(f.method)
        if m:
            lines.append(f"  measured: file {m['file_bytes'] / MiB:.2f} MiB, decode "
                         f"{m['median_step_s'] * 1e3:.3f} ms/step (median of {len(m['step_s'])} runs)")
        lines += [f"  note: {n}" for n in f.notes]
        lines += policy_grid(rep.layers, f.policy)
    lines.append("\nuniform formats (same embedding):")
    lines.append(f"  {'format':<18} {'weights MiB':>11} {'proxy KLD':>10} {'predicted ms':>12} {'measured ms':>11} "
                 f"{'file MiB':>9}")
    for u in rep.uniform:
        m = rep.measured.get(f"uniform {u['format']}", {})
        pred = f"{u['predicted_s'] * 1e3:.3f}" if u["predicted_s"] is not None else "-"
        meas = f"{m['median_step_s'] * 1e3:.3f}" if m else "-"
        size = f"{m['file_bytes'] / MiB:.2f}" if m else "-"
        lines.append(f"  {u['format']:<18} {u['bytes'] / MiB:>11.2f} {u['proxy_kld']:>10.5f} {pred:>12} "
                     f"{meas:>11} {size:>9}")
    lines += [f"note: {n}" for n in rep.notes]
    for path in rep.exported:
        lines.append(f"exported {path}")
    toml = next((p for p in rep.exported if p.endswith(".toml")), None)
    if toml:
        # torchao's CPU int4 path runs in bf16 (FACTS.md): the policy's run needs that dtype
        bf16 = req.backend == "torchao" and any("int4-weight-only" in f.policy for f in rep.found)
        lines.append(f"full quality pass: quantscope run --model {req.model.label} --backend {req.backend} "
                     f"--policy {toml}" + (" --dtype bf16" if bf16 else ""))
    return lines


def search_cmd(
    backend: Annotated[str, Opt(help="llamacpp | torchao: the runtime that will execute the policy.")] = "llamacpp",
    model: Annotated[str | None, Opt("--model", "-m", help="bundled | HF folder | GGUF file | synthetic:NAME")] = None,
    budget_bytes: Annotated[float | None, Opt(help="Weight bytes of the whole file.")] = None,
    budget_bpw: Annotated[float | None, Opt(help="Bits per weight of the searched Linears.")] = None,
    budget_latency_ms: Annotated[float | None, Opt(help="Decode step in ms, by the target's cost table.")] = None,
    budget_latency_of: Annotated[str | None, Opt(help="As fast as this uniform format on the target (one "
                                                 "budget across hardware), by the cost table.")] = None,
    hardware: Annotated[str, Opt(help="local (measured here) | a catalog id (projected).")] = "local",
    method: Annotated[list[str] | None, Opt(help="ddpg | ilp (repeatable; default both).")] = None,
    formats: Annotated[str | None, Opt(help="Comma-separated formats to search (default: all the runtime "
                                       "executes per layer).")] = None,
    episodes: Annotated[int, Opt(help="DDPG episodes (HAQ used 600).")] = 120,
    warmup: Annotated[int, Opt(help="DDPG warm-up episodes of random actions (HAQ: 20).")] = 20,
    embed: Annotated[str, Opt(help="llama.cpp type of the token embedding / output (not searched).")] = "q8_0",
    export: Annotated[Path | None, Opt(help="Write the policy: a GGUF (llamacpp, with a .toml beside) or "
                                       "a policy TOML (torchao).")] = None,
    calib_samples: Annotated[int, Opt(help="Calibration windows for the KLD proxy.")] = 2,
    calib_seq_len: Annotated[int, Opt(help="Tokens per calibration window.")] = 128,
    threads: Annotated[int | None, Opt(help="Threads for timing (default: physical cores).")] = None,
    refresh_table: Annotated[bool, Opt(help="Re-measure the cost table.")] = False,
    measure: Annotated[bool, Opt(help="Time the written policies and uniform files.")] = True,
    seed: Annotated[int, Opt(help="Seed (synthetic weights, the agent).")] = 0,
) -> None:
    """Search a format per layer under a budget (HAQ's DDPG and an ILP baseline), with costs from the target.

    Example: quantscope search --backend llamacpp --budget-bpw 5 --method ilp --export /tmp/p.gguf
    """
    from quantscope.methods.haq.session import SearchRequest, run_search
    from quantscope.models import parse_model

    budget = _budget(budget_bytes, budget_bpw, budget_latency_ms, budget_latency_of)
    req = SearchRequest(model=parse_model(model), backend=backend, budget=budget, hardware=hardware,
                        methods=tuple(method or ("ddpg", "ilp")),
                        formats=tuple(f for f in (formats or "").split(",") if f.strip()) or None,
                        episodes=episodes, warmup=warmup, embed=embed.lower(), export=export, seed=seed,
                        calib_samples=calib_samples, calib_seq_len=calib_seq_len, threads=threads,
                        refresh_table=refresh_table, measure=measure)
    with _Progress() as progress:
        rep = run_search(req, progress)
    typer.echo("\n".join(report_lines(rep)))


class _Progress:
    """A rich progress bar on stderr: one task per phase (sensitivity, episodes), a status line otherwise."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.bar.__enter__()
        self.tasks: dict[str, int] = {}
        return self

    def __call__(self, phase: str, done: int, total: int) -> None:
        if total <= 0:
            self.bar.console.print(f"[dim]{phase}[/dim]")
            return
        if phase not in self.tasks:
            self.tasks[phase] = self.bar.add_task(phase, total=total)
        self.bar.update(self.tasks[phase], completed=done)

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)
