"""The two torchao-backend methods: `w8a8` (no smoothing, the naive baseline) and `smoothquant-w8a8`.

Both quantize weights to int8 symmetric per output channel and activations to int8, either per token
at run time (`activation=dynamic`, the default; the paper's O1 level, with finer per-channel weights)
or per tensor with a scale calibrated offline (`activation=static`; the paper's O3 level). The paper's
O2 (per-tensor dynamic) is not offered. Both run torchao's int8 kernels: dynamic through
Int8DynamicActivationInt8WeightConfig, static through Int8StaticActivationInt8WeightConfig with one
calibrated scale per Linear; on CPU both reach `torch._int_mm` (torchao/kernel/intmm.py).

`smoothquant-w8a8` folds the scales of eq. 4 (smooth.py) into the norms and Linears first, with
alpha=0.5 (default), any α in [0, 1], or alpha=auto (per group, from a grid; the choice is stored).

>>> SmoothQuantW8A8.from_params({"alpha": "0.85", "activation": "static"}).describe()
'smoothquant-w8a8(activation=static, alpha=0.85)'
>>> SmoothQuantW8A8.from_params({"alpha": "1.5"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
quantscope.errors.UserError: smoothquant-w8a8: alpha=1.5 is outside [0, 1]; ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from quantscope.errors import UserError
from quantscope.methods.calibrated import CalibratedConfig
from quantscope.methods.configs import register_handler, register_method
from quantscope.methods.torchao_configs import TorchaoConfig

FOLD_TOLERANCE = 1e-3  # relative change of the logits that smoothing may cause (float32 rounding is ~1e-6)


@register_method("w8a8")
@dataclass(frozen=True)
class W8A8(TorchaoConfig, CalibratedConfig):
    """Int8 weights per output channel and int8 activations per token (dynamic) or per tensor (static)."""

    activation: Literal["dynamic", "static"] = "dynamic"
    auto_rows: int = 32  # calibration token rows kept per batch and group for alpha=auto

    @property
    def alpha_value(self) -> float | str | None:
        return None  # no smoothing

    @property
    def needs_data(self) -> bool:
        """Static scales and smoothing scales come from calibration; naive dynamic W8A8 needs none."""
        return self.activation == "static" or self.alpha_value is not None


def _alpha(method: str, text: str) -> str:
    """"auto" or the float's shortest text: 0.50 and 0.5 are one config."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{method}: alpha={text!r} is neither a number in [0, 1] nor 'auto'") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UserError(f"{method}: alpha={text} is outside [0, 1]; use e.g. alpha=0.5 or alpha=auto")
    return repr(value)


@register_method("smoothquant-w8a8")
@dataclass(frozen=True)
class SmoothQuantW8A8(W8A8):
    """SmoothQuant (Xiao et al., ICML 2023): per-channel scales folded into norms, then W8A8."""

    alpha: str = "0.5"  # a number in [0, 1] or "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "alpha", _alpha(self.method, str(self.alpha)))

    @property
    def alpha_value(self) -> float | str | None:
        return self.alpha if self.alpha == "auto" else float(self.alpha)


