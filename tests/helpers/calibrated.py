"""A test-only calibrated torchao method, registered as a plug-in ($QUANTSCOPE_PLUGINS=helpers.calibrated).

`test-absmax-int8` proves the prepare -> calibrate -> convert seam: prepare hooks every selected Linear
to record the largest |x| it sees and the shapes of its inputs; convert checks that each of them saw
exactly the calibration batches it asked for, removes the hooks and quantizes the same Linears with
torchao's int8 weight-only config. What the hooks saw goes into the run's facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantscope.methods import CalibratedConfig, register_handler, register_method
from quantscope.methods.torchao_configs import TorchaoConfig, apply_torchao

METHOD = "test-absmax-int8"


@register_method(METHOD)
@dataclass(frozen=True)
class AbsMaxInt8(TorchaoConfig, CalibratedConfig):
    """Record per-Linear max |x| over the calibration batches, then int8 weight-only."""


class AbsMaxHandler:
    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}
        self.hooks: list[Any] = []

    def prepare(self, config: AbsMaxInt8, model: Any, spec: Any, select: Any) -> None:
        import torch

        self.seen = {}
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and (select is None or select(module, name)):
                record = self.seen[name] = {"batches": 0, "tokens": [], "absmax": 0.0}

                def hook(_module: Any, args: tuple, record: dict = record) -> None:
                    x = args[0]
                    record["batches"] += 1
                    record["tokens"].append(int(x.shape[-2]) if x.ndim >= 2 else 1)
                    record["absmax"] = max(record["absmax"], float(x.detach().abs().max()))

                self.hooks.append(module.register_forward_pre_hook(hook))

    def convert(self, config: AbsMaxInt8, model: Any, spec: Any, select: Any) -> dict[str, Any]:
        from torchao.quantization import Int8WeightOnlyConfig

        for h in self.hooks:
            h.remove()
        self.hooks = []
        want = config.calibration.samples
        short = {n: r["batches"] for n, r in self.seen.items() if r["batches"] != want}
        assert self.seen and not short, f"calibration batches seen {short}, expected {want} each"
        facts = apply_torchao(model, config, Int8WeightOnlyConfig(), select)
        return {**facts, "calibration_seen": {n: {"batches": r["batches"], "tokens": sorted(set(r["tokens"])),
                                                  "absmax": r["absmax"]} for n, r in self.seen.items()}}


register_handler(AbsMaxInt8)(AbsMaxHandler())
