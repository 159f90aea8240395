"""Typed records from loose key=value input: one coercion for method params and backend options.

`--qparam group_size=64`, `--opt kv_cache=false` and a TOML table all arrive as strings or JSON
scalars; a frozen dataclass declares the types. `build` refuses an unknown key naming the near one
(lm-eval's registry does the same for names) and coerces each value to its field's declared type.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Opts:
...     n_batch: int | None = None
...     flash_attn: Literal["auto", "on", "off"] = "auto"
>>> build(Opts, "llamacpp", {"n_batch": "512"}, "option")
Opts(n_batch=512, flash_attn='auto')
>>> build(Opts, "llamacpp", {"nbatch": 512}, "option")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
quantscope.errors.UserError: llamacpp: unknown option 'nbatch'. Did you mean 'n_batch'? Valid: n_batch, flash_attn
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, Literal, TypeVar

from quantscope.errors import UserError

T = TypeVar("T")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def coerce(owner: str, name: str, kind: Any, value: Any) -> Any:
    """A CLI/JSON value as the field's declared type (int, float, bool, str, Literal, optional)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is Literal:
        if value not in args:
            raise UserError(f"{owner}: {name}={value!r} is not one of {', '.join(map(str, args))}")
        return value
    if type(None) in args:  # X | None
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(owner, name, inner[0], value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise UserError(f"{owner}: {name}={value!r} is not a boolean (true or false)")
    if kind in (int, float):
        if isinstance(value, bool):
            raise UserError(f"{owner}: {name}={value!r} must be a number, not a boolean")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            article = "an int" if kind is int else "a float"
            raise UserError(f"{owner}: {name}={value!r} is not {article}") from None
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise UserError(f"{owner}: {name}={value!r} is not an integer")
        return number
    if kind is str:
        return str(value)
    raise TypeError(f"unsupported field type {kind!r} for {owner}.{name}")


def check_names(owner: str, given: Iterable[str], valid: Iterable[str], what: str) -> None:
    """An unknown key is a one-line UserError naming the near valid one and listing them all."""
    valid = list(valid)
    for key in given:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            if not valid:
                raise UserError(f"{owner}: takes no {what}s, got {key!r}")
            raise UserError(f"{owner}: unknown {what} {key!r}.{hint} Valid: {', '.join(valid)}")


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def build(cls: type[T], owner: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]], what: str) -> T:
    """`cls(**items)` with names checked and values coerced to the declared field types."""
    values = dict(items)
    types = field_types(cls)
    check_names(owner, values, types, what)
    return cls(**{k: coerce(owner, k, types[k], v) for k, v in values.items()})
