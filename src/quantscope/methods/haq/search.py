"""The search: a budget over a cost matrix, HAQ's DDPG and the ILP baseline, each ending in one policy.

A `Problem` is the layers, the formats in cost order, the resource's cost matrix [layers x formats]
plus a constant (fixed bytes, or the table's base step), and the budget in the same unit. Both
searches end in a policy that meets it: the ILP by its constraint (then `constrain` against float
round-off), DDPG by HAQ's final adjustment after every episode.

>>> import numpy as np
>>> p = Problem("llamacpp", ["x", "y"], ("a", "b"), "bytes", np.array([[1.0, 2.0], [1.0, 2.0]]), 0.0, 3.0)
>>> search_ilp(p, np.array([[3.0, 0.0], [1.0, 0.0]])).policy
['b', 'a']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantscope.errors import UserError
from quantscope.methods.haq.adjust import constrain, ilp
from quantscope.methods.haq.cost import CostTable, budget_range, check_budget, cost_matrix, policy_cost
from quantscope.methods.haq.ddpg import DDPG, DDPGConfig, state_embedding
from quantscope.methods.haq.space import Layer, action_to_format, bytes_per_weight, layer_bytes

BUDGET_KINDS = ("bytes", "bpw", "latency_ms", "latency_of")


@dataclass(frozen=True)
class Budget:
    """--budget-bytes N (weight bytes of the whole file), --budget-bpw X (bits per weight of the
    searched Linears), --budget-latency-ms T (decode step by the cost table), or --budget-latency-of F
    (the cost table's step of uniform format F on the same target: one budget across hardware)."""

    kind: str
    value: float | str

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise UserError(f"budget kind {self.kind!r} is not one of {', '.join(BUDGET_KINDS)}")

    @property
    def resource(self) -> str:
        return "bytes" if self.kind in ("bytes", "bpw") else "latency"


@dataclass
class Problem:
    backend: str
    layers: list[Any]
    formats: tuple[str, ...]
    resource: str
    cost: np.ndarray
    constant: float
    budget: float


@dataclass
class Found:
    method: str
    policy: list[str]
    cost: float
    seconds: float
    proxy_kld: float | None = None
    weight_bytes: float | None = None  # the policy's weight bytes, fixed tensors included
    history: list[float] = field(default_factory=list)  # DDPG: each episode's reward
    notes: list[str] = field(default_factory=list)


def fixed_bytes(backend: str, shape: Any, embed: str) -> float:
    """Weight bytes outside the searched Linears: embedding (and an untied output) in `embed`, norms F32."""
    emb = shape.embed_params * bytes_per_weight(backend, embed, shape.hidden)
    return emb * (1 if shape.tied else 2) + shape.norm_params * 4


def make_problem(backend: str, shape: Any, layers: list[Layer], formats: tuple[str, ...], budget: Budget,
                 table: CostTable | None, embed: str) -> Problem:
    """The problem for `budget`; a budget outside what these formats can reach is a one-line UserError."""
    cost, constant = cost_matrix(backend, layers, formats, budget.resource, table)
    if budget.kind == "bytes":
        constant = fixed_bytes(backend, shape, embed)
        check_budget(float(budget.value), cost, constant, "bytes")
        value = float(budget.value)
    elif budget.kind == "bpw":
        params = sum(lay.params for lay in layers)
        value = float(budget.value) * params / 8
        check_budget(value, cost, constant, "bits per weight", 8 / params)
    elif budget.kind == "latency_ms":
        value = float(budget.value) / 1e3
        check_budget(value, cost, constant, "ms per decode step", 1e3)
    else:
        fmt = str(budget.value).lower()
        if fmt not in formats:
            raise UserError(f"--budget-latency-of {fmt}: not one of the searched formats {', '.join(formats)}")
        value = policy_cost(cost, constant, formats, [fmt] * len(layers))
    return Problem(backend, layers, formats, budget.resource, cost, constant, value)


def uniform_cost(p: Problem, fmt: str) -> float:
    return policy_cost(p.cost, p.constant, p.formats, [fmt] * len(p.layers))


def search_ilp(p: Problem, sensitivity: np.ndarray) -> Found:
    """The ModelOpt/AutoScheme-style baseline: additive per-layer sensitivity, exact integer program."""
    start = time.perf_counter()
    policy = constrain(ilp(sensitivity, p.cost, p.constant, p.budget, p.formats), p.formats, p.cost, p.constant,
                       p.budget)
    return Found("ilp", policy, policy_cost(p.cost, p.constant, p.formats, policy), time.perf_counter() - start)


def search_ddpg(p: Problem, quality: Callable[[list[str]], float], episodes: int, cfg: DDPGConfig = DDPGConfig(),
                progress: Callable[[int, int, float], None] = lambda _e, _n, _r: None) -> Found:
    """HAQ's loop (rl_quantize.py `train`): an episode walks the layers, the agent picks an action per
    layer (seeing the previous action in its state), the policy is adjusted to the budget, and every
    transition is stored with the episode's reward, -KLD proxy; updates start after the warm-up."""
    start = time.perf_counter()
    emb = state_embedding(p.layers)
    agent = DDPG(emb.shape[1], len(p.layers), cfg)
    best: tuple[float, list[str]] | None = None
    history: list[float] = []
    n = len(p.layers)
    for ep in range(episodes):
        states, actions, prev = [], [], 1.0  # HAQ starts from the widest (its last_action = max_bit)
        for i in range(n):
            s = emb[i].copy()
            s[-1] = prev
            a = agent.act(s, ep)
            states.append(s)
            actions.append(a)
            prev = a
        policy = constrain([action_to_format(a, p.formats) for a in actions], p.formats, p.cost, p.constant,
                           p.budget)
        reward = -quality(policy)
        history.append(reward)
        for i in range(n):
            agent.observe(states[i], actions[i], reward, states[min(i + 1, n - 1)], i == n - 1)
            if ep >= cfg.warmup:
                agent.update()
        if best is None or reward > best[0]:
            best = (reward, policy)
        progress(ep + 1, episodes, reward)
    assert best is not None
    found = Found("ddpg", best[1], policy_cost(p.cost, p.constant, p.formats, best[1]), time.perf_counter() - start,
                  proxy_kld=-best[0], history=history)
    if episodes <= cfg.warmup:
        found.notes.append(f"{episodes} episodes <= {cfg.warmup} warm-up: random search only, the agent never learned")
    return found


def policy_bytes(backend: str, layers: list[Layer], policy: list[str], fixed: float) -> float:
    return fixed + sum(layer_bytes(backend, lay, f) for lay, f in zip(layers, policy, strict=True))


def describe_range(p: Problem) -> tuple[float, float]:
    return budget_range(p.cost, p.constant)
