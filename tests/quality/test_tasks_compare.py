"""Task accuracy against the reference: the paired drop and its SE, the table cells, `run`'s lines and
recommend --max-acc-drop. Hand-made rows (no model)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from helpers.results import make_result, make_spec, store_with

from quantscope.advise.recommend import Constraints, recommend
from quantscope.analysis.summary import summarize
from quantscope.analysis.tasks import acc_drop, drop_lines, worst_drop
from quantscope.present import columns as col
from quantscope.result import Measurement
from quantscope.spec import TaskSpec

pytestmark = pytest.mark.unit
TASKS = TaskSpec(("quantscope_cloze",), 8)
REF = [1, 1, 1, 0, 1, 0, 1, 1]  # 6 of 8


def acc(outcomes, doc_ids=None, sha="a" * 64) -> Measurement:
    ids = list(range(len(outcomes))) if doc_ids is None else doc_ids
    return Measurement("task:quantscope_cloze:acc", "fraction", outcomes, True,
                       {"doc_ids": ids, "dataset_sha256": sha, "n_total": 469, "version": 1, "num_fewshot": 0,
                        "lm_eval": "0.4.13"})


def row(outcomes, **kw):
    """A result with tasks in its spec and the task measurement added to make_result's."""
    r = make_result(**kw)
    spec = dataclasses.replace(r.spec, tasks=TASKS)
    return dataclasses.replace(r, spec=spec, measurements=r.measurements + (acc(outcomes),))


def test_the_drop_is_paired_per_document_and_its_se_is_that_of_the_differences():
    other = [1, 0, 1, 0, 1, 0, 1, 0]  # loses documents 1 and 7
    d = acc_drop("quantscope_cloze", "acc", acc(REF), acc(other))
    diffs = [r - o for r, o in zip(REF, other, strict=True)]
    mean = sum(diffs) / 8
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 7)
    assert d.paired and d.drop == pytest.approx(0.25) and d.se == pytest.approx(sd / math.sqrt(8))
    assert d.reference == 0.75 and d.other == 0.5


def test_other_documents_or_another_dataset_are_compared_unpaired():
    other = [1, 0, 1, 0, 1, 0, 1, 0]
    for m in (acc(other, doc_ids=list(range(8, 16))), acc(other, sha="b" * 64)):
        d = acc_drop("quantscope_cloze", "acc", acc(REF), m)
        se_ref = math.sqrt(0.75 * 0.25 / 7)  # sample SD / sqrt(n), 0/1 outcomes: sqrt(p(1-p) n/(n-1)) / sqrt(n)
        se_other = math.sqrt(0.5 * 0.5 / 7)
        assert not d.paired and d.se == pytest.approx(math.hypot(se_ref, se_other))


def test_columns_show_accuracy_and_the_drop_against_the_baseline():
    ref = summarize(1, row(REF, spec=make_spec(), seed=1))
    q = summarize(2, row([1, 0, 1, 0, 1, 0, 1, 1], spec=make_spec("torchao", "bf16", "int4-weight-only"), seed=2))
    assert col.TASK_ACC.cell(ref).startswith("75 ± ")
    drop = col.acc_drop_column(ref)
    assert drop.cell(ref) == col.NONE and drop.cell(q).startswith("12.5 ± ")
    plain = summarize(3, make_result(seed=3))
    assert col.shown([col.TASK_ACC, drop], [plain]) == []  # hidden when no row has tasks


def test_run_prints_the_drop_against_the_stored_reference(tmp_path):
    from quantscope.store import Store

    ref = row(REF, spec=make_spec(), seed=1)
    q = row([1, 0, 1, 0, 1, 0, 1, 1], spec=make_spec("torchao", "bf16", "int4-weight-only"), seed=2)
    with Store(tmp_path / "none.sqlite") as st:
        assert "not measured yet" in drop_lines(st, q)[0]
    store_with(tmp_path / "runs.sqlite", [ref])
    with Store(tmp_path / "runs.sqlite") as st:
        lines = drop_lines(st, q)
        assert "this run is the task reference" in drop_lines(st, ref)[0]
    assert "vs reference (run 1" in lines[0]
    assert "75.00 % -> 62.50 %: drop +12.50 ± " in lines[1] and "paired SE, 8 documents" in lines[1]


def test_recommend_max_acc_drop_excludes_the_row_that_lost_too_much_and_says_why():
    ref = row(REF, spec=make_spec(), decode=20, seed=1)
    good = row(REF, spec=make_spec(dtype="bf16"), decode=25, kld=0.002, top1=0.99, seed=2)
    bad = row([0, 0, 1, 0, 1, 0, 1, 0], spec=make_spec("torchao", "bf16", "int4-weight-only"), decode=40,
              kld=0.01, top1=0.95, seed=3)
    untested = make_result(make_spec("torchao", "bf16", "int8-weight-only"), decode=30, kld=0.003, top1=0.98,
                           seed=4)
    rows = [summarize(i + 1, r) for i, r in enumerate([ref, good, bad, untested])]
    rec = recommend(rows, "speed", Constraints(max_acc_drop=0.01))
    assert rec.winner is rows[1]
    why = {e.summary.run_id: e.detail for v in rec.excluded for e in v}
    assert why[3].startswith("task accuracy drop 37.50 ± ") and why[3].endswith("> 1.00 points")
    assert why[4].startswith("task accuracy drop not measured")
    assert worst_drop(ref, good).drop == 0.0
    assert "task accuracy drop <= 1 points" in rec.constraints.describe()


def test_the_report_shows_task_accuracy_and_the_drop_against_the_reference():
    pytest.importorskip("jinja2")
    from quantscope.report.html import render_report

    ref = row(REF, spec=make_spec(), decode=20, seed=1)
    q = row([1, 0, 1, 0, 1, 0, 1, 1], spec=make_spec("torchao", "bf16", "int4-weight-only"), decode=30, seed=2)
    page = render_report([(1, ref), (2, q)], constraints=Constraints(max_acc_drop=0.2))
    assert "task acc [%]" in page and "acc drop [points]" in page
    assert "12.5 ± " in page and "task accuracy drop &lt;= 20 points" in page
