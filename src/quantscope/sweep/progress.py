"""The sweep's progress bar: one line per finished configuration and an ETA from measured durations.

rich's own TimeRemainingColumn divides by a recent completion rate, which says nothing while one
configuration takes minutes. Here the remaining time is the sum of each remaining configuration's
expected duration: its own last duration on this machine when the store has one, else the mean of
those run so far in this sweep (unknown until one has finished). Reused rows cost nothing.
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
                         now: float) -> float | None:
    """Seconds left: the running step's expected rest plus every later step's expected duration.

    >>> expected_remaining_s([Step(None, expected_s=10.0), Step(None, expected_s=20.0)], 0, 0.0, [], 4.0)
    26.0
    """
    mean = sum(ran_s) / len(ran_s) if ran_s else None
    total = 0.0
    for i in range(index, len(steps)):
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


class _Eta(ProgressColumn):
    def __init__(self, display: SweepDisplay) -> None:
        super().__init__()
        self.display = display

    def render(self, task) -> Text:
        left = self.display.remaining()
        if left is None:
            return Text("ETA ?", style="progress.remaining")
        return Text(f"ETA {fmt_clock(left)}", style="progress.remaining")


class SweepDisplay:
    """Hooks for run_sweep: a rich progress bar on stderr, a line per configuration above it."""

    def __init__(self, steps: list[Step], console: Console | None = None) -> None:
        self.steps = steps
        self.console = console or Console(stderr=True)
        self.index = 0
        self.started: float | None = None
        self.ran_s: list[float] = []
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), _Eta(self), console=self.console, transient=True)
        self.task = self.progress.add_task("sweep", total=len(steps))

    def remaining(self) -> float | None:
        return expected_remaining_s(self.steps, self.index, self.started, self.ran_s, time.monotonic())

    def __enter__(self) -> SweepDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_start(self, i: int, step: Step) -> None:
        self.index = i
        self.started = time.monotonic()
        self.progress.update(self.task, description=f"[bold]{escape(spec_label(step.spec))}")

    def on_done(self, i: int, row: Row) -> None:
        if not row.reused and row.result.status != "interrupted":
            self.ran_s.append(time.monotonic() - (self.started or time.monotonic()))
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
    decode = r.get("decode_tps")
    if decode is not None:
        line += f"  decode {decode.value:.4g} tok/s"
    kld = r.get("kld")
    if kld is not None:
        line += f"  KLD {kld.value:.3g} nat"
    if r.status != "ok":
        line += f": {escape((r.reason or '')[:160])}"
    return line
