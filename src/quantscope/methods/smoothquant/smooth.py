"""SmoothQuant's arithmetic: observe max|X_j|, choose s, fold it, simulate W8A8 for the α search.

Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language
Models", ICML 2023, eq. 4: s_j = max(|X_j|)^α / max(|W_j|)^(1-α), where j is an input channel of
the Linears that read X and max|W_j| is taken over all of them (the reference code concatenates
their weights: mit-han-lab/smoothquant smooth.py `smooth_ln_fcs`). Y = (X diag(s)^-1)(diag(s) W^T)
is the same function; diag(s)^-1 is folded into the norm that produced X, diag(s) into the Linears'
input columns, so nothing runs per token at inference.

α = "auto" picks α per group from 0, 0.1, ..., 1 by the squared error of the group's Linear outputs
with simulated W8A8 against FP32 on sampled calibration tokens (Intel neural-compressor's auto-α
does the same per block with a grid).

>>> import torch
>>> s = scales(torch.tensor([4.0, 1.0]), torch.tensor([1.0, 4.0]), 0.5)
>>> [round(v, 3) for v in s.tolist()]
[2.0, 0.5]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from quantscope.methods.smoothquant.mappings import Group

ALPHA_GRID = tuple(round(0.1 * i, 1) for i in range(11))
QMAX = 127.0  # a static activation scale is max|X| / 127 (what the handler gives torchao)
# torchao's symmetric int8 scale (quant_primitives.choose_qparams_affine): max|x| / ((127 - -128) / 2);
# the fake-quant uses the same divisor, torch.round and the [-128, 127] clamp, so it tracks the kernels.
HALF_RANGE = 127.5
EPS = 1e-5  # the reference code's clamp on max|W| and on s


def in_dim(module: Any) -> int:
    """The weight dimension that indexes input channels: 1 for nn.Linear [out, in], 0 for GPT-2's
    Conv1D [in, out]."""
    import torch

    return 1 if isinstance(module, torch.nn.Linear) else 0


def weight_absmax(linears: Iterable[Any]) -> Any:
    """max|W_j| per input channel j over every Linear of a group (float32)."""
    import torch

    per = [m.weight.detach().abs().float().amax(dim=1 - in_dim(m)) for m in linears]
    return torch.stack(per).amax(dim=0)


def scales(act_absmax: Any, w_absmax: Any, alpha: float) -> Any:
    """Eq. 4 of the paper, clamped as the reference code does (no zero or infinite scale)."""
    return (act_absmax.clamp(min=EPS).pow(alpha) / w_absmax.clamp(min=EPS).pow(1 - alpha)).clamp(min=EPS)


def fold(group: Group, s: Any) -> None:
    """Divide the norm's output by s (weight, and bias if any) and multiply the Linears' input columns
    by s, in place. Gemma's norm computes x * (offset + w): (offset + w) / s - offset keeps that form."""
    import torch

    with torch.no_grad():
        w = group.norm.weight
        w.copy_(((w.float() + group.norm_offset) / s - group.norm_offset).to(w.dtype))
        if getattr(group.norm, "bias", None) is not None:
            b = group.norm.bias
            b.copy_((b.float() / s).to(b.dtype))
        for m in group.linears:
            shape = (1, -1) if in_dim(m) == 1 else (-1, 1)
            m.weight.copy_((m.weight.float() * s.view(shape)).to(m.weight.dtype))


# --- simulated W8A8 (the α search, and quality where no int8 kernel runs) ---------------------------
def fake_weight(w: Any) -> Any:
    """Symmetric int8 per output row (w: [out, in]), dequantized."""
    scale = (w.abs().amax(dim=1, keepdim=True) / HALF_RANGE).clamp(min=1e-12)
    return (w / scale).round().clamp(-QMAX - 1, QMAX) * scale


def fake_act(x: Any, static_absmax: float | None) -> Any:
    """Symmetric int8 per token (dynamic), or per tensor with a calibrated max (static), dequantized."""
    if static_absmax is None:
        scale = (x.abs().amax(dim=-1, keepdim=True) / HALF_RANGE).clamp(min=1e-12)
    else:
        scale = max(static_absmax, 1e-12) / QMAX
    return (x / scale).round().clamp(-QMAX - 1, QMAX) * scale


def weight_rows(m: Any) -> Any:
    """The weight as [out, in] float32, whatever the layer stores."""
    w = m.weight.detach().float()
    return w if in_dim(m) == 1 else w.t()


def group_error(x: Any, act_absmax: Any, linears: Iterable[Any], alpha: float | None, static: bool) -> float:
    """Sum of squared errors of the group's outputs, simulated W8A8 after smoothing with α vs FP32."""
    import torch

    ws = [weight_rows(m) for m in linears]
    s = torch.ones_like(act_absmax) if alpha is None else scales(act_absmax, torch.stack(
        [w.abs().amax(dim=0) for w in ws]).amax(dim=0), alpha)
    xs = x / s
    xq = fake_act(xs, float((act_absmax / s).max()) if static else None)
    return sum(float(((xq @ fake_weight(w * s).t()) - x @ w.t()).pow(2).sum()) for w in ws)


