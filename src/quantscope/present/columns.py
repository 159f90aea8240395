"""The table of columns: where a row, reduced to numbers by analysis.summary.summarize, becomes cells.

A Column is a name, a unit, a formatter (`value`, plus an optional `note` shown in brackets: the
number of repetitions, the reference's mark) and whether higher is better. The same Column makes a
console cell (`cell`), an HTML cell, and a phrase of the recommendation's evidence (`phrase`), so a
figure reads the same everywhere. The views below are lists of columns; a column that needs a
baseline (ratios, differences) is built for it by a factory.

Speed columns show mean ± 95 % CI of the mean (`_CI`) or ± the sample SD (`_SD`, `results`, which
describes single runs); quality columns show ± the standard error (llama-perplexity's formulas).

>>> DECODE_CI.header, PEAK_RSS.header, KLD.higher_is_better, RUN.higher_is_better
('decode [tok/s]', 'peak RSS [MiB]', False, None)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quantscope.analysis.summary import Summary
from quantscope.present.labels import REFERENCE
from quantscope.present.units import MiB, fmt_mib, fmt_pm, fmt_rate_gbps

NONE = "-"  # the cell of a figure that was not measured


@dataclass(frozen=True)
class Column:
    name: str  # as prose says it: "decode", "peak RSS"
    unit: str  # shown in the header and after the value in prose; "" when dimensionless
    value: Callable[[Summary], str]  # the figure's text, NONE when not measured
    note: Callable[[Summary], str] | None = None  # in brackets after the value, e.g. "N=5"
    spread: str = ""  # what ± means: "95% CI" (of the mean), "SD" (of the repetitions), "SE"; prose says it
    higher_is_better: bool | None = None  # None: not a figure of merit (run id, label, status)
    text: bool = False  # words, left-aligned; numbers are right-aligned
    whole: bool = False  # never wrapped in a console table (what a reader scans for)
    optional: bool = False  # left out of a table when no row has it (quality without a quality pass)

    @property
    def header(self) -> str:
        return f"{self.name} [{self.unit}]" if self.unit else self.name

    def _note(self, s: Summary) -> str:
        return self.note(s) if self.note is not None else ""

    def cell(self, s: Summary) -> str:
        """The table cell: value, then the note in brackets."""
        v = self.value(s)
        n = self._note(s) if v != NONE else ""
        return f"{v} ({n})" if n else v

    def phrase(self, s: Summary) -> str:
        """The figure in prose, `decode 12.35 ± 0.41 tok/s (95% CI, N=5)`; "" when not measured."""
        v = self.value(s)
        if v == NONE:
            return ""
        notes = ", ".join(n for n in (self.spread if "±" in v else "", self._note(s)) if n)
        return f"{self.name} {v}" + (f" {self.unit}" if self.unit else "") + (f" ({notes})" if notes else "")


def _stat(attr: str, spread: str = "ci", scale: float = 1.0, digits: int = 4) -> Callable[[Summary], str]:
    def value(s: Summary) -> str:
        st = getattr(s, attr)
        if st is None:
            return NONE
        err = st.ci95 if spread == "ci" else st.sd
        return fmt_pm(st.mean * scale, err * scale, digits)
    return value


def _n(attr: str) -> Callable[[Summary], str]:
    return lambda s: f"N={getattr(s, attr).n}"


def _bytes(attr: str) -> Callable[[Summary], str]:
    return lambda s: fmt_mib(getattr(s, attr)) if getattr(s, attr) else NONE


def _speed(name: str, attr: str, spread: str, with_n: bool, unit: str = "tok/s", scale: float = 1.0,
           higher: bool = True, digits: int = 4) -> Column:
    return Column(name, unit, _stat(attr, spread, scale, digits), _n(attr) if with_n else None,
                  "95% CI" if spread == "ci" else "SD", higher)


def _kld(s: Summary) -> str:
    if not s.kld:
        return NONE
    return "0" if s.is_reference else fmt_pm(*s.kld, 3, 1)


def _top1(s: Summary) -> str:
    if not s.top1 or s.is_reference:
        return NONE  # the reference's 100 % says nothing
    return fmt_pm(s.top1[0] * 100, s.top1[1] * 100, 4, 2)


def _token_p50_p99(s: Summary) -> str:
    t = s.token_latency
    return f"{t.p50 * 1e3:.3g} / {t.p99 * 1e3:.3g}" if t else NONE


def _status_with_reason(s: Summary) -> str:
    return s.status if s.ok else f"{s.status}: {(s.result.reason or '')[:60]}"


def _machine_bandwidth(s: Summary) -> str:
    bw = s.result.get("achieved_bandwidth_Bps")
    machine = bw.meta.get("machine_read_Bps") if bw is not None else None
    return f"{fmt_rate_gbps(machine)} ({bw.meta.get('threads')} threads)" if machine else NONE


def _others_cpu(s: Summary) -> str:
    c = s.result.info.get("contention") or {}
    return f"{c['others_cores_mean']:.2f}" if c.get("measured") else NONE


def _contended(s: Summary) -> str:
    """The flag beside others' CPU use (metrics/contention.py): the row's speed is what was left over."""
    return "contended" if (s.result.info.get("contention") or {}).get("flagged") else ""


def _gpu(name: str, digits: int = 3) -> Callable[[Summary], str]:
    """Mean / peak of an NVML series sampled through the timed work (metrics/gpu_telemetry.py)."""
    def value(s: Summary) -> str:
        t = (s.result.info.get("gpu_telemetry") or {}).get(name)
        return f"{t['mean']:.{digits}g} / {t['peak']:.{digits}g}" if t else NONE
    return value


def _gpu_memory(s: Summary) -> str:
    """The run's own GPU memory: NVML's per-process figure (what nvidia-smi shows, the CUDA context
    included), else torch's reserved peak; peak RSS beside it is host memory only."""
    for name in ("nvml_process_bytes", "torch_max_reserved_bytes"):
        m = s.result.get(name)
        if m is not None and m.samples:
            return fmt_mib(m.value)
    return NONE


