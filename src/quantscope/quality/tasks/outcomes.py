"""lm-eval's output as Measurements (one per task and accuracy metric, every document's outcome kept),
and read back as (accuracy, standard error, n).

Name `task:<task>:<metric>`, unit "fraction", samples = the per-document 0/1 outcomes in document
order. lm-eval's own aggregate and standard error are kept in `meta` ("value", "stderr") next to what
identifies them: the task's version, documents evaluated of how many, few-shot count, lm-eval's
version, and for our own task the dataset's sha256. For a mean metric lm-eval's stderr is
sample SD / sqrt(n) (lm_eval.api.metrics.mean_stderr), which `accuracy` recomputes from the samples.

>>> m = Measurement("task:quantscope_cloze:acc", "fraction", [1, 0, 1, 1])
>>> parse_name(m.name), accuracy(m)
(('quantscope_cloze', 'acc'), (0.75, 0.25, 4))
"""

from __future__ import annotations

import math
from typing import Any

from quantscope.result import Measurement, Result

PREFIX = "task:"
METRICS = ("acc", "acc_norm")  # what the issue asks for; lm-eval's name for each, filter "none"


def measurement_name(task: str, metric: str) -> str:
    return f"{PREFIX}{task}:{metric}"


def parse_name(name: str) -> tuple[str, str] | None:
    """(task, metric) of a task measurement's name, None for any other measurement."""
    if not name.startswith(PREFIX):
        return None
    task, _, metric = name[len(PREFIX):].rpartition(":")
    return (task, metric) if task and metric else None


def task_measurements(out: dict[str, Any], limit: int | None, own: dict[str, Any],
                      lm_eval_version: str) -> list[Measurement]:
    """Measurements from simple_evaluate's output (`own`: our tasks' TaskFiles, for the data hash)."""
    found = []
    for task, figures in sorted(out["results"].items()):
        docs = sorted(out.get("samples", {}).get(task, ()), key=lambda s: s["doc_id"])
        for metric in METRICS:
            if f"{metric},none" not in figures or not docs:
                continue  # a group's aggregate row, or a task without this metric (LAMBADA has no acc_norm)
            files = own.get(task)
            meta = {
                "task": task, "metric": metric, "version": out.get("versions", {}).get(task),
                "n": len(docs), "n_total": out.get("n-samples", {}).get(task, {}).get("original"),
                "limit": limit, "num_fewshot": out.get("n-shot", {}).get(task),
                "value": figures[f"{metric},none"], "stderr": figures.get(f"{metric}_stderr,none"),
                "doc_ids": [s["doc_id"] for s in docs], "lm_eval": lm_eval_version, "batch_size": 1,
                "dataset_sha256": files.sha256 if files is not None else None,
            }
            found.append(Measurement(measurement_name(task, metric), "fraction",
                                     [float(s[metric]) for s in docs], True, meta))
    return found


def accuracy(m: Measurement) -> tuple[float, float, int]:
    """(mean, standard error, n) from the per-document samples: lm-eval's mean_stderr formula."""
    n = len(m.samples)
    mean = sum(m.samples) / n
    if n < 2:
        return mean, math.nan, n
    var = sum((x - mean) ** 2 for x in m.samples) / (n - 1)
    return mean, math.sqrt(var / n), n


def task_results(r: Result) -> dict[tuple[str, str], Measurement]:
    """{(task, metric): measurement} of a stored run, in stored order."""
    return {key: m for m in r.measurements if (key := parse_name(m.name)) is not None and m.samples}


def describe_tasks(r: Result) -> list[str]:
    """The task block of `quantscope run`: accuracy ± SE per task, what it was computed on, or why not."""
    found = task_results(r)
    note = r.info.get("tasks")
    if not found:
        return [f"  tasks       {note}"] if isinstance(note, str) else []
    lines = []
    for (task, metric), m in found.items():
        acc, se, n = accuracy(m)
        meta = m.meta
        data = f", data sha256 {meta['dataset_sha256'][:12]}" if meta.get("dataset_sha256") else ""
        lines.append(f"  task        {task} {metric} {acc * 100:.2f} ± {se * 100:.2f} % (SE, {n} of "
                     f"{meta.get('n_total')} documents, {meta.get('num_fewshot')}-shot, task version "
                     f"{meta.get('version')}, lm-eval {meta.get('lm_eval')}{data})")
    if isinstance(r.info.get("tasks_s"), float):
        lines.append(f"              pass {r.info['tasks_s']:.1f} s")
    return lines
