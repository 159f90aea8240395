"""The one place a configuration is named.

A configuration's label is what varies within one sweep: `backend/quant` plus the backend's options,
e.g. `ort/int8/fp32 kv_cache=False`. A run's label adds the model and the device (the store keeps it
beside each row). The KLD reference is marked with one word, REFERENCE, wherever a cell shows it.

This module imports nothing from quantscope, so spec.py itself can name a run with it.

>>> config_label("torchao", "int4-weight-only/bf16[group_size=64]")
'torchao/int4-weight-only/bf16[group_size=64]'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REFERENCE = "reference"  # the KLD reference's mark in every table, the report and the evidence


def options_text(options: Iterable[tuple[str, Any]]) -> str:
    """Backend options as they follow a label, each with its leading space.

    >>> options_text((("kv_cache", False), ("threads", 2))), options_text(())
    (' kv_cache=False threads=2', '')
    """
    return "".join(f" {k}={v}" for k, v in options)


def config_label(backend: str, quant: str, options: Iterable[tuple[str, Any]] = ()) -> str:
    """`backend/quant options`; `quant` is the QuantSpec's own label (method/dtype[params]).

    >>> config_label("ort", "int8/fp32", (("kv_cache", False),))
    'ort/int8/fp32 kv_cache=False'
    """
    return f"{backend}/{quant}{options_text(options)}"


def spec_label(spec: Any) -> str:
    """The configuration label of a RunSpec (anything with backend, quant.label and options).

    >>> from quantscope.spec import QuantSpec, RunSpec
    >>> spec_label(RunSpec(backend="llamacpp", quant=QuantSpec(method="q4_0")))
    'llamacpp/q4_0/fp32'
    """
    return config_label(spec.backend, spec.quant.label, spec.options)


def run_label(spec: Any) -> str:
    """A run's label: the model, the configuration and the device (options last, as stored since v1).

    >>> from quantscope.spec import RunSpec
    >>> run_label(RunSpec(options=(("threads", 2),)))
    'SmolLM2-135M-Instruct torch/fp32 cpu threads=2'
    """
    return f"{spec.model.label} {spec.backend}/{spec.quant.label} {spec.device}{options_text(spec.options)}"
