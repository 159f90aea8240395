"""torchao configs and their handlers. Handlers import torch/torchao inside their bodies.

A handler has the signature `handler(config, model, spec, select=None) -> facts`: it quantizes the
Linear layers of a loaded model that `select(module, fqn)` keeps (a policy's share for this config)
in place with `torchao.quantization.quantize_` and returns facts to record.
The output embedding (lm_head, tied to the token embedding in most small models) is left alone
unless `lm_head=true`, as transformers' own quantizers do (modules_to_not_convert).

>>> Int4WeightOnly(group_size=64).describe()
'int4-weight-only'
>>> Int4WeightOnly(group_size=48)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
quantscope.errors.UserError: int4-weight-only: group_size=48 is not one of 32, 64, 128, 256 ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from quantscope.methods.configs import (
    QuantConfig,
    check,
    check_group_size,
    register_handler,
    register_method,
)

GROUP_SIZES = (32, 64, 128, 256)  # torchao Int4WeightOnlyConfig docstring: "choices are [256, 128, 64, 32]"
Granularity = Literal["per-row", "per-tensor"]
# Our names -> torchao's Int4PackingFormat values (torchao/quantization/quantize_/workflows/int4/).
INT4_PACKING = {"plain": "plain", "tile-packed": "tile_packed_to_4d", "plain-int32": "plain_int32",
                "preshuffled": "preshuffled"}


@dataclass(frozen=True)
class TorchaoConfig(QuantConfig):
    backend = "torchao"
    lm_head: bool = False  # also quantize the output projection (unties it from the embedding)


def _grouped(cls_method: str, group_size: int, allowed: tuple[int, ...] = GROUP_SIZES) -> None:
    check(group_size in allowed, f"{cls_method}: group_size={group_size} is not one of "
          f"{', '.join(map(str, allowed))} (torchao's choices)")


@register_method("int8-weight-only")
@dataclass(frozen=True)
class Int8WeightOnly(TorchaoConfig):
    """Int8 weights, one scale per output row (or per tensor); activations stay in the run's dtype."""

    granularity: Granularity = "per-row"


@register_method("int8-dynamic")
@dataclass(frozen=True)
class Int8Dynamic(TorchaoConfig):
    """Int8 weights per row and int8 activations quantized per token at run time (W8A8 dynamic)."""

    granularity: Granularity = "per-row"
    act_mapping: Literal["symmetric", "asymmetric"] = "symmetric"


@register_method("int4-weight-only")
@dataclass(frozen=True)
class Int4WeightOnly(TorchaoConfig):
    """Int4 weights in groups along in_features, one scale and zero point per group.

    packing: "auto" takes the packing torchao provides for the run's device: "opaque" on CPU
    (PrototypeInt4WeightOnlyConfig, ATen's CPU int4 kernels), "tile-packed" on CUDA (tinygemm).
    The other formats are torchao's Int4PackingFormat values, kept so that their reasons show.
    Default group 64: it divides the widths of small models (576 in SmolLM2 is not a multiple of 128).
    """

    group_size: int = 64
    packing: Literal["auto", "opaque", "plain", "tile-packed", "plain-int32", "preshuffled"] = "auto"
    qparams: Literal["tinygemm", "hqq"] = "tinygemm"

    def __post_init__(self) -> None:
        _grouped(self.method, self.group_size)
        check(self.qparams == "tinygemm" or self.packing in ("auto", "tile-packed", "opaque"),
              f"{self.method}: qparams=hqq needs packing=tile-packed or opaque (torchao)")

    def check_model(self, in_features: dict[str, int]) -> None:
        check_group_size(self.method, self.group_size, in_features)

    def resolved_packing(self, device: str) -> str:
        if self.packing != "auto":
            return self.packing
        return "tile-packed" if device == "cuda" else "opaque"


@register_method("float8-dynamic")
@dataclass(frozen=True)
class Float8Dynamic(TorchaoConfig):
    """Float8 e4m3 weights and dynamically quantized float8 activations (torchao: CUDA sm >= 8.9)."""

    granularity: Granularity = "per-row"