def _task_acc(s: Summary) -> str:
    """lm-eval accuracy per task, ± its SE: `quantscope_cloze 41.5 ± 3.5` (several joined by "; ")."""
    from quantscope.quality.tasks.outcomes import accuracy, task_results

    found = task_results(s.result)
    if not found:
        return NONE
    many = len(found) > 1
    return "; ".join((f"{task}{'' if metric == 'acc' else ' ' + metric} " if many else "")
                     + fmt_pm(*(x * 100 for x in accuracy(m)[:2]), 4, 2) for (task, metric), m in found.items())


def _timed_rss(s: Summary) -> str:
    m = s.result.get("timed_rss_bytes")  # rows stored before issue 16 have only the whole-run peak
    return fmt_mib(m.value) if m is not None and m.samples else NONE


def _energy(s: Summary) -> str:
    return _stat("energy")(s) if s.energy else s.energy_note  # why it was not measured, never a guess


RUN = Column("run", "", lambda s: str(s.run_id))
MODEL = Column("model", "", lambda s: s.result.spec.model.label, text=True)
CONFIG = Column("configuration", "", lambda s: s.label, text=True, whole=True)
DEVICE = Column("device", "", lambda s: s.result.spec.device, text=True)
STATUS = Column("status", "", lambda s: s.status, text=True, whole=True)
STATUS_REASON = Column("status", "", _status_with_reason, text=True)
DECODE_CI = _speed("decode", "decode", "ci", with_n=False)
DECODE_CI_N = _speed("decode", "decode", "ci", with_n=True)
DECODE_SD = _speed("decode", "decode", "sd", with_n=False)
PREFILL_CI = _speed("prefill", "prefill", "ci", with_n=False)
PREFILL_CI_N = _speed("prefill", "prefill", "ci", with_n=True)
PREFILL_SD = _speed("prefill", "prefill", "sd", with_n=False)
TTFT_CI_N = _speed("TTFT", "ttft", "ci", with_n=True, unit="ms", scale=1e3, higher=False)
TTFT_SD = _speed("TTFT", "ttft", "sd", with_n=False, unit="ms", scale=1e3, higher=False)
TOKEN_P50_P99 = Column("token p50 / p99", "ms", _token_p50_p99, higher_is_better=False)
PEAK_RSS = Column("peak RSS", "MiB", _bytes("peak_rss_bytes"), higher_is_better=False)
WEIGHTS = Column("weights", "MiB", _bytes("weight_bytes"), higher_is_better=False)
FILE = Column("file", "MiB", _bytes("file_bytes"), higher_is_better=False, optional=True)
def _ppl_cut(s: Summary) -> str:
    """A row whose quality pass its time cap cut scored the reference's first windows only: its PPL is
    over those tokens, not comparable with a PPL over all of them (its KLD is, on the same tokens)."""
    m = s.result.get("nll")
    capped = (m.meta or {}).get("capped") if m is not None else None
    return f"first {m.meta['tokens_scored']} tokens" if capped else ""


PPL = Column("PPL", "", lambda s: fmt_pm(*s.ppl) if s.ppl else NONE, _ppl_cut, spread="SE", higher_is_better=False,
             optional=True)