def choose_alpha(x: Any, act_absmax: Any, linears: Iterable[Any], static: bool,
                 grid: Iterable[float] = ALPHA_GRID) -> tuple[float, dict[float, float]]:
    """The α of `grid` with the least group_error (the smaller α on a tie), and every α's error."""
    linears = list(linears)
    errors = {a: group_error(x, act_absmax, linears, a, static) for a in grid}
    return min(errors, key=lambda a: (errors[a], a)), errors


# --- observation --------------------------------------------------------------------------------
class Observer:
    """Forward hooks that record, per observed input, max|X_j| per channel, the input's ndim and
    (when `keep_rows`) up to `keep_rows` evenly spaced token rows per batch for the α search."""

    def __init__(self, keep_rows: int = 0) -> None:
        self.absmax: dict[str, Any] = {}
        self.ndim: dict[str, int] = {}
        self.batches: dict[str, int] = {}
        self.rows: dict[str, list[Any]] = {}
        self.keep_rows = keep_rows
        self.handles: list[Any] = []

    def _record(self, name: str, x: Any, keep: bool) -> None:
        import torch

        flat = x.detach().reshape(-1, x.shape[-1]).float()
        amax = flat.abs().amax(dim=0)
        self.absmax[name] = amax if name not in self.absmax else torch.maximum(self.absmax[name], amax)
        self.ndim[name] = x.ndim
        self.batches[name] = self.batches.get(name, 0) + 1
        if keep and self.keep_rows:
            step = max(1, flat.shape[0] // self.keep_rows)
            self.rows.setdefault(name, []).append(flat[::step][: self.keep_rows].clone())

    def watch_output(self, name: str, module: Any, keep: bool) -> None:
        """Record the module's output (a norm: the input its Linears share)."""
        self.handles.append(module.register_forward_hook(lambda _m, _a, out: self._record(name, out, keep)))

    def watch_input(self, name: str, module: Any) -> None:
        self.handles.append(module.register_forward_pre_hook(lambda _m, args: self._record(name, args[0], False)))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def samples(self, name: str) -> Any:
        import torch

        return torch.cat(self.rows[name]) if self.rows.get(name) else None


class OutputCheck:
    """Keeps the first calibration batch and the model's logits on it, to check later that smoothing
    left the function unchanged (`relative_change`)."""

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] | None = None
        self.logits: Any = None
        self.handle: Any = None

    def attach(self, model: Any) -> None:
        def hook(_m: Any, args: tuple, kwargs: dict, out: Any) -> None:
            if self.kwargs is None:
                self.kwargs = {"input_ids": kwargs.get("input_ids", args[0] if args else None)}
                self.logits = _logits(out).detach().float().clone()

        self.handle = model.register_forward_hook(hook, with_kwargs=True)

    def detach(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None

    def relative_change(self, model: Any) -> float | None:
        """||logits now - logits then|| / ||logits then|| on the kept batch (None if none was kept)."""
        import torch

        if self.kwargs is None or self.kwargs["input_ids"] is None:
            return None
        with torch.no_grad():
            now = _logits(model(**self.kwargs)).float()
        return float((now - self.logits).norm() / self.logits.norm().clamp(min=1e-30))


def _logits(out: Any) -> Any:
    return getattr(out, "logits", out)


def smooth_groups(groups: list[Group], observer: Observer, alpha: float | str,
                  static: bool, selected: Callable[[str], bool]) -> dict[str, float]:
    """Fold eq. 4's scales into every group that holds a selected Linear; the α used per group.

    The observer's per-group max|X| is divided by s in place, so it then describes the smoothed input
    (static activation scales are read from it)."""
    chosen: dict[str, float] = {}
    for g in groups:
        if not any(selected(n) for n in g.linear_names) or g.norm_name not in observer.absmax:
            continue
        amax = observer.absmax[g.norm_name]
        a = float(alpha) if alpha != "auto" else choose_alpha(observer.samples(g.norm_name), amax,
                                                              g.linears, static)[0]
        s = scales(amax, weight_absmax(g.linears), a)
        fold(g, s)
        observer.absmax[g.norm_name] = amax / s
        chosen[g.norm_name] = a
    return chosen


def simulate_w8a8(linear: Any, static_absmax: float | None) -> None:
    """Make `linear` compute fake-quantized W8A8 in float, in place: its weight rounded to int8 per
    row and back, its input rounded by a pre-hook (per token, or per tensor with `static_absmax`)."""
    import torch

    with torch.no_grad():
        linear.weight.copy_(fake_weight(linear.weight.float()).to(linear.weight.dtype))
    linear.register_forward_pre_hook(lambda _m, args: (fake_act(args[0].float(), static_absmax)
                                                       .to(args[0].dtype), *args[1:]))
