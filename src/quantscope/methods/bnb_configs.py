"""bitsandbytes configs and their handlers. Handlers import transformers inside their bodies.

bitsandbytes quantizes while transformers loads the weights (its `BitsAndBytesConfig` passed to
`from_pretrained`), which is how its users run it and keeps the full-precision copy out of memory.
So a handler here has the signature `handler(config, spec) -> from_pretrained kwargs`.
transformers leaves the output embedding (lm_head) unquantized (its `get_keys_to_not_convert`).

>>> NF4(double_quant=True).describe()
'nf4(double_quant=True)'
>>> LLMInt8(threshold=-1.0)
Traceback (most recent call last):
...
quantscope.errors.UserError: int8: threshold=-1.0 must be >= 0 (0 disables the fp16 outlier path)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from quantscope.methods.configs import QuantConfig, check, register_handler, register_method

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class BnbConfig(QuantConfig):
    backend = "bnb"


@register_method("int8")
@dataclass(frozen=True)
class LLMInt8(BnbConfig):
    """LLM.int8() (Dettmers et al. 2022): int8 row-wise weights; activation columns whose magnitude
    exceeds `threshold` take a 16-bit path (mixed-precision decomposition)."""

    threshold: float = 6.0  # transformers' llm_int8_threshold default; the paper's alpha = 6

    def __post_init__(self) -> None:
        check(self.threshold >= 0, f"{self.method}: threshold={self.threshold} must be >= 0 "
              "(0 disables the fp16 outlier path)")


@dataclass(frozen=True)
class FourBit(BnbConfig):
    """4-bit blockwise weights (block 64), dequantized to `compute_dtype` for the matmul."""

    quant_type = ""  # "nf4" | "fp4", fixed by the method name
    double_quant: bool = False  # quantize the block absmax values too (QLoRA's double quantization)
    compute_dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: the run's dtype

    def resolved_compute_dtype(self, run_dtype: str) -> str:
        return run_dtype if self.compute_dtype == "auto" else self.compute_dtype


@register_method("nf4")
@dataclass(frozen=True)
class NF4(FourBit):
    """NormalFloat4 (QLoRA, Dettmers et al. 2023): 16 levels at normal-distribution quantiles."""

    quant_type = "nf4"


@register_method("fp4")
@dataclass(frozen=True)
class FP4(FourBit):
    """bitsandbytes' 4-bit float (e2m1-like) levels."""

    quant_type = "fp4"


def device_map(spec: Any) -> dict[str, Any]:
    """Everything on the run's device; bitsandbytes quantizes as each weight lands there."""
    return {"": 0 if spec.device == "cuda" else "cpu"}


@register_handler(LLMInt8)
def _llm_int8(config: LLMInt8, spec: Any) -> dict[str, Any]:
    from transformers import BitsAndBytesConfig

    qc = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=config.threshold)
    return {"quantization_config": qc, "device_map": device_map(spec)}


def _four_bit(config: FourBit, spec: Any) -> dict[str, Any]:
    import torch
    from transformers import BitsAndBytesConfig

    compute = getattr(torch, TORCH_DTYPES[config.resolved_compute_dtype(spec.quant.dtype)])
    qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=config.quant_type,
                            bnb_4bit_use_double_quant=config.double_quant, bnb_4bit_compute_dtype=compute)
    return {"quantization_config": qc, "device_map": device_map(spec)}


register_handler(NF4)(_four_bit)
register_handler(FP4)(_four_bit)