KLD = Column("KLD", "nat", _kld, lambda s: REFERENCE if s.is_reference else "", "SE", higher_is_better=False,
             optional=True)
TOP1 = Column("same top-1", "%", _top1, spread="SE", higher_is_better=True, optional=True)
ACHIEVED_BW = _speed("achieved", "achieved_bandwidth", "ci", with_n=True, unit="GB/s", scale=1e-9, digits=3)
ROOFLINE = _speed("of roofline", "bandwidth_fraction", "ci", with_n=True, unit="%", scale=100, digits=3)
MACHINE_BW = Column("machine read bandwidth", "", _machine_bandwidth)
ENERGY = Column("energy", "J/token", _energy, lambda s: f"N={s.energy.n}" if s.energy else "", "95% CI",
                higher_is_better=False, text=True)
TIMED_RSS = Column("RSS timed work", "MiB", _timed_rss, higher_is_better=False, optional=True)
OTHERS_CPU = Column("others' CPU", "cores", _others_cpu, _contended, "mean over the timed work",
                    higher_is_better=False, optional=True)
GPU_MEM = Column("GPU memory", "MiB", _gpu_memory, higher_is_better=False, optional=True)
GPU_UTIL = Column("GPU busy mean / peak", "%", _gpu("gpu_util_pct"), higher_is_better=None, optional=True)
GPU_MEM_UTIL = Column("GPU memory busy mean / peak", "%", _gpu("gpu_mem_util_pct"), optional=True)
GPU_POWER = Column("GPU power mean / peak", "W", _gpu("gpu_power_w"), higher_is_better=False, optional=True)
GPU_TEMP = Column("GPU temperature mean / peak", "°C", _gpu("gpu_temp_c"), higher_is_better=False, optional=True)
GPU_CLOCK = Column("SM clock mean / peak", "MHz", _gpu("gpu_sm_clock_mhz", 4), optional=True)
TASK_ACC = Column("task acc", "%", lambda s: _task_acc(s), spread="SE", higher_is_better=True, optional=True)
STARTED = Column("started (UTC)", "", lambda s: s.result.started_at.replace("+00:00", ""), text=True)
RUN_TIME = Column("run time", "s", lambda s: f"{s.result.duration_s:.1f}")

# The views. A view that compares against a baseline adds its factory-made columns (see below).
RESULTS = (RUN, MODEL, CONFIG, DEVICE, STATUS_REASON, DECODE_SD, PREFILL_SD, TTFT_SD, PEAK_RSS, GPU_MEM, WEIGHTS,
           PPL, KLD, STARTED)
REPORT = (RUN, CONFIG, STATUS, DECODE_CI_N, PREFILL_CI_N, TTFT_CI_N, TOKEN_P50_P99, PEAK_RSS, TIMED_RSS, GPU_MEM,
          WEIGHTS, FILE, PPL, KLD, TOP1, TASK_ACC, GPU_UTIL, GPU_POWER, OTHERS_CPU, RUN_TIME)
EFFICIENCY = (CONFIG, DECODE_CI_N, WEIGHTS, ACHIEVED_BW, ROOFLINE, MACHINE_BW, ENERGY, GPU_UTIL, GPU_MEM_UTIL,
              GPU_POWER, GPU_TEMP, GPU_CLOCK)
EVIDENCE = (DECODE_CI_N, PREFILL_CI, PEAK_RSS, WEIGHTS, KLD, TOP1, PPL, TASK_ACC)


def sweep_columns(baseline: Summary | None, summaries: Sequence[Summary] = ()) -> tuple[Column, ...]:
    """The table at the end of a sweep: speed ± 95 % CI, the decode ratio against `baseline`; with
    `summaries` holding several processes' rows of one configuration (sweep --repeat), their pooled
    decode and between-process spread beside the within-run CI."""
    return (RUN, CONFIG, STATUS, DECODE_CI, *between_columns(summaries), ratio_column("decode", baseline),
            PREFILL_CI, PEAK_RSS, GPU_MEM, WEIGHTS,
            PPL, KLD, TOP1, TASK_ACC, acc_drop_column(baseline), GPU_UTIL, GPU_POWER, OTHERS_CPU)


def compare_columns(base: Summary) -> tuple[Column, ...]:
    """`quantscope compare`: every figure beside its ratio or difference against `base`."""
    return (RUN, CONFIG, DECODE_CI_N, ratio_column("decode", base), PREFILL_CI_N, ratio_column("prefill", base),
            bytes_against("peak RSS", "peak_rss_bytes", base), GPU_MEM, bytes_against("weights", "weight_bytes", base),
            KLD, kld_difference(base), TASK_ACC, acc_drop_column(base), GPU_UTIL, GPU_POWER, OTHERS_CPU)


