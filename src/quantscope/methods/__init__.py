"""Quantization methods: typed configs (one per method name) and the handler registered for each type.

Nothing heavy is imported here; handlers import torch, torchao or transformers when they run.

>>> from quantscope.spec import QuantSpec
>>> config_from_spec(QuantSpec(method="nf4", params=(("double_quant", True),))).to_dict()
{'type': 'nf4', 'version': 1, 'params': {'double_quant': True, 'compute_dtype': 'auto'}}
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


def method_names(backend: str | None = None) -> list[str]:
    """Registered method names, optionally only those a backend runs."""
    from quantscope.methods.configs import _load_builtin_methods

    _load_builtin_methods()
    return [n for n in METHODS.names() if backend is None or METHODS.get(n).backend == backend]


__all__ = [
    "METHODS",
    "QuantConfig",
    "config_from_dict",
    "config_from_spec",
    "handler_for",
    "method_names",
    "register_handler",
    "register_method",
]