@register_method("float8-weight-only")
@dataclass(frozen=True)
class Float8WeightOnly(TorchaoConfig):
    """Float8 e4m3 weights with a per-row scale, dequantized for the matmul."""


@dataclass(frozen=True)
class GroupedIntx(TorchaoConfig):
    """1-8 bit grouped weights (per row with group_size=none): what the two intx methods share."""

    bits: int = 4
    group_size: int | None = 64

    def __post_init__(self) -> None:
        check(1 <= self.bits <= 8, f"{self.method}: bits={self.bits} must be between 1 and 8")
        check(self.group_size is None or self.group_size >= 1, f"{self.method}: group_size must be >= 1")

    def check_model(self, in_features: dict[str, int]) -> None:
        if self.group_size:
            check_group_size(self.method, self.group_size, in_features)


@register_method("intx-weight-only")
@dataclass(frozen=True)
class IntxWeightOnly(GroupedIntx):
    """1-8 bit weights, grouped (or per row with group_size=none), stored unpacked in int8 bytes."""

    mapping: Literal["symmetric", "asymmetric"] = "symmetric"


@register_method("int8-dynamic-intx")
@dataclass(frozen=True)
class Int8DynamicIntx(GroupedIntx):
    """Int8 per-token dynamic activations with 1-8 bit grouped weights (ExecuTorch-style layout)."""


@register_method("int8-dynamic-int4")
@dataclass(frozen=True)
class Int8DynamicInt4(TorchaoConfig):
    """DA8W4: int8 dynamic activations, int4 weights prepacked for torchao's x86 CPU kernel."""

    group_size: int = 64

    def __post_init__(self) -> None:
        _grouped(self.method, self.group_size, (32, 64, 128))

    def check_model(self, in_features: dict[str, int]) -> None:
        check_group_size(self.method, self.group_size, in_features)


# --- handlers ----------------------------------------------------------------------------------------
def _granularity(name: str) -> Any:
    from torchao.quantization.granularity import PerRow, PerTensor

    return PerRow() if name == "per-row" else PerTensor()


def _group(group_size: int | None) -> Any:
    from torchao.quantization.granularity import PerAxis, PerGroup

    return PerGroup(group_size) if group_size else PerAxis(0)


def _mapping(name: str) -> Any:
    from torchao.quantization.quant_primitives import MappingType

    return MappingType.SYMMETRIC if name == "symmetric" else MappingType.ASYMMETRIC


def linear_in_features(model: Any, config: TorchaoConfig) -> dict[str, int]:
    """Linear layers the config will quantize: name -> in_features."""
    keep = _filter(model, config)
    return {name: m.in_features for name, m in model.named_modules() if keep(m, name)}


def _filter(model: Any, config: TorchaoConfig) -> Callable[[Any, str], bool]:
    import torch

    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None

    def keep(module: Any, fqn: str) -> bool:
        return isinstance(module, torch.nn.Linear) and (config.lm_head or module is not out)

    return keep


def apply_torchao(model: Any, config: TorchaoConfig, ao_config: Any,
                  select: Callable[[Any, str], bool] | None = None) -> dict[str, Any]:
    """quantize_ the selected Linears and count those whose weight really became a quantized tensor.

    `select(module, fqn)`: the modules a policy gives this config; None = every Linear but the output
    embedding (unless lm_head=true).
    """
    import torch
    from torchao.quantization import quantize_

    keep = select or _filter(model, config)
    config.check_model({name: m.in_features for name, m in model.named_modules() if keep(m, name)})
    quantize_(model, ao_config, filter_fn=keep)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    kinds = sorted({type(m.weight).__name__ for m in linears})  # a torchao weight keeps its subclass
    done = sum(type(m.weight).__name__ not in ("Parameter", "Tensor") for m in linears)
    return {"quantized_linears": done, "linears": len(linears), "weight_tensor_types": kinds}


