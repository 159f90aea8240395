"""Cost tables: what each (tensor shape, format) costs on a target, and a policy's cost as their sum.

HAQ's point is that the cost comes from the hardware, not from FLOPs or bytes. A `CostTable` holds,
per tensor shape and format, the seconds that tensor adds to one decode step, and `base_s`, the
step time no searched tensor accounts for (attention, norms, the output head, the runtime's own
overhead). A policy's decode step is then base_s + sum over tensors — an additive model whose error on
held-out mixed policies benchmarks/haq_search.py checks against measured decode time.

- measured (this machine, through the runtime that executes the policy): methods/haq/measure.py
  times whole GGUF files in which one shape group is switched from a base format to each format;
  the difference per tensor is that shape's cost. Provenance "measured", keyed by machine id.
- projected (catalog hardware): hardware/project.py's decode step of the uniform file and each
  format's fitted bandwidth share: a tensor costs bytes / (bandwidth x share). Provenance "projected".

>>> t = CostTable("llamacpp", "local:x", "measured", ("q4_0", "q8_0"), 0.01, {"8x32": {"q4_0": 1e-4, "q8_0": 0.0}})
>>> from quantscope.methods.haq.space import Layer
>>> t.policy_s([Layer("a", "a", 8, 32, 0, "attn_q")], ["q4_0"])
0.0101
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from quantscope.errors import UserError
from quantscope.methods.haq.space import Layer, bytes_per_weight, layer_bytes

RESOURCES = ("bytes", "latency")


def shape_key(layer: Layer) -> str:
    return f"{layer.out_features}x{layer.in_features}"


@dataclass(frozen=True)
class CostTable:
    backend: str
    hardware: str  # local:<machine id> or a catalog id
    provenance: str  # measured | projected
    formats: tuple[str, ...]
    base_s: float
    per_tensor_s: dict[str, dict[str, float]]  # shape key -> format -> seconds per decode step
    notes: tuple[str, ...] = ()
    samples: dict[str, Any] = field(default_factory=dict)  # raw timings behind the table

    def tensor_s(self, layer: Layer, fmt: str) -> float:
        try:
            return self.per_tensor_s[shape_key(layer)][fmt]
        except KeyError:
            raise UserError(f"the cost table for {self.hardware} has no entry for shape {shape_key(layer)} in "
                            f"{fmt}; rebuild it for this model and these formats") from None

    def policy_s(self, layers: list[Layer], policy: list[str]) -> float:
        return round(self.base_s + sum(self.tensor_s(lay, f) for lay, f in zip(layers, policy, strict=True)), 12)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["formats"] = list(self.formats)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CostTable:
        return cls(d["backend"], d["hardware"], d["provenance"], tuple(d["formats"]), float(d["base_s"]),
                   {k: dict(v) for k, v in d["per_tensor_s"].items()}, tuple(d.get("notes", ())),
                   dict(d.get("samples", {})))


def cost_matrix(backend: str, layers: list[Layer], formats: tuple[str, ...], resource: str,
                table: CostTable | None = None) -> tuple[np.ndarray, float]:
    """(cost [layers x formats], constant) of the resource: a policy costs constant + sum of its cells.

    bytes: each tensor's weight bytes in the format; latency: the table's seconds (constant base_s).
    """
    if resource == "bytes":
        return np.array([[layer_bytes(backend, lay, f) for f in formats] for lay in layers]), 0.0
    if resource == "latency":
        if table is None:
            raise UserError("a latency budget needs a cost table of the target")
        return np.array([[table.tensor_s(lay, f) for f in formats] for lay in layers]), table.base_s
    raise UserError(f"resource {resource!r} is not one of {', '.join(RESOURCES)}")


def policy_cost(cost: np.ndarray, constant: float, formats: tuple[str, ...], policy: list[str]) -> float:
    idx = [formats.index(f) for f in policy]
    return float(constant + cost[np.arange(len(idx)), idx].sum())


def budget_range(cost: np.ndarray, constant: float) -> tuple[float, float]:
    """The cheapest and the dearest policy's cost: a budget outside it is refused."""
    return float(constant + cost.min(axis=1).sum()), float(constant + cost.max(axis=1).sum())


def check_budget(budget: float, cost: np.ndarray, constant: float, unit: str, scale: float = 1.0) -> None:
    """A budget below the cheapest policy or above the dearest is a UserError naming the range."""
    lo, hi = budget_range(cost, constant)
    if budget < lo or budget > hi:
        side = "below the smallest policy" if budget < lo else "above the largest policy"
        raise UserError(f"budget {budget * scale:.6g} {unit} is {side}: this model's policies cost "
                        f"{lo * scale:.6g} to {hi * scale:.6g} {unit}")


def projected_table(shape: Any, layers: list[Layer], formats: tuple[str, ...], hw: Any, calibration: Any,
                    base_format: str = "q8_0") -> CostTable:
    """A llama.cpp cost table for catalog hardware from the hardware model (labelled projected).

    Each format's decode step is hardware/project.py's, whose fitted bandwidth share differs by format
    (achieved bandwidth depends on the kernel: FACTS.md, gpt-fast on an A100); a tensor costs its bytes
    over bandwidth x that share, and base_s is the base format's projected step minus its tensors.
    """
    from quantscope.hardware.project import project

    per: dict[str, dict[str, float]] = {}
    shares: dict[str, float] = {}
    base = None
    for f in formats:
        p = project(shape, hw, "llamacpp", f, "fp32", calibration=calibration)
        if not p.supported:
            raise UserError(f"{hw.id} cannot run llama.cpp {f}: {p.reason}")
        shares[f] = p.bandwidth_share
        if f == base_format:
            base = p
    if base is None:
        base = project(shape, hw, "llamacpp", base_format, "fp32", calibration=calibration)
        shares.setdefault(base_format, base.bandwidth_share)
    for lay in layers:
        per.setdefault(shape_key(lay), {f: lay.params * bytes_per_weight("llamacpp", f) / (hw.bandwidth_Bps * shares[f])
                                        for f in formats})
    base_tensors = sum(lay.params * bytes_per_weight("llamacpp", base_format) / (hw.bandwidth_Bps * shares[base_format])
                       for lay in layers)
    notes = (f"PROJECTED for {hw.id}: bytes / ({hw.bandwidth_Bps / 1e9:.0f} GB/s x each format's fitted share "
             f"{', '.join(f'{f} {s:.2f}' for f, s in shares.items())}); {base.calibration}",)
    return CostTable("llamacpp", hw.id, "projected", formats, max(base.token_latency_s - base_tensors, 0.0), per,
                     notes)
