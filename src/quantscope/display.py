"""The block `quantscope run` prints for one result. Stored values are SI; present.units converts them."""

from __future__ import annotations

import math

from quantscope.present.labels import run_label
from quantscope.present.units import MiB, fmt_num, fmt_rate_gbps, fmt_seconds
from quantscope.result import Measurement, Result


def mean_sd(m: Measurement | None, scale: float = 1.0, digits: int = 4) -> str:
    if m is None:
        return "-"
    s = m.stats
    if s.n < 2:
        return fmt_num(s.mean * scale, digits)
    return f"{fmt_num(s.mean * scale, digits)} ± {fmt_num(s.sd * scale, 2)} (N={s.n})"


def quality_lines(r: Result) -> list[str]:
    if r.get("nll") is None:
        note = r.info.get("quality")
        return [f"  quality     {note}"] if note else []
    from quantscope.quality.summary import describe_quality

    return describe_quality(r)


def summary_lines(r: Result) -> list[str]:
    """The block `quantscope run` prints."""
    head = f"{run_label(r.spec)}: {r.status} in {fmt_seconds(r.duration_s)}"
    if r.status != "ok":
        return [head, f"  reason: {r.reason}"]
    g = r.get
    info = r.info
    lines = [head + f"  ({info.get('reps')} reps, stopped by {info.get('stop_rule')}"
             + (f", {info['discarded_stalls']} stalled reps redone" if info.get("discarded_stalls") else "") + ")"]
    lat = g("token_latency_s").stats
    lines.append(f"  decode      {mean_sd(g('decode_tps'))} tok/s   per-token p50/p90/p99 "
                 f"{lat.p50 * 1e3:.2f}/{lat.p90 * 1e3:.2f}/{lat.p99 * 1e3:.2f} ms")
    lines.append(f"  prefill     {mean_sd(g('prefill_tps'))} tok/s   TTFT {mean_sd(g('ttft_s'), 1e3)} ms")
    mem = f"  memory      peak RSS {fmt_num(g('peak_rss_bytes').value / MiB, 4)} MiB (worker process)   " \
          f"weights {fmt_num(g('weight_bytes').value / MiB, 4)} MiB"
    if g("file_bytes"):
        mem += f"   file {fmt_num(g('file_bytes').value / MiB, 4)} MiB"
    lines.append(mem)
    for name in ("torch_max_allocated_bytes", "torch_max_reserved_bytes", "nvml_process_bytes"):
        if g(name):
            lines.append(f"  {name:<11} {fmt_num(g(name).value / MiB, 5)} MiB")
    bw, frac = g("achieved_bandwidth_Bps"), g("bandwidth_fraction")
    if bw and frac:
        machine = bw.meta.get("machine_read_Bps", math.nan)
        lines.append(f"  bandwidth   {fmt_rate_gbps(bw.value)} achieved (weights x steps/s) = "
                     f"{frac.value * 100:.1f} % of this machine's measured {fmt_rate_gbps(machine)} "
                     f"(read-only, {bw.meta.get('threads')} threads)")
    e = g("energy_j_per_token")
    lines.append(f"  energy      {mean_sd(e)} J/token" if e else f"  energy      {info.get('energy')}")
    lines += quality_lines(r)
    if r.spec.tasks.names:
        from quantscope.quality.tasks.outcomes import describe_tasks

        lines += describe_tasks(r)
    return lines


PHASE_NAMES = {"start": "start", "load": "load", "convert": "convert", "warmup": "warm-up", "reps": "reps",
               "quality": "quality"}


def phase_text(report: dict) -> str:
    """One progress report in words: `rep 3 of 3-10: decode 41.2 tok/s, 95% CI ±3.1 % (target 2 %)`.

    >>> phase_text({"phase": "quality", "detail": "window 2 of 8 (512 tokens each)", "tokens_per_s": 1234.5})
    'window 2 of 8 (512 tokens each), 1,234 tok/s'
    """
    text = report.get("detail", "")
    if report.get("decode_tps") is not None:
        text += f": decode {fmt_num(report['decode_tps'], 4)} tok/s"
        if report.get("ci_rel") is not None:
            text += f", 95% CI ±{report['ci_rel'] * 100:.1f} % (target {report.get('ci_target', 0) * 100:g} %)"
    if report.get("tokens_per_s") is not None:
        text += f", {report['tokens_per_s']:,.0f} tok/s"
    return text


class RunProgress:
    """`quantscope run`'s live phases on stderr: a line per finished phase with its time, and a spinner
    for the current one. Draws nothing when stderr is not a terminal or `quiet` (then it only collects).

    >>> with RunProgress(quiet=True) as p:
    ...     p.on_progress({"phase": "load", "detail": "loading"})
    >>> [name for name, _, _ in p.phases]
    ['start', 'load']
    """

    def __init__(self, quiet: bool = False, console=None) -> None:
        import time

        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.quiet = quiet or not self.console.is_terminal
        self.clock = time.monotonic
        self.phases: list[tuple[str, str, float]] = [("start", "starting the worker (imports)", self.clock())]
        self.status = None

    def __enter__(self) -> RunProgress:
        if not self.quiet:
            self.status = self.console.status(self, spinner="dots")  # __rich__ redraws the seconds
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()
            if exc[0] is None:
                self._print_done()

    def __rich__(self):
        from rich.text import Text

        return Text.from_markup(self._line())

    def _line(self) -> str:
        from rich.markup import escape

        name, text, t0 = self.phases[-1]
        return f"[bold]{PHASE_NAMES.get(name, name)}[/] {escape(text)} [dim]{self.clock() - t0:.0f} s[/]"

    def _print_done(self) -> None:
        from rich.markup import escape

        name, text, t0 = self.phases[-1]
        self.console.print(f"  [dim]{PHASE_NAMES.get(name, name):<8} {fmt_seconds(self.clock() - t0):>7}[/]  "
                           f"{escape(text)}", highlight=False)

    def on_progress(self, report: dict) -> None:
        """A report from the worker (quantscope.progress): a new phase ends the last one's line."""
        name = str(report.get("phase", "?"))
        if name != self.phases[-1][0]:
            if self.status is not None:
                self._print_done()
            self.phases.append((name, phase_text(report), self.clock()))
        else:
            self.phases[-1] = (name, phase_text(report), self.phases[-1][2])