@register_handler(Int8WeightOnly)
def _int8_weight_only(config: Int8WeightOnly, model: Any, spec: Any, select: Any = None) -> dict[str, Any]:
    from torchao.quantization import Int8WeightOnlyConfig

    return apply_torchao(model, config, Int8WeightOnlyConfig(granularity=_granularity(config.granularity)), select)


@register_handler(Int8Dynamic)
def _int8_dynamic(config: Int8Dynamic, model: Any, spec: Any, select: Any = None) -> dict[str, Any]:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    ao = Int8DynamicActivationInt8WeightConfig(granularity=_granularity(config.granularity),
                                               act_mapping_type=_mapping(config.act_mapping))
    return apply_torchao(model, config, ao, select)


@register_handler(Int4WeightOnly)
def _int4_weight_only(config: Int4WeightOnly, model: Any, spec: Any, select: Any = None) -> dict[str, Any]:
    from torchao.quantization import Int4WeightOnlyConfig
    from torchao.quantization.quantize_.workflows import Int4ChooseQParamsAlgorithm
    from torchao.quantization.quantize_.workflows.int4.int4_packing_format import Int4PackingFormat

    algo = Int4ChooseQParamsAlgorithm(config.qparams)
    packing = config.resolved_packing(spec.device)
    if packing == "opaque":
        # torchao 0.18 keeps the CPU int4 path (Int4OpaqueTensor) under prototype.
        from torchao.prototype.quantization.int4.inference_workflow import PrototypeInt4WeightOnlyConfig

        ao = PrototypeInt4WeightOnlyConfig(group_size=config.group_size, int4_choose_qparams_algorithm=algo)
    else:
        fmt = Int4PackingFormat(INT4_PACKING[packing])
        ao = Int4WeightOnlyConfig(group_size=config.group_size, int4_packing_format=fmt,
                                  int4_choose_qparams_algorithm=algo)
    return {**apply_torchao(model, config, ao, select), "int4_packing": packing}


@register_handler(Float8Dynamic)
def _float8_dynamic(config: Float8Dynamic, model: Any, spec: Any, select: Any = None) -> dict[str, Any]:
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig

    ao = Float8DynamicActivationFloat8WeightConfig(granularity=_granularity(config.granularity))
    return apply_torchao(model, config, ao, select)


@register_handler(Float8WeightOnly)
def _float8_weight_only(config: Float8WeightOnly, model: Any, spec: Any, select: Any = None) -> dict[str, Any]:
    from torchao.quantization import Float8WeightOnlyConfig

    return apply_torchao(model, config, Float8WeightOnlyConfig(), select)


@register_handler(IntxWeightOnly)
def _intx_weight_only(config: IntxWeightOnly, model: Any, spec: Any, select: Any = None) -> dict[str, Any]:
    import torch
    from torchao.quantization import IntxWeightOnlyConfig

    ao = IntxWeightOnlyConfig(weight_dtype=getattr(torch, f"int{config.bits}"),
                              granularity=_group(config.group_size), mapping_type=_mapping(config.mapping))
    return apply_torchao(model, config, ao, select)


@register_handler(Int8DynamicIntx)
def _int8_dynamic_intx(config: Int8DynamicIntx, model: Any, spec: Any, select: Any = None) -> dict[str, Any]:
    import torch
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig

    ao = Int8DynamicActivationIntxWeightConfig(weight_dtype=getattr(torch, f"int{config.bits}"),
                                               weight_granularity=_group(config.group_size))
    return apply_torchao(model, config, ao, select)


@register_handler(Int8DynamicInt4)
def _int8_dynamic_int4(config: Int8DynamicInt4, model: Any, spec: Any, select: Any = None) -> dict[str, Any]:
    from torchao.prototype.quantization.int4.inference_workflow import Int8DynamicActivationInt4WeightConfig

    return apply_torchao(model, config, Int8DynamicActivationInt4WeightConfig(group_size=config.group_size), select)
