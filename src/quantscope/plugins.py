"""Plug-ins: modules outside quantscope that register a runtime, a method or an executor.

A plug-in is a module that, on import, adds its entries to quantscope's registries (as the built-in
runtimes do in backends/__init__.py). quantscope imports the plug-ins it is told about before the
first lookup in a registry: the modules named in $QUANTSCOPE_PLUGINS (comma-separated), and those
installed under the `quantscope.plugins` entry-point group (as pytest finds `pytest11` plug-ins).
The worker inherits the environment, so a plug-in named there is found in the worker too.

>>> load_plugins()  # nothing named: nothing imported
[]
"""

from __future__ import annotations

import functools
import importlib
import os
from importlib.metadata import entry_points

from quantscope.errors import UserError

ENV_VAR = "QUANTSCOPE_PLUGINS"
GROUP = "quantscope.plugins"
_loaded: dict[str, bool] = {}


@functools.cache
def _installed() -> tuple[str, ...]:
    return tuple(ep.value for ep in entry_points(group=GROUP))  # scanned once: it reads every dist's metadata


def plugin_modules() -> list[str]:
    """Module names to import: $QUANTSCOPE_PLUGINS (read at each call), then installed entry points."""
    named = [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    return named + list(_installed())


def load_plugins() -> list[str]:
    """Import every plug-in module once; returns the names imported by this call."""
    new = []
    for name in plugin_modules():
        if name in _loaded:
            continue
        _loaded[name] = True
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise UserError(f"plug-in {name!r} (from ${ENV_VAR} or the {GROUP} entry points) does not import: "
                            f"{e}; fix or unset it") from e
        new.append(name)
    return new
