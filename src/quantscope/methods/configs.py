"""Quantization configs: typed dataclasses validated in __post_init__, one handler per config type.

The pattern is torchao's (`torchao/core/config.py` AOBaseConfig and
`torchao/quantization/transform_module.py` register_quantize_module_handler): a light config
object says *what*, a handler registered for that config's type says *how*, and the handler
imports the heavy library inside its body. A method name (QuantSpec.method) selects the config
class from an allowlist; it never selects a mode by guessing from a string or file name.

>>> from quantscope.spec import QuantSpec
>>> cfg = config_from_spec(QuantSpec(method="int4-weight-only", params=(("group_size", 64),)))
>>> cfg.group_size
64
>>> config_from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import difflib
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar, Literal, TypeVar

from quantscope.errors import FormatError, UserError
from quantscope.registry import Registry

C = TypeVar("C", bound="QuantConfig")

# Method name -> config class. Entries are the classes themselves: configs import nothing heavy.
METHODS: Registry[type[QuantConfig]] = Registry("quantization method")

# Config type -> handler. What a handler receives depends on the backend that owns the config
# (its `backend` class attribute): torchao handlers quantize a loaded model in place,
# bitsandbytes handlers return the from_pretrained arguments that quantize while loading.
_HANDLERS: dict[type, Callable[..., Any]] = {}


def register_method(name: str) -> Callable[[type[C]], type[C]]:
    """Class decorator: the config class that `QuantSpec.method == name` selects."""

    def deco(cls: type[C]) -> type[C]:
        METHODS.add(name, cls)
        cls.method = name
        return cls

    return deco


def register_handler(config_type: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the handler for exactly `config_type` (torchao's register_quantize_module_handler)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if config_type in _HANDLERS:
            raise ValueError(f"a handler for {config_type.__name__} is already registered")
        _HANDLERS[config_type] = fn
        return fn

    return deco


def handler_for(config: QuantConfig) -> Callable[..., Any]:
    try:
        return _HANDLERS[type(config)]
    except KeyError:
        raise UserError(f"no handler is registered for {type(config).__name__}; "
                        "register one with @register_handler") from None


# --- parameter coercion -----------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(method: str, name: str, kind: Any, value: Any) -> Any:
    """A CLI/JSON value as the field's declared type (int, float, bool, str, Literal, optional)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is Literal:
        if value not in args:
            raise UserError(f"{method}: {name}={value!r} is not one of {', '.join(map(str, args))}")
        return value
    if type(None) in args:  # X | None
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(method, name, inner[0], value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise UserError(f"{method}: {name}={value!r} is not a boolean (true or false)")
    if kind in (int, float):
        if isinstance(value, bool):
            raise UserError(f"{method}: {name}={value!r} must be a number, not a boolean")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            article = "an int" if kind is int else "a float"
            raise UserError(f"{method}: {name}={value!r} is not {article}") from None
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise UserError(f"{method}: {name}={value!r} is not an integer")
        return number
    if kind is str:
        return str(value)
    raise TypeError(f"unsupported field type {kind!r} for {method}.{name}")


@dataclass(frozen=True)
class QuantConfig:
    """Base of every quantization config. Subclasses declare typed fields and validate them."""

    method: ClassVar[str] = ""  # set by @register_method
    backend: ClassVar[str] = ""  # the backend that runs this config ("torchao", "bnb")
    version: ClassVar[int] = 1  # bump when a field's meaning changes; stored with to_dict()

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in fields(cls)}

    @classmethod
    def from_params(cls: type[C], params: Mapping[str, Any] | tuple = ()) -> C:
        """Build from QuantSpec.params; an unknown key is a UserError naming the near key."""
        items = dict(params)
        types = cls.field_types()
        for key in items:
            if key not in types:
                near = difflib.get_close_matches(key, types, n=1)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                valid = ", ".join(types) or "none"
                raise UserError(f"{cls.method}: unknown parameter {key!r}.{hint} Valid: {valid}")
        return cls(**{k: _coerce(cls.method, k, types[k], v) for k, v in items.items()})

    def to_dict(self) -> dict[str, Any]:
        """Type tag + version + fields, JSON-ready (torchao's config_to_dict keeps a type tag too)."""
        return {"type": self.method, "version": self.version, "params": asdict(self)}

    def check_model(self, in_features: Mapping[str, int]) -> None:
        """Checks that need the model's shapes (Linear name -> in_features). Default: none."""

    def describe(self) -> str:
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        changed = [f"{k}={v}" for k, v in asdict(self).items() if defaults.get(k, MISSING) != v]
        return f"{self.method}({', '.join(changed)})" if changed else self.method


def config_from_dict(d: Mapping[str, Any]) -> QuantConfig:
    """Inverse of QuantConfig.to_dict; only registered types load (an allowlist), versions must match."""
    tag = d.get("type")
    if not isinstance(tag, str) or tag not in METHODS:
        raise FormatError(f"quantization config type {tag!r} is not one of {', '.join(sorted(METHODS))}; "
                          "the file was written by another tool or a newer quantscope")
    cls = METHODS.get(tag)
    if d.get("version") != cls.version:
        raise FormatError(f"{tag} config version {d.get('version')!r} is not {cls.version}; "
                          "re-create the config with this quantscope")
    return cls.from_params(d.get("params", {}))


def config_from_spec(quant: Any) -> QuantConfig:
    """The validated config of a QuantSpec (UserError with a near-name hint on an unknown method)."""
    _load_builtin_methods()
    return METHODS.get(quant.method).from_params(quant.params)


def _load_builtin_methods() -> None:
    # The built-in config modules register themselves on import; they import nothing heavy.
    from quantscope.methods import bnb_configs, torchao_configs  # noqa: F401


# --- shared validation helpers ---------------------------------------------------------------------
def check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def check_group_size(method: str, group_size: int, in_features: Mapping[str, int]) -> None:
    """Group quantization needs every quantized Linear's in_features to be a multiple of the group.

    torchao skips such a layer silently (it logs at INFO and leaves the weight unquantized), which
    would measure a partly quantized model under an int4 label, so refuse it here instead.
    """
    bad = {name: k for name, k in in_features.items() if k % group_size}
    if not bad:
        return
    name, k = next(iter(bad.items()))
    width = math.gcd(*in_features.values())
    fits = [g for g in (256, 128, 64, 32) if width % g == 0]
    hint = f"use group_size={fits[0]}, which divides all of them" if fits else "no power-of-two group fits"
    raise UserError(f"{method}: group_size={group_size} does not divide in_features={k} of {name} "
                    f"({len(bad)} layer(s) affected); {hint}")
