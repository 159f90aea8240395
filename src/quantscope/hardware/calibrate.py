"""Efficiency fitted from measurements: achieved shares of the roofs per (hardware, runtime, format).

One efficiency constant per GPU is wrong: gpt-fast on an A100 reaches 68 % of peak bandwidth at
bf16, 52 % at int8 and 42 % at int4 (FACTS.md). So every measured decode step is read as

    step_s = bytes / (bandwidth * eta[format]) + layers * overhead[format]          (decode)
    prefill_s = FLOPs / (peak * kappa[format]) + layers * overhead_prefill[runtime]  (prefill)

fitted per (hardware, runtime): eta and kappa per format. The overhead is host time per layer
(Python, dispatch, kernel launches), which is what an eager runtime spends beyond the roofs: on an
H200 (docs/measurements/h200-2026-11-30.md) HF eager bf16 spent 0.62 ms per layer per step at 1B
and 0.65 at 8B, torchao's dynamic int8 ~8-9 ms, float8-dynamic 4.0 at both sizes, while the GPU
was busy 5-36 % of the step. A format measured at two or more model sizes gets its own per-layer
overhead; the others share the runtime's (identified when some format spans sizes; otherwise 0, or
borrowed from other runtimes on the same kind of hardware, and said so).
Observations (hardware/observations.py) come from the store's ok rows (this machine and any other,
keyed by machine id) and from published.toml (GPUs, one cited source per row).

A projection uses the closest data it has and says which (`level`):
  0 same hardware, runtime and format
  1 same runtime and format, other hardware of the same kind (CPU/GPU): kernels travel with the format
  2 same hardware and runtime, other formats (their median; a prefill on this machine scaled by the ratio
    of the formats' kernel rates where kernels.py timed both: a format's kernel, not its bytes, sets it)
  3 other runtimes' data for the format on that kind of hardware       4 none: a prior
and its interval is the 90th percentile of the leave-one-out errors of the observations that were
projected at the same level (`loo_errors`), widened to a floor when too few exist.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from quantscope.hardware import roofline
from quantscope.hardware.groupfit import GroupFit, compiled, fit_group, format_line, shared_line  # noqa: F401
from quantscope.hardware.observations import Obs, published_observations, store_observations

# Interval floors per level (natural-log half-widths) used until enough leave-one-out errors exist:
# exp(0.15) = +16 %, exp(0.4) = +49 %, exp(1.1) = 3x.
FLOOR_Q = {0: 0.10, 1: 0.30, 2: 0.35, 3: 0.5, 4: 1.1}
MIN_ERRORS = 3
PRIOR_ETA = 0.5  # level 4 only: half the bandwidth roof, with a 3x interval
PRIOR_KAPPA = 0.3
LEVEL_TEXT = {
    0: "fitted on this hardware, runtime and format",
    1: "this runtime and format on other hardware of the same kind",
    2: "this runtime on this hardware, other formats' median",
    3: "no data for this runtime here: other runtimes' data for this format",
    4: "no data: prior",
}


@dataclass(frozen=True)
class Efficiency:
    eta: float  # achieved share of the bandwidth roof
    kappa: float  # achieved share of the compute roof
    decode_overhead_s: float  # host time per layer per decode step
    prefill_overhead_s: float  # per layer per prefill
    level: int
    prefill_level: int
    n: int  # observations behind eta
    notes: tuple[str, ...] = ()
    q_decode: float = 0.0  # log half-width of the interval
    q_prefill: float = 0.0


def family(fmt: str) -> str:
    """Formats that move the same bytes through the same kind of kernel: fp16 and bf16 weights.

    >>> family("torch/fp16") == family("torch/bf16")
    True
    """
    return fmt.replace("fp16", "16bit").replace("bf16", "16bit")


# --- fitting --------------------------------------------------------------------------------------
class Calibration:
    """All observations, fitted per (hardware, runtime); `efficiency` answers with its level and notes."""

    def __init__(self, obs: list[Obs], kernels: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
        self.obs = list(obs)
        self.kernels = kernels or {}  # hardware id -> format key -> kernels.py rates (this machine's)
        groups: dict[tuple[str, str], list[Obs]] = defaultdict(list)
        for o in self.obs:
            groups[(o.hw, o.runtime)].append(o)
        self.kind = {o.hw: o.kind for o in self.obs}
        self.fits = {k: fit_group(v) for k, v in groups.items()}
        # Groups measured at one size cannot separate overhead from bandwidth: they borrow the median
        # overhead identified on the same kind of hardware, so small models are not projected as if
        # a step cost nothing (and speed-ups between runtimes compare like with like).
        for key, g in list(self.fits.items()):
            if not g.overhead_identified:
                identified = [f.decode_overhead_s for (hw, _), f in self.fits.items()
                              if f.overhead_identified and self.kind.get(hw) == self.kind.get(key[0])]
                if identified:
                    self.fits[key] = fit_group(groups[key], statistics.median(identified))
        self._anchor(groups)
        self._q: dict[str, dict[int, float]] | None = None

    def _anchor(self, groups: dict[tuple[str, str], list[Obs]]) -> None:
        """An eager runtime's format measured at one size cannot split its step into bytes and host
        time. Its bandwidth share is then the kernels' share that compiled runtimes reached for the
        format (or its family) on the same kind of hardware, and the rest of each measured step is
        its per-layer overhead, which then scales with the layers of the model projected. Without
        compiled data for the format, the share is the median of this runtime's own formats that were
        measured at two sizes here (the same kernels' library on the same hardware)."""
        refs: dict[tuple[str | None, str], list[float]] = defaultdict(list)
        for (hw, rt), g in self.fits.items():
            if compiled(rt):
                for fmt, eta in g.eta.items():
                    refs[(self.kind.get(hw), fmt)].append(eta)
        for (hw, rt), g in self.fits.items():
            if compiled(rt):
                continue
            kind = self.kind.get(hw)
            lines = [g.eta[f] for f in g.format_overhead]
            for fmt in [f for f in g.eta if f not in g.format_overhead]:
                etas = refs.get((kind, fmt)) or [e for (k, f), v in refs.items()
                                                 if k == kind and family(f) == family(fmt) for e in v] or lines
                if not etas:
                    continue
                eta = statistics.median(etas)
                rest = [(o.decode_s - o.decode_x / eta) / o.layers for o in groups[(hw, rt)]
                        if o.fmt == fmt and o.decode_s]
                if rest and min(rest) > 0:
                    g.eta[fmt], g.format_overhead[fmt], g.anchored[fmt] = eta, statistics.median(rest), len(etas)

    def _pool(self, kind: str, want) -> list[tuple[float, float, float, float]]:
        """(eta, kappa or nan, decode overhead, prefill overhead) of fitted formats matching `want`."""
        out = []
        for (hw, rt), g in self.fits.items():
            if self.kind.get(hw) != kind:
                continue
            for fmt, eta in g.eta.items():
                if want(hw, rt, fmt):
                    out.append((eta, g.kappa.get(fmt, math.nan), g.overhead(fmt), g.prefill_overhead(fmt)))
        return out

    def point(self, hw: str, kind: str, runtime: str, fmt: str) -> Efficiency:
        """Shares and overheads for a projection, from the closest data (levels in the module doc)."""
        g = self.fits.get((hw, runtime))
        notes: list[str] = []
        if g and fmt in g.eta:
            kappa = g.kappa.get(fmt)
            plevel = 0
            if kappa is None:
                kappa, plevel = self._kappa_fallback(hw, kind, runtime, fmt, g)
            if fmt in g.anchored:
                notes.append(f"one model size measured: bandwidth share {g.eta[fmt]:.2f} from {g.anchored[fmt]} "
                             f"fit(s) of compiled runtimes' {fmt} or of this runtime's formats measured at two "
                             f"sizes; the rest of the step is host overhead {g.overhead(fmt) * 1e3:.2g} ms/layer")
            elif not g.overhead_identified and g.decode_overhead_s and fmt not in g.format_overhead:
                notes.append(f"per-layer overhead borrowed: {g.decode_overhead_s * 1e3:.2g} ms (this runtime "
                             "was measured at one model size only)")
            return Efficiency(g.eta[fmt], kappa, g.overhead(fmt), g.prefill_overhead(fmt), 0, plevel, g.n[fmt],
                              tuple(notes))
        same = (1, lambda h, r, f: r == runtime and f == fmt, f"{runtime} {fmt} measured on other {kind} hardware")
        wider = ((3, lambda h, r, f: f == fmt, f"no {runtime} data on {kind} hardware: {fmt} as other runtimes ran it"),
                 (3, lambda h, r, f: family(f) == family(fmt), f"no {runtime} data on {kind} hardware: "
                  f"{family(fmt)} formats as other runtimes ran them"),
                 (3, lambda h, r, f: r == runtime, f"{fmt} never measured on {kind} hardware: {runtime}'s other "
                  "formats"))
        found = self._from_pool(kind, *same)
        if found:
            return found
        if g and g.eta:
            kappas = [v for v in g.kappa.values()]
            kappa, plevel = (statistics.median(kappas), 2) if kappas else self._kappa_fallback(hw, kind, runtime,
                                                                                               fmt, g)
            scaled = self._kernel_kappa(hw, runtime, fmt, g)
            if scaled is not None:
                kappa, plevel = scaled, 2
                notes.append(f"prefill: {runtime}'s other formats' compute shares scaled by the ratio of kernel "
                             f"rates timed on a Linear stack here (hardware/kernels.py)")
            if g.shared:
                eta, overhead = g.shared
                notes.append(f"{fmt} not measured with {runtime} on {hw}: one share and overhead fitted through "
                             f"its {len(g.eta)} other format(s)")
            else:
                eta, overhead = statistics.median(g.eta.values()), g.decode_overhead_s
                notes.append(f"{fmt} not measured with {runtime} on {hw}: the median of its {len(g.eta)} other "
                             "format(s)")
            return Efficiency(eta, kappa, overhead, g.prefill_overhead_s, 2, plevel, len(g.eta), tuple(notes))
        for level, want, text in wider:
            found = self._from_pool(kind, level, want, text)
            if found:
                return found
        notes.append(f"no measurement of this runtime or format on {kind} hardware: prior shares, wide interval")
        o_dec = self.borrowed_overhead(kind, notes)
        return Efficiency(PRIOR_ETA, PRIOR_KAPPA, o_dec, 0.0, 4, 4, 0, tuple(notes))

    def _kernel_kappa(self, hw: str, runtime: str, fmt: str, g: GroupFit) -> float | None:
        """Level 2 prefill on a machine whose kernels were timed (kernels.py): each fitted format's compute
        share scaled by the ratio of the two formats' prefill kernel rates, each read against its compute
        roof; None without timed kernels for `fmt` and a fitted format. Prefill only: a prefill is the
        linears' matrix-matrix work, which the stack times; an eager decode step here is mostly the rest
        (attention, norms, Python: ~2/3 of an fp32 step of the bundled model), and scaling the whole step
        by the linears' rates missed torchao's formats by -82 % to +272 % (docs/measurements/
        projection-error-2026-11-30-whole-step.txt), worse than the runtime's shared line."""
        rates = self.kernels.get(hw, {})
        mine = rates.get(fmt)
        if mine is None or mine.get("runtime") != runtime or not mine.get("peak"):
            return None
        ks = [k * (mine["prefill_flops"] / mine["peak"]) / (rates[f]["prefill_flops"] / rates[f]["peak"])
              for f, k in g.kappa.items() if f in rates and rates[f].get("peak")]
        return statistics.median(ks) if ks else None

    def borrowed_overhead(self, kind: str, notes: list[str]) -> float:
        """A runtime without its own overhead fit borrows the median fitted per-layer overhead on this kind
        of hardware (0 when none was identified): optimistic for eager runtimes, said in a note."""
        fitted = [g.decode_overhead_s for (hw, _), g in self.fits.items()
                  if self.kind.get(hw) == kind and g.overhead_identified]
        if not fitted:
            notes.append("per-layer overhead unknown: 0 assumed (optimistic, most for small models)")
            return 0.0
        o = statistics.median(fitted)
        notes.append(f"per-layer overhead borrowed from other runtimes' fits: {o * 1e3:.2g} ms (optimistic for "
                     "eager runtimes)")
        return o

    def _from_pool(self, kind: str, level: int, want, text: str) -> Efficiency | None:
        """Medians over the fitted groups matching `want` (levels 1 and 3), or None when there are none."""
        notes: list[str] = []
        pool = self._pool(kind, want)
        if not pool:
            return None
        eta = statistics.median(p[0] for p in pool)
        kappas = [p[1] for p in pool if not math.isnan(p[1])]
        kappa = statistics.median(kappas) if kappas else PRIOR_KAPPA
        o_dec = statistics.median(p[2] for p in pool) if level == 1 else self.borrowed_overhead(kind, notes)
        o_pre = statistics.median(p[3] for p in pool) if level == 1 else 0.0
        notes.append(text + f" ({len(pool)} fitted group(s)); interval widened")
        if not kappas:
            notes.append("no prefill measured: compute share is a prior")
        return Efficiency(eta, kappa, o_dec, o_pre, level, level if kappas else 4, len(pool), tuple(notes))

    def _kappa_fallback(self, hw: str, kind: str, runtime: str, fmt: str, g: GroupFit) -> tuple[float, int]:
        if g.kappa:
            return statistics.median(g.kappa.values()), 1
        pool = [p[1] for p in self._pool(kind, lambda h, r, f: f == fmt) if not math.isnan(p[1])]
        if pool:
            return statistics.median(pool), 3
        return PRIOR_KAPPA, 4

    # --- intervals from leave-one-out ------------------------------------------------------------
    def loo_errors(self) -> list[dict[str, Any]]:
        """Each observation projected from all the others: log errors for decode and prefill, and levels."""
        out = []
        for i, o in enumerate(self.obs):
            rest = Calibration(self.obs[:i] + self.obs[i + 1:], self.kernels)
            eff = rest.point(o.hw, o.kind, o.runtime, o.fmt)
            dec = pre = None
            if o.decode_s:
                t = predict_step(o.decode_bytes, o.decode_flops, o.bandwidth_Bps, o.peak_flops, eff, "decode", o.layers)
                dec = math.log(o.decode_s / t.seconds)  # > 0: projected faster than measured
            if o.prefill_s:
                t = predict_step(o.prefill_bytes, o.prefill_flops, o.bandwidth_Bps, o.peak_flops, eff, "prefill",
                                 o.layers)
                pre = math.log(o.prefill_s / t.seconds)
            out.append({"obs": o, "decode_log_err": dec, "prefill_log_err": pre, "level": eff.level,
                        "prefill_level": eff.prefill_level, "notes": eff.notes})
        return out

    def interval_widths(self) -> dict[str, dict[int, float]]:
        """90th percentile of |LOO log error| per level and phase, never below the level's floor."""
        if self._q is None:
            errs = self.loo_errors()
            q: dict[str, dict[int, float]] = {"decode": {}, "prefill": {}}
            for phase, key, lkey in (("decode", "decode_log_err", "level"), ("prefill", "prefill_log_err",
                                                                             "prefill_level")):
                for level, floor in FLOOR_Q.items():
                    vals = sorted(abs(e[key]) for e in errs if e[key] is not None and e[lkey] == level)
                    p90 = vals[min(len(vals) - 1, int(0.9 * len(vals)))] if len(vals) >= MIN_ERRORS else 0.0
                    q[phase][level] = max(floor, p90)
                # a wider level is never narrower than a closer one
                for level in range(1, 5):
                    q[phase][level] = max(q[phase][level], q[phase][level - 1])
            self._q = q
        return self._q

    def efficiency(self, hw: str, kind: str, runtime: str, fmt: str) -> Efficiency:
        eff = self.point(hw, kind, runtime, fmt)
        q = self.interval_widths()
        return replace(eff, q_decode=q["decode"][eff.level], q_prefill=q["prefill"][eff.prefill_level])


def predict_step(bytes_: float, flops: float, bandwidth_Bps: float, peak: float, eff: Efficiency,
                 phase: str, layers: int) -> roofline.PhaseTime:
    """Roofline time of one decode step or one whole prefill of a `layers`-layer model with the fitted
    shares and per-layer overhead.

    A decode step is matrix-vector work: its fitted bandwidth share already absorbs every
    inefficiency, so its compute roof is the full peak (it binds only at large batches); the compute
    share fitted on prefills (matrix-matrix work) applies to prefills.
    """
    if phase == "decode":
        return roofline.phase_time(bytes_, flops, bandwidth_Bps, peak, eff.eta, 1.0, layers * eff.decode_overhead_s)
    return roofline.phase_time(bytes_, flops, bandwidth_Bps, peak, eff.eta, eff.kappa,
                               layers * eff.prefill_overhead_s)


def build_calibration(rows: list[tuple[int, Any]] | None, machine_id: str | None = None,
                      peaks: dict[str, float] | None = None, published: bool = True,
                      skipped: list[str] | None = None) -> Calibration:
    """A calibration from stored rows (any machine) and the published GPU data file."""
    peaks_by_machine = {machine_id: peaks} if machine_id and peaks else {}
    obs = store_observations(rows or [], peaks_by_machine, skipped)
    if published:
        obs += published_observations()
    kernels = {}
    if machine_id:  # what kernels.py timed here before (it never measures on its own)
        from quantscope.env import physical_cores
        from quantscope.hardware.kernels import rates_for_calibration

        kernels = {f"local:{machine_id}": rates_for_calibration(machine_id, physical_cores(), peaks or {})}
    return Calibration(obs, kernels)
