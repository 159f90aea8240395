"""Quantization configs: typed dataclasses validated in __post_init__, one handler per config type.

The pattern is torchao's (`torchao/core/config.py` AOBaseConfig and
`torchao/quantization/transform_module.py` register_quantize_module_handler): a light config
object says *what*, a handler registered for that config's type says *how*, and the handler
imports the heavy library inside its body. A (backend, method name) pair selects the config
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

from quantscope.errors import FormatError, UserError
from quantscope.methods.coerce import build, field_types
from quantscope.registry import Registry

C = TypeVar("C", bound="QuantConfig")


class MethodRegistry:
    """Config classes keyed by (backend, method name): "int8" is LLM.int8() under bnb and
    quantize_dynamic under ort. A name alone finds its class when one backend has it."""

    def __init__(self) -> None:
        self._by_backend: dict[str, Registry[type[QuantConfig]]] = {}
        self._plugins_loaded = False

    def _ready(self) -> None:
        # Plug-in modules ($QUANTSCOPE_PLUGINS) may register methods: import them before a lookup,
        # in every process (the worker too), as the backends' registry does.
        if not self._plugins_loaded:
            self._plugins_loaded = True
            from quantscope.plugins import load_plugins

            load_plugins()

    def add(self, backend: str, name: str, cls: type[QuantConfig]) -> None:
        self._by_backend.setdefault(backend, Registry(f"{backend or 'unowned'} method")).add(name, cls)

    def backends(self) -> list[str]:
        self._ready()
        return list(self._by_backend)

    def items(self) -> Iterator[tuple[str, str, type[QuantConfig]]]:
        self._ready()
        for backend, reg in self._by_backend.items():
            for name in reg:
                yield backend, name, reg.get(name)

    def names(self, backend: str | None = None) -> list[str]:
        """Method names (each once), of one backend or of all."""
        self._ready()
        regs = [self._by_backend.get(backend, Registry(""))] if backend else list(self._by_backend.values())
        return list(dict.fromkeys(n for reg in regs for n in reg))

    def owners(self, name: str) -> list[str]:
        """The backends that have a method called `name`."""
        self._ready()
        return [b for b, reg in self._by_backend.items() if name in reg]

    def __contains__(self, name: object) -> bool:
        return any(name in reg for reg in self._by_backend.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str, backend: str | None = None) -> type[QuantConfig]:
        """The config class of `name` under `backend`; without a backend the name must be unique."""
        owners = self.owners(name)
        if backend is not None and backend in owners:
            return self._by_backend[backend].get(name)
        if backend is None and len(owners) == 1:
            return self._by_backend[owners[0]].get(name)
        raise UserError(self.unknown_message(name, backend))

    def unknown_message(self, name: str, backend: str | None = None) -> str:
        owners = self.owners(name)
        if backend is None and owners:
            return (f"method {name!r} exists under several backends ({', '.join(owners)}); "
                    "give the backend (--backend)")
        if owners:
            return f"{name!r} is a {owners[0]} method; run it with --backend {owners[0]}"
        near = difflib.get_close_matches(name, self.names(backend) or self.names(), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        where = f"{backend} " if backend else ""
        listed = ", ".join(sorted(self.names(backend))) or "none (it runs plain dtypes only)"
        return f"unknown {where}quantization method {name!r}.{hint} Available: {listed}"


# (backend, method name) -> config class. Entries are the classes themselves: configs import nothing heavy.
METHODS = MethodRegistry()

# Config type -> handler. What a handler receives depends on the backend that owns the config
# (its `backend` class attribute): torchao handlers quantize a loaded model in place,
# bitsandbytes handlers return the from_pretrained arguments that quantize while loading,
# ORT and llama.cpp configs are read by their converters (no handler). A calibrated config's
# handler has prepare/convert hooks (methods/calibrated.py).
_HANDLERS: dict[type, Any] = {}


def register_method(name: str) -> Callable[[type[C]], type[C]]:
    """Class decorator: the config class that `QuantSpec.method == name` selects on `cls.backend`."""

    def deco(cls: type[C]) -> type[C]:
        METHODS.add(cls.backend, name, cls)
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


@dataclass(frozen=True)
class QuantConfig:
    """Base of every quantization config. Subclasses declare typed fields and validate them."""

    method: ClassVar[str] = ""  # set by @register_method
    backend: ClassVar[str] = ""  # the backend that runs this config ("torchao", "bnb")
    version: ClassVar[int] = 1  # bump when a field's meaning changes; stored with to_dict()
    # Fields written into the run's QuantSpec even at their defaults (see pin_defaults): a method whose
    # default changed names them, so a run of the new default gets a key of its own.
    key_params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        return field_types(cls)

    @classmethod
    def from_params(cls: type[C], params: Mapping[str, Any] | tuple = ()) -> C:
        """Build from QuantSpec.params; an unknown key is a UserError naming the near key."""
        return build(cls, cls.method, params, "parameter")

    def to_dict(self) -> dict[str, Any]:
        """Type tag + backend + version + fields, JSON-ready (torchao's config_to_dict keeps a type tag too)."""
        return {"type": self.method, "backend": self.backend, "version": self.version, "params": asdict(self)}

    def check_model(self, in_features: Mapping[str, int]) -> None:
        """Checks that need the model's shapes (Linear name -> in_features). Default: none."""

    def describe(self) -> str:
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        changed = [f"{k}={v}" for k, v in asdict(self).items() if defaults.get(k, MISSING) != v]
        return f"{self.method}({', '.join(changed)})" if changed else self.method


def config_from_dict(d: Mapping[str, Any]) -> QuantConfig:
    """Inverse of QuantConfig.to_dict; only registered types load (an allowlist), versions must match.

    A dict without "backend" (written before methods were keyed by backend) loads when its type
    names one method only.
    """
    tag, backend = d.get("type"), d.get("backend")
    owners = METHODS.owners(tag) if isinstance(tag, str) else []
    if not owners or (backend is not None and backend not in owners):
        known = ", ".join(f"{b}/{n}" for b, n, _ in METHODS.items())
        raise FormatError(f"quantization config type {backend or '?'}/{tag!r} is not one of {known}; "
                          "the file was written by another tool or a newer quantscope")
    if backend is None and len(owners) > 1:
        raise FormatError(f"quantization config type {tag!r} names a method of {', '.join(owners)}; "
                          "add \"backend\" to the dict")
    cls = METHODS.get(tag, backend or owners[0])
    if d.get("version") != cls.version:
        raise FormatError(f"{tag} config version {d.get('version')!r} is not {cls.version}; "
                          "re-create the config with this quantscope")
    return cls.from_params(d.get("params", {}))


def config_from_spec(quant: Any, backend: str | None = None) -> QuantConfig:
    """The validated config of a QuantSpec's default method under `backend` (None: the one backend
    that has the name). UserError with a near-name hint on an unknown method."""
    return METHODS.get(quant.method, backend).from_params(quant.params)


def pin_defaults(backend: str, quant: Any) -> Any:
    """`quant` with its method's `key_params` written out at their values (given or default).

    The run's key holds only the params given, so without this a method whose default changed would
    find the stored rows of its old default under the same key and reuse them as its own. Specs of
    methods without key_params are returned unchanged (their key hashes stay).

    >>> from quantscope.spec import QuantSpec
    >>> pin_defaults("torchao", QuantSpec(method="int8-weight-only")) == QuantSpec(method="int8-weight-only")
    True
    """
    import dataclasses

    if quant.method == "none" or backend not in METHODS.owners(quant.method):
        return quant
    cls = METHODS.get(quant.method, backend)
    if not cls.key_params:
        return quant
    config = asdict(cls.from_params(quant.params))
    pinned = {**{k: config[k] for k in cls.key_params}, **dict(quant.params)}
    return dataclasses.replace(quant, params=tuple(pinned.items()))


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
