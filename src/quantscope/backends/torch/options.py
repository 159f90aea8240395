"""Options of the torch-family backends (torch, torchao, bnb): `--opt KEY=VALUE`, part of the run's key.

>>> TorchOptions.parse("torch", {"compile": "true"})
TorchOptions(compile=True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from quantscope.methods.coerce import build


@dataclass(frozen=True)
class TorchOptions:
    compile: bool = False  # torch.compile the model, compiled before the timed work (--compile)

    @classmethod
    def parse(cls, backend: str, options: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> TorchOptions:
        return build(cls, backend, options, "option")
