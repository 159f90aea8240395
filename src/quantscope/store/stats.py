"""Statistics kept beside the raw samples, so a listing never reads the samples (issue 19).

Every figure here is derived from a measurement's raw samples by the same function that derives it at
read time (metrics.stats.describe; quality.perplexity.mean_se, in the samples' stored order and sorted,
as ppl_with_se and kld_summary call it), so a figure read from the table equals, bit for bit, the one
computed from the samples. The samples stay the truth: the table is rebuilt from them
(`quantscope store rebuild-stats`), and a row whose `version` is not STATS_VERSION is ignored by readers,
which then derive from the samples.

History of STATS_VERSION (a change to what is derived bumps it and adds a store migration that rebuilds):
  1  2026-11-29  describe() fields, mean/SE as stored and as sorted (store schema 4).

Reading: a measurement read from a store carries `StoredSamples`, a sequence that knows its length and
figures and reads its values from the store only when something iterates it (a latency distribution,
KLD percentiles, a paired test).

>>> f = figures_of((1.0, 2.0, 3.0))
>>> f.stats.mean, f.mean_se[0]
(2.0, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from quantscope.metrics.stats import Stats, describe

STATS_VERSION = 1
STAT_COLUMNS = ("n", "mean", "sd", "se", "ci95", "p50", "p90", "p99", "min", "max",
                "mean_np", "se_np", "mean_sorted", "se_sorted")


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    """quality.perplexity.mean_se, restated so that writing a store imports no quality code; a test
    (tests/store/test_stats.py) holds the two equal."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64).reshape(-1)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(float(np.var(x)) / (n - 1))


@dataclass(frozen=True)
class Figures:
    """What the table keeps of one measurement: describe()'s Stats and perplexity.cpp's mean and SE."""

    stats: Stats
    mean_se: tuple[float, float]  # over the samples as stored (ppl_with_se, same_top_summary)
    sorted_mean_se: tuple[float, float]  # over the sorted samples (kld_summary sorts first)

    def row(self) -> tuple[float | int | None, ...]:
        """The table's values, NaN as NULL (SQLite turns a bound NaN into NULL anyway; PostgreSQL agrees)."""
        s = self.stats
        values = (s.n, s.mean, s.sd, s.se, s.ci95, s.p50, s.p90, s.p99, s.min, s.max,
                  *self.mean_se, *self.sorted_mean_se)
        return tuple(None if isinstance(v, float) and math.isnan(v) else v for v in values)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Figures:
        v = [math.nan if x is None else x for x in row]
        stats = Stats(int(v[0]), *(float(x) for x in v[1:10]))
        return cls(stats, (float(v[10]), float(v[11])), (float(v[12]), float(v[13])))


def figures_of(samples: Sequence[float]) -> Figures:
    """The table's figures for one measurement's samples."""
    values = tuple(float(s) for s in samples)
    return Figures(describe(values), _mean_se(values), _mean_se(sorted(values)))


class StoredSamples(Sequence[float]):
    """A measurement's raw samples as read from a store: len() and figures without reading them, the
    values on first use (then kept). Equal to a tuple of the same values; copies and pickles as one."""

    deferred = True  # Measurement keeps this object instead of converting it to a tuple (result.py)

    def __init__(self, n: int, figures: Figures | None, load: Callable[[], tuple[float, ...]]) -> None:
        self._n = n
        self._load: Callable[[], tuple[float, ...]] | None = load
        self._values: tuple[float, ...] | None = None
        self.figures = figures

    @property
    def stats(self) -> Stats:
        return self.figures.stats if self.figures is not None else describe(self.values)

    @property
    def values(self) -> tuple[float, ...]:
        if self._values is None:
            assert self._load is not None
            self._values, self._load = self._load(), None
        return self._values

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # type: ignore[override]
        return self.values[i]

    def __iter__(self) -> Iterator[float]:
        return iter(self.values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredSamples | tuple | list):
            return len(other) == self._n and self.values == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"StoredSamples(n={self._n}{', read' if self._values is not None else ''})"

    def __reduce__(self):  # pickled (a Ray task, a worker) as the plain tuple it stands for
        return (tuple, (self.values,))

    def __copy__(self) -> tuple[float, ...]:
        return self.values

    def __deepcopy__(self, memo: dict) -> tuple[float, ...]:  # dataclasses.asdict deep-copies the field
        return self.values


def figures(samples: Sequence[float]) -> Figures:
    """A measurement's figures: from the table when the samples came from a store, else computed."""
    known = getattr(samples, "figures", None)
    return known if known is not None else figures_of(samples)


def mean_se(samples: Sequence[float], *, sort: bool = False) -> tuple[float, float]:
    """perplexity.cpp's mean and SE of `samples` (sorted first with `sort`, as kld_summary does), from
    the table when they came from a store.

    >>> mean_se([1.0, 2.0, 3.0])
    (2.0, 0.5773502691896257)
    """
    known = getattr(samples, "figures", None)
    if known is not None:
        return known.sorted_mean_se if sort else known.mean_se
    return _mean_se(sorted(samples) if sort else samples)
