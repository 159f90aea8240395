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

from quantscope.methods.configs import (
    METHODS,
    QuantConfig,
    config_from_dict,
    config_from_spec,
    handler_for,
    register_handler,
    register_method,
)

# Built-in configs register on import (before anything can look one up); order = listing order.
from quantscope.methods import torchao_configs, bnb_configs, ort_configs, llamacpp_configs  # noqa: E402,F401,I001
from quantscope.methods.calibrated import CalibratedConfig, is_calibrated  # noqa: E402
from quantscope.methods.policy import check_quant, overrides_reason, resolve_policy  # noqa: E402


def method_names(backend: str | None = None) -> list[str]:
    """Registered method names (each once), optionally only those a backend runs."""
    return METHODS.names(backend)


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
    "overrides_reason",
    "register_handler",
    "register_method",
    "resolve_policy",
]
