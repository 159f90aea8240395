"""Quantization policies: a default method plus ordered per-module overrides (QuantSpec.overrides).

The parent checks names and parameters (`check_quant`) before any work; the worker, which has the
model, resolves each module to a config (`resolve_policy`) and refuses a pattern that matches no
module: a silent no-op would measure a different model under the policy's label.

>>> from quantscope.spec import Override, QuantSpec
>>> q = QuantSpec(method="int8-weight-only", overrides=(Override("lm_head"),))
>>> plan = resolve_policy(q, "torchao", ["model.layers.0.mlp.up_proj", "lm_head"])
>>> {k: (c.method if c else None) for k, c in plan.items()}
{'model.layers.0.mlp.up_proj': 'int8-weight-only', 'lm_head': None}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from quantscope.errors import UserError
from quantscope.methods.configs import METHODS, QuantConfig


def _config(backend: str, method: str, params: Any, where: str) -> QuantConfig | None:
    if method == "none":
        if params:
            raise UserError(f"{where}: method none takes no parameters, got {', '.join(k for k, _ in params)}")
        return None
    owners = METHODS.owners(method)
    if backend not in owners:
        raise UserError(f"{where}: {METHODS.unknown_message(method, backend)}")
    return METHODS.get(method, backend).from_params(params)


def check_quant(backend: str, quant: Any) -> None:
    """Parent-side checks: every method name exists somewhere and its params are valid for it.

    A default method that belongs to another backend is left alone here (the backend's `supports`
    turns it into an unsupported row with the reason, as a sweep's cross product needs); a name no
    backend has is a typo, refused now with the near name. An override's method must be one of
    the run's backend.
    """
    if quant.method == "none":
        if quant.params:
            raise UserError(f"{backend}: --quant none takes no --qparam, got "
                            f"{', '.join(k for k, _ in quant.params)}")
    elif backend in METHODS.owners(quant.method):
        METHODS.get(quant.method, backend).from_params(quant.params)
    elif quant.method not in METHODS and backend in METHODS.backends():
        if quant.method.lower() in METHODS.names(backend):
            raise UserError(f"{backend}: method names are lower-case: use --quant {quant.method.lower()}")
        raise UserError(METHODS.unknown_message(quant.method, backend))
    for rule in quant.overrides:
        if backend in METHODS.backends():
            _config(backend, rule.method, rule.params, f"override {rule.pattern}")


def overrides_reason(spec: Any, why: str) -> str | None:
    """The unsupported reason of a backend that cannot apply per-module overrides, or None."""
    if not spec.quant.overrides:
        return None
    return (f"the {spec.backend} backend cannot apply per-module overrides ({why}); "
            "run the policy with --backend torchao")


def resolve_policy(quant: Any, backend: str, names: Iterable[str]) -> dict[str, QuantConfig | None]:
    """Each module name -> its config under the policy (None: left unquantized), first match wins.

    A pattern that matches none of `names` is a UserError that shows what the names look like.
    """
    names = list(names)
    default = None if quant.method == "none" else _config(backend, quant.method, quant.params, "policy")
    configs = {rule: _config(backend, rule.method, rule.params, f"override {rule.pattern}")
               for rule in quant.overrides}
    used: set[Any] = set()
    plan: dict[str, QuantConfig | None] = {}
    for name in names:
        _, _, rule = quant.method_for(name)
        if rule is not None:
            used.add(rule)
        plan[name] = default if rule is None else configs[rule]
    for rule in quant.overrides:
        if rule not in used and any(rule.matches(n) for n in names):
            raise UserError(f"override {rule.pattern!r} takes effect nowhere: an earlier override matches "
                            "every module it matches; reorder or drop it")
        if rule not in used:
            sample = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            hint = "" if rule.pattern.startswith(("re:", "*")) else f"; for a substring use '*{rule.pattern}*'"
            raise UserError(f"override {rule.pattern!r} matches no quantizable module of this model "
                            f"({len(names)} Linear layers, e.g. {sample}){hint}")
    return plan
