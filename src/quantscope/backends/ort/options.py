"""ONNX Runtime backend options: `--opt KEY=VALUE`, part of the run's key (RunSpec.options).

  kv_cache   true (default): past key/values fed back each step | false: the whole prefix recomputed
  n_threads  intra-op threads (default: --threads, else ORT's default: one per physical core)
  opt_level  graph optimisation: all (default) | extended | basic | disable
  ep         execution provider: cpu | cuda (default: the run's device)

>>> from quantscope.spec import RunSpec
>>> OrtOptions.of(RunSpec(backend="ort", options=(("kv_cache", "false"),))).kv_cache
False
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from quantscope.backends.exported import check_threads
from quantscope.errors import UserError
from quantscope.methods.coerce import build

OPT_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
              "disable": "ORT_DISABLE_ALL"}
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@dataclass(frozen=True)
class OrtOptions:
    kv_cache: bool = True
    n_threads: int | None = None
    opt_level: Literal["all", "extended", "basic", "disable"] = "all"
    ep: Literal["cpu", "cuda"] | None = None

    def __post_init__(self) -> None:
        check_threads("ort", self.n_threads)

    @classmethod
    def parse(cls, backend: str, options: Any) -> OrtOptions:
        return build(cls, backend, options, "option")

    @classmethod
    def of(cls, spec: Any) -> OrtOptions:
        """The options of `spec` with the run's defaults filled in (ep = device, n_threads = --threads)."""
        opts = cls.parse("ort", spec.options)
        ep = opts.ep or spec.device
        if (ep == "cuda") != (spec.device == "cuda"):
            raise UserError(f"ort option ep={ep} does not match --device {spec.device}; drop one of them")
        return replace(opts, ep=ep, n_threads=opts.n_threads or spec.workload.threads)
