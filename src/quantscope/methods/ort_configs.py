"""ONNX Runtime configs: INT8 (quantize_dynamic or static QDQ) and INT4 weight-only (MatMulNBits).

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
from typing import Any, Literal

from quantscope.methods.configs import QuantConfig, check, register_method


@dataclass(frozen=True)
class OrtConfig(QuantConfig):
    backend = "ort"
    # lm_head: quantize the output projection too (llama.cpp's default; --leave-output-tensor keeps it).
    lm_head: bool = True

    def quantizer_params(self) -> dict[str, Any]:
        """What the converter reads, and the cached graph's recipe options."""
        return asdict(self)


def check_matmul_nbits(method: str, block_size: int, accuracy_level: int) -> None:
    """MatMulNBits' limits: blocks a power of two >= 16 along the input width, compute level 0-4."""
    check(block_size >= 16 and block_size & (block_size - 1) == 0,
          f"{method}: block_size={block_size} must be a power of two >= 16 (MatMulNBits)")
    check(0 <= accuracy_level <= 4,
          f"{method}: accuracy_level={accuracy_level} is not one of 0, 1, 2, 3, 4 (MatMulNBits)")


@register_method("int8")
@dataclass(frozen=True)
class OrtInt8(OrtConfig):
    """INT8 MatMuls with onnxruntime.quantization, by `scheme`:
      blockwise  MatMulNBits with 8-bit weights in blocks of `block_size` along the input width
                 (MatMulNBitsQuantizer bits=8; accuracy_level 4 quantizes activations per block too,
                 llama.cpp Q8_0's layout)
      dynamic    quantize_dynamic: MatMulInteger, activations quantized per call, one scale per tensor
      static     quantize_static, QDQ: activation ranges calibrated once on the calibration text
                 (methods/calibration.py: stdlib docstrings, never the evaluation text)
    per_channel None = the scheme's default: per output channel for static, per tensor for dynamic
    (quantize_dynamic's per-channel MatMulInteger graph gave garbage on the bundled model with
    onnxruntime 1.32: KLD 15 nat, same-top-1 0 %).

    History: 1 (2026-11-24) quantize_dynamic with per-tensor weight scales (KLD 0.54 nat, same-top-1
               62 % on the bundled model, 1,024 tokens).
             2 (2026-11-29) `scheme`, blockwise by default. The run's key pins `scheme`
               (key_params), so a stored version-1 row (params ()) is never taken for a version-2
               run; the cached graph's key changes too (quantizer_params holds the scheme).
    """

    version = 2
    key_params = ("scheme",)

    scheme: Literal["blockwise", "dynamic", "static"] = "blockwise"
    per_channel: bool | None = None
    # 7-bit weights, for CPUs without VNNI (ORT's docs): their u8 x s8 kernel sums pairs of products in
    # int16, which saturates with full-range weights. On the AVX2 machines (no VNNI), static: KLD 5.76 nat
    # without it, 1.24 with it; dynamic: 0.50 without, 0.66 with (docs/measurements/issue15-must-shows-*).
    reduce_range: bool = False
    block_size: int = 32  # blockwise: a power of two dividing every MatMul's input width
    accuracy_level: int = 4  # blockwise: MatMulNBits compute, 4 = int8 activations per block
    # static: samples x tokens of the calibration text. ORT's calibrator keeps every sample's
    # activations in memory: 16 x 256 reached 11 GiB RSS on the 135M bundled model, hence 8 x 128.
    calib_samples: int = 8
    calib_seq_len: int = 128
    calib_method: Literal["minmax", "percentile"] = "percentile"

    def __post_init__(self) -> None:
        check_matmul_nbits(self.method, self.block_size, self.accuracy_level)
        check(self.calib_samples >= 1 and self.calib_seq_len >= 2,
              f"{self.method}: calib_samples >= 1 and calib_seq_len >= 2, got {self.calib_samples} x "
              f"{self.calib_seq_len}")

    def quantizer_params(self) -> dict[str, Any]:
        """Only the fields the scheme reads (the others would split the graph cache for nothing)."""
        used = {"blockwise": ("block_size", "accuracy_level"),
                "dynamic": ("per_channel", "reduce_range"),
                "static": ("per_channel", "reduce_range", "calib_samples", "calib_seq_len", "calib_method")}
        params = {"lm_head": self.lm_head, "scheme": self.scheme,
                  **{k: getattr(self, k) for k in used[self.scheme]}}
        if "per_channel" in params and params["per_channel"] is None:
            params["per_channel"] = self.scheme == "static"
        return params


@register_method("int4")
@dataclass(frozen=True)
class OrtInt4(OrtConfig):
    """MatMulNBits weight-only int4 in blocks along the input width (MatMul4BitsQuantizer)."""

    block_size: int = 32  # divides 576 (SmolLM2's width); the converter refuses one that does not
    symmetric: bool = True
    accuracy_level: int = 4  # MatMulNBits: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 compute

    def __post_init__(self) -> None:
        check_matmul_nbits(self.method, self.block_size, self.accuracy_level)
