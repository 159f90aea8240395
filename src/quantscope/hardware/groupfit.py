"""One (hardware, runtime)'s fit: a bandwidth share per format and the host overhead per layer.

    step_s = bytes / (bandwidth * eta[format]) + layers * overhead[format]

A format measured at two or more clearly different sizes gets its own line (share and per-layer
overhead); the others share the runtime's overhead. calibrate.py combines these fits across hardware
and runtimes and answers projections from them.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from quantscope.hardware.observations import Obs


def _distinct(xs: list[float]) -> bool:
    return len(xs) >= 2 and max(xs) > 1.3 * min(xs)


Point = tuple[str, float, float, int]  # (format, roof time x, measured time y, layers)


def fit_overhead(points: list[Point]) -> float:
    """Shared per-layer overhead o of y = k[fmt] * x + L * o (least squares on relative error), or 0
    when no format was measured at two clearly different x, or when the fit says o < 0."""
    by_fmt: dict[str, list[float]] = defaultdict(list)
    for fmt, x, _, _ in points:
        by_fmt[fmt].append(x)
    if not any(_distinct(v) for v in by_fmt.values()):
        return 0.0
    import numpy as np

    fmts = sorted(by_fmt)
    rows, rhs = [], []
    for fmt, x, y, layers in points:
        row = [0.0] * (len(fmts) + 1)
        row[fmts.index(fmt)] = x / y
        row[-1] = layers / y
        rows.append(row)
        rhs.append(1.0)
    sol, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    o = float(sol[-1])
    return o if o > 0 and all(s > 0 for s in sol[:-1]) else 0.0


def _share(points: list[tuple[float, float, int]], overhead: float) -> float | None:
    """Median achieved share x / (y - L * overhead) over the points where the overhead leaves time."""
    shares = [x / (y - n * overhead) for x, y, n in points if y - n * overhead > 0.1 * y]
    return statistics.median(shares) if shares else None


def format_line(points: list[tuple[float, float, int]]) -> tuple[float, float] | None:
    """(eta, per-layer overhead) of one format measured at two or more clearly different sizes:
    y = x / eta + L * o by least squares on relative error; None when the sizes do not separate
    the two terms or the fit is not physical (eta <= 0 or o < 0)."""
    if not _distinct([x for x, _, _ in points]):
        return None
    import numpy as np

    a = np.array([[x / y, n / y] for x, y, n in points])
    if np.linalg.matrix_rank(a) < 2:
        return None
    (k, o), *_ = np.linalg.lstsq(a, np.ones(len(points)), rcond=None)
    return (1.0 / float(k), float(o)) if k > 0 and o >= 0 else None


@dataclass
class GroupFit:
    """One (hardware, runtime): per-format shares and the runtime's per-step overheads."""

    eta: dict[str, float] = field(default_factory=dict)
    kappa: dict[str, float] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)
    decode_overhead_s: float = 0.0  # per layer, shared by the formats without their own
    prefill_overhead_s: float = 0.0
    overhead_identified: bool = False
    shared: tuple[float, float] | None = None  # (eta, overhead) of one line through all formats' steps
    format_overhead: dict[str, float] = field(default_factory=dict)  # per layer, formats measured at 2+ sizes
    anchored: dict[str, int] = field(default_factory=dict)  # formats whose share came from compiled runtimes (n)
    prefill_format_overhead: dict[str, float] = field(default_factory=dict)  # per layer, prefills at 2+ sizes

    def overhead(self, fmt: str) -> float:
        return self.format_overhead.get(fmt, self.decode_overhead_s)

    def prefill_overhead(self, fmt: str) -> float:
        return self.prefill_format_overhead.get(fmt, self.prefill_overhead_s)


def shared_line(points: list[Point]) -> tuple[float, float] | None:
    """One share and one per-layer overhead for every format of a runtime: y = x / eta + L * o by least
    squares on relative error. What a missing format falls back to (level 2): it adapts between
    bandwidth-bound (o ~ 0) and overhead-bound (eta large, o ~ the step time) runtimes. None when x
    does not vary."""
    xs = [x for _, x, _, _ in points]
    if not _distinct(xs):
        return None
    import numpy as np

    a = np.array([[x / y, n / y] for _, x, y, n in points])
    (k, o), *_ = np.linalg.lstsq(a, np.ones(len(points)), rcond=None)
    if k <= 0:
        return None
    if o < 0:  # no overhead: refit the share alone
        k, o = statistics.median(y / x for _, x, y, _ in points), 0.0
    return 1.0 / float(k), float(o)


def compiled(runtime: str) -> bool:
    """Runtimes whose host overhead per step is small (torch.compile'd, or gpt-fast, which always
    compiles): their fitted bandwidth share is the kernels' own."""
    return runtime == "gpt-fast" or runtime.endswith("+compile")


def fit_group(obs: list[Obs], borrowed_overhead_s: float = 0.0) -> GroupFit:
    """Shares per format and the runtime's overheads; an overhead the data cannot identify is
    `borrowed_overhead_s` (the median identified on this kind of hardware), and the group says so."""
    dec = [(o.fmt, o.decode_x, o.decode_s, o.layers) for o in obs if o.decode_s]
    pre = [(o.fmt, o.prefill_x, o.prefill_s, o.layers) for o in obs if o.prefill_s]
    own = fit_overhead(dec)
    g = GroupFit(decode_overhead_s=own or borrowed_overhead_s, prefill_overhead_s=fit_overhead(pre),
                 overhead_identified=own > 0, shared=shared_line(dec))
    for fmt in {o.fmt for o in obs}:
        mine = [(x, y, n) for f, x, y, n in dec if f == fmt]
        line = format_line(mine)
        if line is not None:
            e, g.format_overhead[fmt] = line
        else:
            e = _share(mine, g.decode_overhead_s)
        mine_pre = [(x, y, n) for f, x, y, n in pre if f == fmt]
        pline = format_line(mine_pre)
        if pline is not None:
            k = pline[0]
            g.prefill_format_overhead[fmt] = pline[1]
        else:
            k = _share(mine_pre, g.prefill_overhead_s)
        if e is not None:
            g.eta[fmt], g.n[fmt] = e, len(mine)
        if k is not None:
            g.kappa[fmt] = k
    return g
