"""llama.cpp backend options: `--opt KEY=VALUE`, part of the run's key (RunSpec.options).

  n_threads        compute threads (default: --threads, else the physical cores)
  n_batch, n_ubatch  logical and physical batch (default: llama.cpp's 2048 and 512, as llama-bench)
  flash_attn       auto (default) | on | off
  type_k, type_v   KV cache types: f16, q8_0, ... (a ggml type name)

>>> LlamaCppOptions.parse("llamacpp", {"n_batch": 512}).n_batch
512
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from quantscope.errors import UserError
from quantscope.methods.coerce import build

FLASH = {"auto": -1, "off": 0, "on": 1}  # LLAMA_FLASH_ATTN_TYPE_{AUTO,DISABLED,ENABLED}


@dataclass(frozen=True)
class LlamaCppOptions:
    n_threads: int | None = None
    n_batch: int | None = None
    n_ubatch: int | None = None
    flash_attn: Literal["auto", "on", "off"] = "auto"
    type_k: str | None = None
    type_v: str | None = None

    def __post_init__(self) -> None:
        for name in ("n_threads", "n_batch", "n_ubatch"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"llamacpp: {name} must be a positive integer, got {value}")

    @classmethod
    def parse(cls, backend: str, options: Any) -> LlamaCppOptions:
        return build(cls, backend, options, "option")
