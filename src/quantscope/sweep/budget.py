"""A sweep's time budget: which configurations fit in what is left, decided before each one starts.

`sweep --budget S` (the default matrix, which `make run` sweeps, has DEFAULT_S): before a configuration
starts, its expected duration is set against what is left of the budget once FINISH_S are kept for the
table, the recommendation and the report. Expected: its own last duration on this machine (plan); else,
once this sweep has run something, the median of its ok runs so far other than the reference (which
scores every window); else guess_durations' guess made
before the start (the same model's stored runs, or the hardware model's projection of this machine:
on a fresh AVX2 machine that projection put bitsandbytes INT8 at 1,194 s, which took 121). A
configuration with none of these runs while at least UNKNOWN_MIN_S are left. One that does not fit is
deferred: not run, not stored, named in the sweep's output and in the report, and measured by the next
sweep, which reuses every stored row (`make run` again goes on where this one stopped; `--budget 0`
measures everything at once).

Durations are counted without their one-time conversions (execute.steady_s): on a fresh AVX2 machine the
first ONNX Runtime row took 254 s, 190 of them its export, and a median over that deferred everything.

No run is stopped for the budget: a run that takes longer than its guess (a first conversion, an export
on a fresh machine) makes the sweep end late by that overrun, and the sweep says by how much.

The order under a budget: the FP32 reference first (every row's KLD reads its log-probs), then by the
hardware model's projected decode speed on this machine, fastest first, 8-bit-and-wider and 4-bit
weights taking turns (budget_order), so that a budget that covers part of the matrix has measured the
configurations most likely to be recommended (on a fresh AVX2 machine the matrix's own order spent the
budget on PyTorch-family rows and deferred every llama.cpp one). The table keeps the matrix's order.

>>> b = Budget(100.0, clock=lambda: 0.0)
>>> b.admits(Step(None, expected_s=60.0)), b.admits(Step(None, expected_s=120.0))
(True, False)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import zip_longest

from quantscope.sweep.execute import Step

DEFAULT_S = 600.0  # the quick sweep's budget: `make run` in ten minutes (issue 16)
FINISH_S = 20.0  # the table, the recommendation and the report after the runs (10,000 runs: 7 s, store_scale)
UNKNOWN_MIN_S = 120.0  # what must be left to start a configuration nothing predicts


@dataclass
class Budget:
    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float | None = None
    guessed: set[int] = field(default_factory=set)  # steps whose expected_s is a guess, not their own duration
    speeds: dict[int, float] = field(default_factory=dict)  # projected decode tok/s per step: the order
    bits: dict[int, float] = field(default_factory=dict)  # bits per weight of each step's linears: the order
    ran_s: list[float] = field(default_factory=list)  # this sweep's ok runs but the reference, conversions out
    deferred: dict[int, str] = field(default_factory=dict)  # step index -> why

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    def left(self) -> float:
        """Seconds of the budget left for runs (FINISH_S kept back); negative once overrun."""
        return self.seconds - FINISH_S - (self.clock() - self.started)

    def expected(self, step: Step, index: int = -1) -> float | None:
        if step.expected_s is not None and index not in self.guessed:
            return step.expected_s  # its own last duration here
        if self.ran_s:
            return statistics.median(self.ran_s)
        return step.expected_s

    def admits(self, step: Step, index: int = -1) -> bool:
        """Whether `step` fits in what is left; if not, it is recorded as deferred with the reason."""
        left, expected = self.left(), self.expected(step, index)
        need = expected if expected is not None else UNKNOWN_MIN_S
        if need <= left:
            return True
        guess = f"expected {need:.0f} s" if expected is not None else f"no duration to expect, needs {need:.0f} s"
        self.deferred[index] = f"{guess}, {max(left, 0.0):.0f} s of the {self.seconds:.0f} s budget left"
        return False

    def saw(self, seconds: float) -> None:
        self.ran_s.append(seconds)

    def overrun_s(self) -> float:
        """Seconds past the budget now (0 within it)."""
        return max(0.0, (self.clock() - self.started) - self.seconds)


LOW_BITS = 7.0  # weights under this many bits a weight: the 4-bit formats (Q4_K_M on a 576-wide model is ~6.2)


def budget_order(steps: list[Step], is_reference: Callable[[Step], bool],
                 speeds: dict[int, float] | None = None, bits: dict[int, float] | None = None) -> list[int]:
    """Step indices: references and reused rows first (they cost nothing), then the rest by projected
    decode speed, fastest first, taking turns between weights of LOW_BITS and more and weights of fewer
    bits (`bits`, per step), then those with no projection in the matrix's order.

    Why turns: speed alone put four 4-bit rows first on a fresh AVX2 machine, all of them over the default
    goal's KLD 0.05 on the bundled 135M model, so the first ten-minute `make run` recommended the FP32
    reference; the 8-bit rows (llama.cpp Q8_0, what the whole sweep recommends) came after the budget.
    Taking turns measures the fastest of each kind first, whichever the constraints then keep.

    >>> from quantscope.spec import RunSpec
    >>> steps = [Step(RunSpec(backend=b)) for b in ("torch", "torch", "ort", "llamacpp", "bnb", "ort")]
    >>> budget_order(steps, lambda s: s is steps[0], {1: 9.0, 2: 30.0, 3: 60.0, 5: 40.0}, {2: 8.5, 3: 4.5, 5: 4.5})
    [0, 2, 3, 1, 5, 4]
    """
    speeds, bits = speeds or {}, bits or {}
    first = [i for i, s in enumerate(steps) if is_reference(s) or s.reuse is not None]
    rest = [i for i in range(len(steps)) if i not in first]
    fastest = sorted((i for i in rest if i in speeds), key=lambda i: (-speeds[i], i))
    wide = [i for i in fastest if bits.get(i, 32.0) >= LOW_BITS]
    narrow = [i for i in fastest if bits.get(i, 32.0) < LOW_BITS]
    turns = [i for pair in zip_longest(wide, narrow) for i in pair if i is not None]
    return first + turns + [i for i in rest if i not in speeds]


def deferred_notes(steps: list[Step], budget: Budget) -> list[str]:
    """What the output and the report say of the configurations the budget left for the next sweep."""
    if not budget.deferred:
        return []
    from quantscope.present.labels import spec_label

    names = "; ".join(f"{spec_label(steps[i].spec)} ({why})" for i, why in sorted(budget.deferred.items()))
    return [f"Time budget {budget.seconds:.0f} s: {len(budget.deferred)} configuration(s) deferred, not measured: "
            f"{names}. Sweep again to measure them (stored rows are reused), or --budget 0 for no budget."]
