"""onnxruntime-genai configs: the model builder's weight-only precisions, int4 and int8 (MatMulNBits).

The builder (`onnxruntime_genai.models.builder`) writes the whole graph itself; `--precision int4`
and `--precision int8` quantize every MatMul's weights in blocks along the input width, and these
configs carry its `--extra_options` as typed fields. "none" is the builder's FP32 graph (no config).
No handler: the converter (backends/ortgenai/convert.py) passes `builder_options()` to the builder,
and they are part of the cached graph's key.

>>> OrtGenaiInt4().builder_options()
{'block_size': 32, 'accuracy_level': 4, 'algo_config': 'default', 'is_symmetric': True}
>>> OrtGenaiInt4(algo="k_quant", block_size=64).describe()
'int4(block_size=64, algo=k_quant)'
>>> OrtGenaiInt8(block_size=48)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
quantscope.errors.UserError: int8: block_size=48 is not one of 16, 32, 64, 128, 256 (the builder's block sizes)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from quantscope.methods.configs import QuantConfig, check, register_method

BLOCK_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class OrtGenaiConfig(QuantConfig):
    """Weight-only MatMulNBits quantization by the model builder (its --extra_options, typed)."""

    backend = "ortgenai"

    block_size: int = 32  # divides 576 (SmolLM2's width); the converter refuses one that does not
    accuracy_level: int = 4  # MatMulNBits compute: 1 fp32, 2 fp16, 3 bf16, 4 int8 (the CPU default)
    # The builder's base algorithms: "default" (its RTN, node names of MatMulNBitsQuantizer), "rtn",
    # "k_quant" (llama.cpp's K-quant search for the scales).
    algo: Literal["default", "rtn", "k_quant"] = "default"
    symmetric: bool = True

    def __post_init__(self) -> None:
        check(self.block_size in BLOCK_SIZES, f"{self.method}: block_size={self.block_size} is not one of "
              f"{', '.join(map(str, BLOCK_SIZES))} (the builder's block sizes)")
        check(1 <= self.accuracy_level <= 4,
              f"{self.method}: accuracy_level={self.accuracy_level} is not one of 1, 2, 3, 4 (MatMulNBits)")

    @property
    def precision(self) -> str:
        return self.method  # the builder's --precision: int4 | int8

    def builder_options(self) -> dict[str, Any]:
        """The builder's --extra_options (its own names), also the cached graph's recipe options."""
        return {"block_size": self.block_size, "accuracy_level": self.accuracy_level,
                "algo_config": self.algo, "is_symmetric": self.symmetric}


@register_method("int4")
@dataclass(frozen=True)
class OrtGenaiInt4(OrtGenaiConfig):
    """The builder's --precision int4: 4-bit weights in blocks, MatMulNBits."""


@register_method("int8")
@dataclass(frozen=True)
class OrtGenaiInt8(OrtGenaiConfig):
    """The builder's --precision int8: 8-bit weights in blocks, MatMulNBits (weight-only, not QDQ)."""
