"""HAQ's resource-constrained final adjustment, and the integer-program baseline on the same budget.

`constrain` is mit-han-lab/haq lib/env/quantize_env.py `_final_action_wall`: after the agent has
chosen every layer, walk the layers from last to first lowering each by one step until the policy
fits the budget. Here a "step down" is the next cheaper format *for that layer's cost* (a latency
table need not order formats as bytes do), and a pass that lowers nothing stops the walk, so the
loop always ends; it meets any budget at or above the cheapest policy's cost.

`ilp` is the cheap baseline that NVIDIA ModelOpt's auto_quantize and intel auto-round's AutoScheme
use: per-layer sensitivity scores assumed additive, one format per layer, a linear budget; solved
exactly with scipy.optimize.milp (HiGHS).

>>> import numpy as np
>>> cost = np.array([[1.0, 2.0], [1.0, 2.0]])
>>> constrain(["b", "b"], ("a", "b"), cost, 0.0, 3.0)
['b', 'a']
"""

from __future__ import annotations

import numpy as np

from quantscope.errors import UserError


def _total(cost: np.ndarray, constant: float, idx: list[int]) -> float:
    return float(constant + cost[np.arange(len(idx)), idx].sum())


def step_down(cost_row: np.ndarray, j: int) -> int | None:
    """The format one step cheaper than format j for this layer: the dearest of those cheaper, or None."""
    cheaper = [k for k in range(len(cost_row)) if cost_row[k] < cost_row[j]]
    return max(cheaper, key=lambda k: cost_row[k]) if cheaper else None


def constrain(policy: list[str], formats: tuple[str, ...], cost: np.ndarray, constant: float,
              budget: float) -> list[str]:
    """The policy lowered from the last layer to the first, a step at a time, until it fits `budget`."""
    idx = [formats.index(f) for f in policy]
    floor = float(constant + cost.min(axis=1).sum())
    if budget < floor - 1e-12 * max(abs(floor), 1.0):
        raise UserError(f"budget {budget:.6g} is below the cheapest policy ({floor:.6g})")
    while _total(cost, constant, idx) > budget:
        lowered = False
        for i in reversed(range(len(idx))):
            down = step_down(cost[i], idx[i])
            if down is not None:
                idx[i], lowered = down, True
            if _total(cost, constant, idx) <= budget:
                break
        if not lowered:  # every layer at its cheapest: only float rounding can leave us here
            break
    return [formats[j] for j in idx]


def ilp(sensitivity: np.ndarray, cost: np.ndarray, constant: float, budget: float,
        formats: tuple[str, ...]) -> list[str]:
    """argmin sum s[i, f_i] subject to constant + sum c[i, f_i] <= budget, one format per layer.

    >>> s = np.array([[3.0, 0.0], [1.0, 0.0]]); c = np.array([[1.0, 2.0], [1.0, 2.0]])
    >>> ilp(s, c, 0.0, 3.0, ("a", "b"))
    ['b', 'a']
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_layers, n_fmt = cost.shape
    one_each = np.zeros((n_layers, n_layers * n_fmt))
    for i in range(n_layers):
        one_each[i, i * n_fmt:(i + 1) * n_fmt] = 1
    constraints = [LinearConstraint(one_each, 1, 1),
                   LinearConstraint(cost.reshape(1, -1), -np.inf, budget - constant)]
    res = milp(sensitivity.reshape(-1), constraints=constraints, integrality=np.ones(n_layers * n_fmt),
               bounds=Bounds(0, 1))
    if res.x is None:
        raise UserError(f"no policy fits the budget ({res.message})")
    x = res.x.reshape(n_layers, n_fmt)
    return [formats[int(j)] for j in x.argmax(axis=1)]
