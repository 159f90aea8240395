"""Quantization methods: typed configs keyed by (backend, name), the handler registered for each type,
calibrated methods (prepare -> calibrate -> convert) and policies (a default plus per-module overrides).

Importing this package registers every built-in config; the config modules import nothing heavy,
handlers import torch, torchao or transformers when they run.

>>> from quantscope.spec import QuantSpec
>>> config_from_spec(QuantSpec(method="nf4", params=(("double_quant", True),))).to_dict()
{'type': 'nf4', 'backend': 'bnb', 'version': 1, 'params': {'double_quant': True, 'compute_dtype': 'auto'}}
>>> config_from_spec(QuantSpec(method="int8"), "ort").describe()
'int8'
"""

from quantscope.methods.calibrated import CalibratedConfig, is_calibrated
from quantscope.methods.configs import (
    METHODS,
    QuantConfig,
    config_from_dict,
    config_from_spec,
    handler_for,
    register_handler,
    register_method,
)
from quantscope.methods.policy import check_quant, overrides_reason, resolve_policy

# Built-in configs register on import, before anything can look one up; this order is the listing order.
# isort: off
from quantscope.methods import torchao_configs, smoothquant, bnb_configs, ort_configs, llamacpp_configs  # noqa: F401
from quantscope.methods import ortgenai_configs  # noqa: F401
# isort: on


def method_names(backend: str | None = None) -> list[str]:
    """Registered method names (each once), optionally only those a backend runs."""
    return METHODS.names(backend)


def methods_summary(per_backend: int = 10) -> str:
    """One line of every backend's methods, for help texts (long lists are cut with a count).

    >>> methods_summary(2).split("; ")[1]
    'bnb: int8, nf4, fp4'
    """
    parts = []
    for backend in METHODS.backends():
        names = METHODS.names(backend)
        shown = ", ".join(names[:per_backend + 1] if len(names) <= per_backend + 1 else names[:per_backend])
        more = f", ... ({len(names)} in all)" if len(names) > per_backend + 1 else ""
        parts.append(f"{backend}: {shown}{more}")
    return "; ".join(parts)


__all__ = [
    "METHODS",
    "CalibratedConfig",
    "QuantConfig",
    "check_quant",
    "config_from_dict",
    "config_from_spec",
    "handler_for",
    "is_calibrated",
    "method_names",
    "methods_summary",
    "overrides_reason",
    "register_handler",
    "register_method",
    "resolve_policy",
]
