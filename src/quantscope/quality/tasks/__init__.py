"""Downstream task accuracy through lm-evaluation-harness (issue 18), beside perplexity and KLD.

  cloze.py     quantscope_cloze: our offline LAMBADA-style task (stdlib docstrings -> JSONL + lm-eval YAML)
  harness.py   lm-eval around the model already loaded in the worker (HFLM + simple_evaluate)
  outcomes.py  lm-eval's output as Measurements with every document's outcome; accuracy ± SE read back

lm-eval is optional (`pip install 'quantscope[tasks]'`); nothing here imports it, torch or datasets
at import time.
"""

from quantscope.quality.tasks.cloze import TASK as CLOZE_TASK
from quantscope.quality.tasks.harness import check_installed, check_tasks, drive_reason
from quantscope.quality.tasks.outcomes import accuracy, describe_tasks, parse_name, task_results

__all__ = ["CLOZE_TASK", "accuracy", "check_installed", "check_tasks", "describe_tasks", "drive_reason", "parse_name",
           "task_results"]
