"""Downstream task accuracy through lm-evaluation-harness (issue 18), beside perplexity and KLD.

  cloze.py     quantscope_cloze: our offline LAMBADA-style task (stdlib docstrings -> JSONL + lm-eval YAML)
  harness.py   lm-eval around the model already loaded in the worker (HFLM + simple_evaluate)
  outcomes.py  lm-eval's output as Measurements with every document's outcome; accuracy ± SE read back

lm-eval is optional (`pip install 'quantscope[tasks]'`); nothing here imports it, torch or datasets
at import time. Its names load on first use (PEP 562): `recommend` and the report read stored outcomes
through outcomes.py and need neither the cloze task's text nor the method registry it pulls in.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"CLOZE_TASK": ("cloze", "TASK"), "check_installed": ("harness", "check_installed"),
          "check_tasks": ("harness", "check_tasks"), "drive_reason": ("harness", "drive_reason"),
          "accuracy": ("outcomes", "accuracy"), "describe_tasks": ("outcomes", "describe_tasks"),
          "parse_name": ("outcomes", "parse_name"), "task_results": ("outcomes", "task_results")}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _WHERE[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


__all__ = ["CLOZE_TASK", "accuracy", "check_installed", "check_tasks", "describe_tasks", "drive_reason", "parse_name",
           "task_results"]
