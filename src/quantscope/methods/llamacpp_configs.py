"""llama.cpp file types as configs: one registered config per LLAMA_FTYPE name (q8_0, q4_k_m, ...).

The list is llama.h's `enum llama_ftype` (LLAMA_FTYPE_MOSTLY_* and LLAMA_FTYPE_ALL_F32), lower-cased
as llama-quantize names them; a test checks it against the installed library's enum. The backend
still asks the library at run time, so a type a given build lacks becomes an unsupported row.
No handler: the converter (backends/llamacpp/convert.py) calls llama_model_quantize with the type.

>>> config_for("q4_k_m").to_dict()
{'type': 'q4_k_m', 'backend': 'llamacpp', 'version': 1, 'params': {'requantize': False}}
"""

from __future__ import annotations

from dataclasses import dataclass

from quantscope.methods.configs import METHODS, QuantConfig, register_method

FILE_TYPES = (
    "f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q5_0", "q5_1", "q4_k_m", "q4_k_s", "q4_0",
    "q4_1", "q3_k_l", "q3_k_m", "q3_k_s", "q2_k", "q2_k_s", "iq4_xs", "iq4_nl", "iq3_m", "iq3_s", "iq3_xs",
    "iq3_xxs", "iq2_m", "iq2_s", "iq2_xs", "iq2_xxs", "iq1_m", "iq1_s", "tq1_0", "tq2_0", "mxfp4_moe", "nvfp4",
    "q2_0", "q1_0",
)


@dataclass(frozen=True)
class LlamaCppType(QuantConfig):
    """A GGUF written with llama_model_quantize to this file type (the method name)."""

    backend = "llamacpp"
    # Quantize a GGUF source's own tensors (llama-quantize --allow-requantize) instead of an F32 GGUF
    # written from the reference weights.
    requantize: bool = False

    @property
    def file_type(self) -> str:
        return self.method


for _name in FILE_TYPES:
    register_method(_name)(type(f"LlamaCpp_{_name}", (LlamaCppType,), {"__module__": __name__,
                                                                    "__doc__": f"llama.cpp file type {_name}"}))


def config_for(name: str, **params: object) -> LlamaCppType:
    return METHODS.get(name, "llamacpp").from_params(params)  # type: ignore[return-value]
