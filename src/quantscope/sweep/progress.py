"""The sweep's progress bar: one line per finished configuration and an ETA from measured durations.

rich's own TimeRemainingColumn divides by a recent completion rate, which says nothing while one
configuration takes minutes. Here the remaining time is the sum of each remaining configuration's
expected duration: its own last duration on this machine when the store has one (plan), else a guess
made before the first run starts (`guess_durations`: the same model's stored runs on this machine,
scaled by the size of the timed work; with none, a size-based guess from the hardware model's
projection of this machine, `projected_duration`), else the mean of those run so far in this sweep.
Reused rows cost nothing. A guess is shown as "ETA ~".
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from quantscope.present.labels import spec_label
from quantscope.present.units import fmt_clock, fmt_seconds
from quantscope.sweep.execute import Row, Step

MARKS = {"ok": "[green]ok[/]", "unsupported": "[yellow]unsupported[/]", "interrupted": "[magenta]interrupted[/]"}


def expected_remaining_s(steps: list[Step], index: int, started: float | None, ran_s: list[float],
                         now: float, done: set[int] | None = None) -> float | None:
    """Seconds left: the running step's expected rest plus every later step's expected duration.

    `done`: the steps finished or deferred, for a sweep that runs out of order (a time budget's order);
    None: every step before `index`.

    >>> expected_remaining_s([Step(None, expected_s=10.0), Step(None, expected_s=20.0)], 0, 0.0, [], 4.0)
    26.0
    >>> expected_remaining_s([Step(None, expected_s=10.0), Step(None, expected_s=20.0)], 1, None, [], 0.0, {1})
    10.0
    """
    mean = sum(ran_s) / len(ran_s) if ran_s else None
    pending = range(index, len(steps)) if done is None else [i for i in range(len(steps)) if i not in done]
    total = 0.0
    for i in pending:
        step = steps[i]
        if step.reuse is not None:
            continue
        guess = step.expected_s if step.expected_s is not None else mean
        if guess is None:
            return None
        if i == index and started is not None:
            guess = max(guess - (now - started), 0.0)
        total += guess
    return total


def timed_tokens(spec) -> int:
    """The size of a run's timed work in tokens, for scaling a stored duration to another workload.

    >>> from quantscope.spec import ModelSpec, RunSpec, WorkloadSpec
    >>> timed_tokens(RunSpec(model=ModelSpec("synthetic", "x"), workload=WorkloadSpec(prompt_tokens=8, gen_tokens=4)))
    132
    """
    w = spec.workload
    return (w.warmup + w.max_reps) * (w.prompt_tokens + w.gen_tokens) * w.batch


START_S = 5.0  # a worker's start-up and imports before its model loads (the progress phases here: 2-5 s)


def _projection(spec, hw, calibration):
    """The hardware model's projection of `spec` on `hw`, or None where it has none (an unknown shape or
    format, or a user's GGUF, which is parsed in the worker only: models/gguf.py)."""
    from quantscope.errors import QuantscopeError
    from quantscope.hardware.observations import runtime_of
    from quantscope.hardware.project import project
    from quantscope.models.shape import shape_for_spec

    if spec.model.source == "gguf":
        return None
    w, q = spec.workload, spec.quant
    try:
        p = project(shape_for_spec(spec.model), hw, spec.backend, q.method, q.dtype, q.params,
                    calibration=calibration, batch=w.batch, prompt=w.prompt_tokens,
                    context=w.prompt_tokens + w.gen_tokens, runtime=runtime_of(spec))
    except (QuantscopeError, OSError, KeyError, ValueError):
        return None
    if not p.supported or not p.ttft_s or not p.token_latency_s or not p.prefill_tps:
        return None
    return p


def projected_duration(spec, hw, calibration) -> float | None:
    """A size-based guess of a run's wall time from the hardware model's projection of `hw` (this
    machine): start-up, the weights read once, warm-up + the minimum repetitions of the timed work,
    and the quality pass at the projected prefill speed. None where the hardware model has no projection.

    >>> from quantscope.hardware.calibrate import Calibration
    >>> from quantscope.hardware.catalog import get_hardware
    >>> from quantscope.spec import ModelSpec, RunSpec
    >>> projected_duration(RunSpec(model=ModelSpec("synthetic", "tiny-llama")), get_hardware("t4"),
    ...                    Calibration([])) > START_S
    True
    """
    p = _projection(spec, hw, calibration)
    if p is None:
        return None
    w = spec.workload
    rep_s = p.ttft_s + w.gen_tokens * p.token_latency_s
    quality_s = spec.quality.max_tokens / p.prefill_tps if spec.quality.enabled else 0.0
    return START_S + p.memory["weights"] / hw.bandwidth_Bps + (w.warmup + w.min_reps) * rep_s + quality_s


def projected_speeds(steps: list[Step], machine_id: str, st, local=None) -> dict[int, float]:
    """Projected decode tok/s of each step to run (the hardware model on this machine), for a budget's
    order: the configurations most likely to be recommended measured first. Steps with none are left out."""
    todo = [i for i, step in enumerate(steps) if step.reuse is None]
    if not todo:
        return {}
    hw, calibration = (local or local_projection)(st, machine_id, steps[todo[0]].spec.workload.threads)
    out = {}
    for i in todo:
        p = _projection(steps[i].spec, hw, calibration)
        if p is not None:
            out[i] = 1.0 / p.token_latency_s
    return out


def weight_bits(steps: list[Step]) -> dict[int, float]:
    """Bits per weight of each step's linear layers (hardware/formats.py's layout), for a budget's order;
    steps whose layout is unknown (a user's GGUF, an unknown method) are left out."""
    from quantscope.errors import QuantscopeError
    from quantscope.hardware.formats import layout
    from quantscope.models.shape import shape_for_spec

    out = {}
    for i, step in enumerate(steps):
        spec = step.spec
        if step.reuse is not None or spec.model.source == "gguf":
            continue
        try:
            q = spec.quant
            out[i] = 8.0 * layout(spec.backend, q.method, q.dtype, shape_for_spec(spec.model), q.params).linear_bpw
        except (QuantscopeError, OSError, KeyError, ValueError):
            continue
    return out


def local_projection(st, machine_id: str, threads: int | None):
    """This machine as the hardware model sees it, and a calibration from the store's ok rows: the
    microbenchmarks are measured on first use (seconds) and kept per machine id."""
    from quantscope.env import physical_cores
    from quantscope.hardware.calibrate import build_calibration
    from quantscope.hardware.catalog import local_hardware

    hw = local_hardware(threads or physical_cores())  # its peaks are the GEMM cache's: not read twice
    return hw, build_calibration(st.results(status="ok", machine_id=machine_id, limit=200), machine_id,
                                 dict(hw.peak_flops))


def guess_durations(st, steps: list[Step], machine_id: str, local=local_projection) -> set[int]:
    """Give each step with no duration of its own a guess from the stored runs of the same model on this
    machine: the median over them of duration x (this step's timed tokens / theirs); with no such run,
    a size-based guess (`projected_duration` on this machine). The steps guessed (their expected_s set
    here) are returned; a step with neither waits for the first run to end.
    """
    import statistics

    guessed = set()
    by_model: dict[str, list[tuple[float, int]]] = {}
    for i, step in enumerate(steps):
        if step.reuse is not None or step.expected_s is not None:
            continue
        ref = step.spec.model.ref
        if ref not in by_model:
            by_model[ref] = [(r.duration_s, timed_tokens(r.spec)) for _, r in
                             st.results(machine_id=machine_id, model=ref, status="ok", limit=50)]
        stored = by_model[ref]
        if stored:
            step.expected_s = statistics.median(d * timed_tokens(step.spec) / max(t, 1) for d, t in stored)
            guessed.add(i)
    rest = [i for i, step in enumerate(steps) if step.reuse is None and step.expected_s is None]
    if rest:
        hw, calibration = local(st, machine_id, steps[rest[0]].spec.workload.threads)
        for i in rest:
            steps[i].expected_s = projected_duration(steps[i].spec, hw, calibration)
            if steps[i].expected_s is not None:
                guessed.add(i)
    return guessed


class _Eta(ProgressColumn):
    def __init__(self, display: SweepDisplay) -> None:
        super().__init__()
        self.display = display

    def render(self, task) -> Text:
        left = self.display.remaining()
        if left is None:
            return Text("ETA ?", style="progress.remaining")
        guess = any(i >= self.display.index for i in self.display.guessed)
        return Text(f"ETA {'~' if guess else ''}{fmt_clock(left)}", style="progress.remaining")


class SweepDisplay:
    """Hooks for run_sweep: a rich progress bar on stderr, a line per configuration above it."""

    def __init__(self, steps: list[Step], console: Console | None = None, guessed: set[int] | None = None) -> None:
        self.steps = steps
        self.guessed = guessed or set()  # steps whose duration is a guess (guess_durations): ETA "~"
        self.console = console or Console(stderr=True)
        self.index = 0
        self.done: set[int] = set()  # finished or deferred
        self.started: float | None = None
        self.ran_s: list[float] = []
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), _Eta(self), console=self.console, transient=True)
        self.task = self.progress.add_task("sweep", total=len(steps))

    def remaining(self) -> float | None:
        return expected_remaining_s(self.steps, self.index, self.started, self.ran_s, time.monotonic(), self.done)

    def __enter__(self) -> SweepDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_start(self, i: int, step: Step) -> None:
        self.index = i
        self.started = time.monotonic()
        self.progress.update(self.task, description=f"[bold]{escape(spec_label(step.spec))}")

    def on_wait(self, holder) -> None:
        """Another sweep on this store holds what this one waits for (store/claims.py)."""
        self.progress.console.print(f"[dim]waiting: another sweep ({escape(str(holder))}) is measuring on this "
                                    "machine; its rows are taken, not measured twice[/]", highlight=False)

    def on_defer(self, i: int, step: Step, why: str) -> None:
        """The time budget put this step off to the next sweep (sweep/budget.py)."""
        self.done.add(i)
        self.progress.advance(self.task)
        self.progress.console.print(f"[dim][{i + 1}/{len(self.steps)}][/] {escape(spec_label(step.spec))} "
                                    f"[yellow]deferred[/]: {escape(why)}", highlight=False)

    def on_done(self, i: int, row: Row) -> None:
        if not row.reused and row.result.status != "interrupted":
            self.ran_s.append(time.monotonic() - (self.started or time.monotonic()))
        self.done.add(i)
        self.index = i + 1
        self.started = None
        self.progress.advance(self.task)
        self.progress.console.print(row_line(i, len(self.steps), row), highlight=False)


def row_line(i: int, n: int, row: Row) -> str:
    """`[3/16] ort/int8 ok 41.2 s  decode 88.1 tok/s` (rich markup; user text escaped)."""
    r = row.result
    spec = row.spec
    name = escape(spec_label(spec))
    mark = MARKS.get(r.status, f"[red]{r.status}[/]")
    if row.reused:
        where = f"reused run {row.run_id} (key {spec.key_hash()}; --force to measure again)"
        return f"[dim][{i + 1}/{n}][/] {name} {mark} [dim]{escape(where)}[/]"
    line = f"[dim][{i + 1}/{n}][/] {name} {mark} in {fmt_seconds(r.duration_s)}"
    if "ray_node_id" in r.info:  # a Ray sweep: which node measured it
        line += f" [dim]on node {escape(str(r.info.get('ray_node_ip')))} {escape(r.info['ray_node_id'][:8])}[/]"
    decode = r.get("decode_tps")
    if decode is not None:
        line += f"  decode {decode.value:.4g} tok/s"
    kld = r.get("kld")
    if kld is not None:
        line += f"  KLD {kld.value:.3g} nat"
    if r.status != "ok":
        line += f": {escape((r.reason or '')[:160])}"
    return line