def between_columns(summaries: Sequence[Summary]) -> tuple[Column, ...]:
    """The pooled decode of a configuration's rows from several processes (analysis.compare.replicates):
    mean ± 95 % CI over processes, the spread of the process means, the mean within-run CI. None when no
    configuration has rows from two processes (a sweep without --repeat)."""
    from quantscope.analysis.compare import replicates

    pooled = replicates([(s.run_id, s.result) for s in summaries])
    if not pooled:
        return ()

    def value(s: Summary) -> str:
        b = pooled.get(s.run_id)
        return fmt_pm(b.mean, b.ci95, 4) if b else NONE

    def note(s: Summary) -> str:
        b = pooled.get(s.run_id)
        return f"{b.processes} proc, spread {b.spread:.1%} vs ±{b.within_rel_ci95:.1%} within" if b else ""

    return (Column("decode, processes pooled", "tok/s", value, note, "95% CI over processes", True),)


def ratio_column(metric: str, base: Summary | None) -> Column:
    """`metric` tok/s over the baseline's: ratio of means [95 % CI], * when Welch's t-test says significant."""
    def value(s: Summary) -> str:
        if base is None:
            return NONE
        if s.run_id == base.run_id:
            return "1"
        b, m = base.result.get(f"{metric}_tps"), s.result.get(f"{metric}_tps")
        if not s.ok or b is None or m is None or not b.samples or not m.samples:
            return NONE
        from quantscope.analysis.compare import ratio_test

        t = ratio_test(b.samples, m.samples)
        return t.text() + ("*" if t.significant else "")
    def note(s: Summary) -> str:
        return "baseline" if base is not None and s.run_id == base.run_id else ""
    return Column(f"{metric} ratio", "95% CI", value, note, higher_is_better=True)


def bytes_against(name: str, attr: str, base: Summary) -> Column:
    """Bytes in MiB, then the difference and the ratio against `base`: `620.0 (-280.0, 0.69x)`."""
    def value(s: Summary) -> str:
        v, bv = getattr(s, attr), getattr(base, attr)
        if v is None:
            return NONE
        if s.run_id == base.run_id or bv is None:
            return fmt_mib(v)
        return f"{fmt_mib(v)} ({(v - bv) / MiB:+.1f}, {v / bv:.2f}x)"
    return Column(name, "MiB", value, higher_is_better=False)


def kld_difference(base: Summary) -> Column:
    """KLD minus the baseline's ± SE; paired on the same tokens when both have samples."""
    def value(s: Summary) -> str:
        if s.run_id == base.run_id or not s.kld or not base.kld:
            return NONE
        kb, ko = base.result.get("kld"), s.result.get("kld")
        if kb is None or ko is None:  # the baseline is the reference itself (KLD 0 by definition)
            return f"{s.kld[0] - base.kld[0]:+.3g} ± {s.kld[1]:.1g}"
        from quantscope.analysis.compare import mean_difference

        d = mean_difference(kb.samples, ko.samples)
        return f"{d.diff:+.3g} ± {d.se:.1g}" + (" (paired)" if d.paired else "")
    return Column("ΔKLD", "nat", value, higher_is_better=False)


def acc_drop_column(base: Summary | None) -> Column:
    """Task accuracy lost against `base` (base minus row) ± SE, in points; paired on the same documents
    (analysis.tasks). The worst task when several were evaluated."""
    def value(s: Summary) -> str:
        if base is None or s.run_id == base.run_id or not s.ok:
            return NONE
        from quantscope.analysis.tasks import worst_drop

        d = worst_drop(base.result, s.result)
        if d is None:
            return NONE
        return fmt_pm(d.drop * 100, d.se * 100, 3, 2) + ("" if d.paired else " (unpaired)")
    return Column("acc drop", "points", value, spread="SE", higher_is_better=False, optional=True)


def shown(columns: Sequence[Column], summaries: Sequence[Summary]) -> list[Column]:
    """The columns worth a place: an optional one only when some row has its figure."""
    return [c for c in columns if not c.optional or any(c.value(s) != NONE for s in summaries)]


def cells(columns: Sequence[Column], s: Summary) -> dict[str, str]:
    """One row as {header: cell}, e.g. {'run': '3', 'peak RSS [MiB]': '900.0'}."""
    return {c.header: c.cell(s) for c in columns}


def phrases(columns: Sequence[Column], s: Summary) -> str:
    """The measured figures of `s` in prose, separated by semicolons."""
    return "; ".join(p for c in columns if (p := c.phrase(s)))
