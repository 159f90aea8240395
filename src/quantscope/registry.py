"""Name-keyed registries with lazy "module:attr" entries.

Heavy plug-ins (a backend that imports torch) register as a string and are imported only when
looked up, so `import quantscope.cli` stays light (lm-eval api/registry.py does the same).

>>> backends = Registry[object]("backend")
>>> backends.add("torch", "quantscope.backends.torch.backend:TorchBackend")
>>> sorted(backends.names())
['torch']
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from quantscope.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """`before_lookup`, when given, runs before every lookup (e.g. importing plug-ins that add entries; it
    must be cheap when there is nothing new), so a plug-in registers in every process that looks a name
    up, the worker included."""

    def __init__(self, kind: str, before_lookup: Callable[[], object] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._before_lookup = before_lookup

    def _ready(self) -> None:
        if self._before_lookup is not None:
            self._before_lookup()

    def add(self, name: str, entry: T | str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def names(self) -> list[str]:
        self._ready()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ready()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._ready()
        return iter(self._entries)

    def get(self, name: str) -> T:
        self._ready()
        if name not in self._entries:
            raise UserError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry

    def unknown_message(self, name: str) -> str:
        near = difflib.get_close_matches(name, self._entries, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        return f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(self._entries))}"