class W8A8Handler:
    """prepare: hooks on each smoothing group's norm and on the other selected Linears;
    convert: fold (smoothquant only), check the logits did not move, quantize with torchao's int8."""

    def __init__(self) -> None:
        self.observer: Any = None
        self.check: Any = None
        self.groups: list[Any] = []

    def prepare(self, config: W8A8, model: Any, spec: Any, select: Any) -> None:
        from quantscope.methods.smoothquant.mappings import groups_for
        from quantscope.methods.smoothquant.smooth import Observer, OutputCheck

        keep = _selector(model, config, select)
        smoothing = config.alpha_value is not None
        self.groups = [g for g in groups_for(model) if any(keep(n) for n in g.linear_names)] if smoothing else []
        grouped = {n for g in self.groups for n in g.linear_names}
        self.observer = Observer(config.auto_rows if config.alpha_value == "auto" else 0)
        for g in self.groups:
            self.observer.watch_output(g.norm_name, g.norm, keep=True)
        if config.activation == "static":
            for name, m in model.named_modules():
                if keep(name) and name not in grouped:
                    self.observer.watch_input(name, m)
        self.check = OutputCheck()
        if self.groups:
            self.check.attach(model)

    def convert(self, config: W8A8, model: Any, spec: Any, select: Any) -> dict[str, Any]:
        facts, keep, absmax = self._smooth(config, model, select)
        if config.activation == "static":
            facts["static_act_absmax"] = _quantize_static(model, config, keep, absmax)
            facts.update(_count(model))
        else:
            facts.update(_quantize_dynamic(model, config, keep))
        return facts

    def convert_simulated(self, config: W8A8, model: Any, select: Any = None) -> dict[str, Any]:
        """convert's smoothing, then W8A8 simulated in float (fake-quant): for quality where this
        machine has no int8 kernel for the variant. Its speed means nothing and is never reported."""
        from quantscope.methods.smoothquant.smooth import simulate_w8a8

        facts, keep, absmax = self._smooth(config, model, select)
        static = config.activation == "static"
        modules = dict(model.named_modules())
        for name in [n for n in modules if keep(n)]:
            if static and name not in absmax:
                raise UserError(f"{config.method}: {name} saw no calibration input; static scales need one")
            simulate_w8a8(modules[name], absmax[name][0] if static else None)
        return {**facts, "kernel": "simulated (fake-quant): quality only, speed not measured"}

    def _smooth(self, config: W8A8, model: Any, select: Any) -> tuple[dict[str, Any], Any, dict]:
        """Remove the hooks, fold the scales (smoothquant only), check the logits did not move."""
        from quantscope.methods.smoothquant.smooth import smooth_groups

        obs, check_ = self.observer, self.check
        obs.remove()
        check_.detach()
        keep = _selector(model, config, select)
        facts: dict[str, Any] = {}
        if self.groups:
            chosen = smooth_groups(self.groups, obs, config.alpha_value, config.activation == "static", keep)
            change = check_.relative_change(model)
            if change is not None and change > FOLD_TOLERANCE:
                raise UserError(f"{config.method}: smoothing changed the FP logits by {change:.2g} (relative); "
                                "the norm -> Linear mapping does not fit this model")
            facts["smoothquant"] = {"alpha": config.alpha_value, "groups": len(chosen),
                                    "alpha_per_group": chosen, "fold_logits_rel_change": change}
        facts["activation"] = ("int8 per tensor, static (calibrated scale per Linear)"
                               if config.activation == "static" else "int8 per token, dynamic")
        facts["weight"] = "int8 per output channel, symmetric"
        absmax = self._input_absmax(obs)
        self.observer, self.check, self.groups = None, None, []
        return facts, keep, absmax

    def _input_absmax(self, obs: Any) -> dict[str, tuple[float, int]]:
        """Linear name -> (max|X| of its input after smoothing, input ndim)."""
        out = {n: (float(a.max()), obs.ndim[n]) for n, a in obs.absmax.items()}
        for g in self.groups:
            if g.norm_name in obs.absmax:
                out.update({n: out[g.norm_name] for n in g.linear_names})
        return out


def _selector(model: Any, config: W8A8, select: Any) -> Any:
    """name -> bool over the modules this config quantizes (select, else every Linear but lm_head)."""
    from quantscope.methods.torchao_configs import _filter

    keep = select or _filter(model, config)
    modules = dict(model.named_modules())
    return lambda name: name in modules and keep(modules[name], name)


def _count(model: Any) -> dict[str, Any]:
    """What apply_torchao reports: Linears whose weight became a torchao tensor, of all Linears."""
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    kinds = sorted({type(m.weight).__name__ for m in linears})
    done = sum(type(m.weight).__name__ not in ("Parameter", "Tensor") for m in linears)
    return {"quantized_linears": done, "linears": len(linears), "weight_tensor_types": kinds}


def _quantize_dynamic(model: Any, config: W8A8, keep: Any) -> dict[str, Any]:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    from quantscope.methods.torchao_configs import apply_torchao

    return apply_torchao(model, config, Int8DynamicActivationInt8WeightConfig(), lambda m, fqn: keep(fqn))


def _quantize_static(model: Any, config: W8A8, keep: Any, absmax: dict[str, tuple[float, int]]) -> dict[str, float]:
    """One Int8StaticActivationInt8WeightConfig per Linear: its scale is max|X| / 127 of its
    calibration input, shaped like that input (torchao checks scale.ndim == input.ndim)."""
    import torch
    from torchao.quantization import Int8StaticActivationInt8WeightConfig, quantize_
    from torchao.quantization.granularity import PerRow, PerTensor

    from quantscope.methods.smoothquant.smooth import QMAX

    done = {}
    for name, module in list(model.named_modules()):
        if not keep(name) or not isinstance(module, torch.nn.Linear):
            continue
        if name not in absmax:
            raise UserError(f"{config.method}: {name} saw no calibration input; static scales need one")
        amax, ndim = absmax[name]
        scale = torch.full((1,) * ndim, max(amax, 1e-12) / QMAX, dtype=torch.float32, device=module.weight.device)
        ao = Int8StaticActivationInt8WeightConfig(act_quant_scale=scale, granularity=[PerTensor(), PerRow()])
        quantize_(module, ao, filter_fn=lambda m, fqn, module=module: m is module)
        done[name] = amax
    return done


register_handler(W8A8)(W8A8Handler())
register_handler(SmoothQuantW8A8)(W8A8Handler())
