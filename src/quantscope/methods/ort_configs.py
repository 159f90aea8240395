"""ONNX Runtime configs: dynamic INT8 (quantize_dynamic) and INT4 weight-only (MatMulNBits).

They have no handler: the ORT converter (backends/ort/convert.py) quantizes the exported FP32 graph
in a child process with `quantizer_params()`, which is also part of the cached graph's key, so a
config's defaults must not change without a new version.

>>> OrtInt4(block_size=64).quantizer_params()
{'lm_head': True, 'block_size': 64, 'symmetric': True, 'accuracy_level': 4}
>>> OrtInt4(block_size=48)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
quantscope.errors.UserError: int4: block_size=48 must be a power of two >= 16 (MatMulNBits)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from quantscope.methods.configs import QuantConfig, check, register_method


@dataclass(frozen=True)
class OrtConfig(QuantConfig):
    backend = "ort"
    # lm_head: quantize the output projection too (llama.cpp's default; --leave-output-tensor keeps it).
    lm_head: bool = True

    def quantizer_params(self) -> dict[str, Any]:
        """What the converter reads, and the cached graph's recipe options."""
        return asdict(self)


@register_method("int8")
@dataclass(frozen=True)
class OrtInt8(OrtConfig):
    """onnxruntime.quantization.quantize_dynamic: int8 weights, activations quantized per call."""

    per_channel: bool = False
    reduce_range: bool = False  # 7-bit weights, for CPUs without VNNI (ORT's docs)


@register_method("int4")
@dataclass(frozen=True)
class OrtInt4(OrtConfig):
    """MatMulNBits weight-only int4 in blocks along the input width (MatMul4BitsQuantizer)."""

    block_size: int = 32  # divides 576 (SmolLM2's width); the converter refuses one that does not
    symmetric: bool = True
    accuracy_level: int = 4  # MatMulNBits: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 compute

    def __post_init__(self) -> None:
        size = self.block_size
        check(size >= 16 and size & (size - 1) == 0,
              f"{self.method}: block_size={size} must be a power of two >= 16 (MatMulNBits)")
        check(0 <= self.accuracy_level <= 4,
              f"{self.method}: accuracy_level={self.accuracy_level} is not one of 0, 1, 2, 3, 4 (MatMulNBits)")
