"""onnxruntime-genai backend options: `--opt KEY=VALUE`, part of the run's key (RunSpec.options).

  n_threads  intra-op threads of the session (default: --threads, else ORT's default: one per
             physical core), written into the model's genai_config.json session options

>>> OrtGenaiOptions.parse("ortgenai", {"n_threads": 2}).n_threads
2
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from quantscope.backends.exported import check_threads
from quantscope.methods.coerce import build


@dataclass(frozen=True)
class OrtGenaiOptions:
    n_threads: int | None = None

    def __post_init__(self) -> None:
        check_threads("ortgenai", self.n_threads)

    @classmethod
    def parse(cls, backend: str, options: Any) -> OrtGenaiOptions:
        return build(cls, backend, options, "option")

    @classmethod
    def of(cls, spec: Any) -> OrtGenaiOptions:
        """The options of `spec` with the run's --threads filled in."""
        opts = cls.parse("ortgenai", spec.options)
        return replace(opts, n_threads=opts.n_threads or spec.workload.threads)
