"""Task accuracy of one configuration against its reference: the drop, with its standard error.

Both rows were evaluated by lm-eval on the same documents (same task, version, limit: the task spec
is part of the run's key, and reference_spec keeps it), so the drop is a paired difference:
d_i = ref_i - other_i per document, drop = mean(d), SE = sd(d) / sqrt(n). It is far smaller than the
two accuracies' own errors combined when the two models mostly agree (the same reason llama-perplexity
pairs per-token log-probs). When the documents differ (another limit, another dataset hash) the two
means are compared unpaired: SE = sqrt(se_ref^2 + se_other^2).

>>> from quantscope.result import Measurement
>>> ref = Measurement("task:t:acc", "fraction", [1, 1, 0, 1], meta={"doc_ids": [0, 1, 2, 3]})
>>> other = Measurement("task:t:acc", "fraction", [1, 0, 0, 1], meta={"doc_ids": [0, 1, 2, 3]})
>>> d = acc_drop("t", "acc", ref, other)
>>> d.drop, round(d.se, 3), d.paired
(0.25, 0.25, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quantscope.quality.tasks.outcomes import accuracy, task_results
from quantscope.result import Measurement, Result


@dataclass(frozen=True)
class AccDrop:
    task: str
    metric: str
    reference: float  # accuracy of the reference (fraction)
    other: float
    drop: float  # reference - other: positive when the configuration lost accuracy
    se: float
    paired: bool
    n: int

    def text(self) -> str:
        """`quantscope_cloze acc drop +2.00 ± 1.10 points (paired, 200 documents)`"""
        how = "paired" if self.paired else "unpaired"
        return (f"{self.task} {self.metric} drop {self.drop * 100:+.2f} ± {self.se * 100:.2f} points "
                f"({how}, {self.n} documents)")


def _same_documents(a: Measurement, b: Measurement) -> bool:
    ids_a, ids_b = a.meta.get("doc_ids"), b.meta.get("doc_ids")
    same_data = a.meta.get("dataset_sha256") == b.meta.get("dataset_sha256")
    return ids_a is not None and ids_a == ids_b and same_data and len(a.samples) == len(b.samples)


def acc_drop(task: str, metric: str, ref: Measurement, other: Measurement) -> AccDrop:
    """Reference minus `other`, paired per document when both scored the same documents."""
    ra, rse, rn = accuracy(ref)
    oa, ose, on = accuracy(other)
    if _same_documents(ref, other) and rn > 1:
        d = [r - o for r, o in zip(ref.samples, other.samples, strict=True)]
        mean = sum(d) / rn
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (rn - 1))
        return AccDrop(task, metric, ra, oa, mean, sd / math.sqrt(rn), True, rn)
    return AccDrop(task, metric, ra, oa, ra - oa, math.hypot(rse, ose), False, min(rn, on))


def acc_drops(ref: Result, other: Result) -> list[AccDrop]:
    """Every (task, metric) both rows measured, in the reference's order."""
    mine = task_results(other)
    return [acc_drop(task, metric, m, mine[(task, metric)])
            for (task, metric), m in task_results(ref).items() if (task, metric) in mine]


def worst_drop(ref: Result, other: Result) -> AccDrop | None:
    """The largest drop over the tasks both rows measured; None when they share none."""
    drops = acc_drops(ref, other)
    return max(drops, key=lambda d: d.drop) if drops else None


def task_reference(rows: list, r: Result):
    """The row among `rows` (summaries or (id, Result) pairs) that is `r`'s task reference: torch FP32 of
    the same model with the same tasks (reference_spec), holding task results. None when absent."""
    from quantscope.spec import reference_spec

    want = reference_spec(r.spec)
    for row in rows:
        res = row.result if hasattr(row, "result") else row[1]
        if res.spec == want and res.status == "ok" and task_results(res):
            return row
    return None


def drop_lines(st, r: Result) -> list[str]:
    """What `quantscope run` prints after a row with task results: its drop against the stored task
    reference of this machine (the latest), or how to get one. [] for a row without task results."""
    from quantscope.spec import reference_spec

    if r.status != "ok" or not task_results(r):
        return []
    ref = reference_spec(r.spec)
    if ref == r.spec:
        return ["              (this run is the task reference: other configurations' drops are measured "
                "against it)"]
    found = st.latest_ok(ref.key_hash(), r.env.machine_id)
    if found is None or not task_results(found[1]):
        return [f"  vs reference: not measured yet: run `quantscope run` with --backend torch --dtype fp32 "
                f"and the same --tasks/--task-limit (key {ref.key_hash()})"]
    lines = [f"  vs reference (run {found[0]}, {ref.label}):"]
    for d in acc_drops(found[1], r):
        lines.append(f"              {d.task} {d.metric} {d.reference * 100:.2f} % -> {d.other * 100:.2f} %: "
                     f"drop {d.drop * 100:+.2f} ± {d.se * 100:.2f} points "
                     f"({'paired' if d.paired else 'unpaired'} SE, {d.n} documents)")
    return lines
