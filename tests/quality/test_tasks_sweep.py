"""Tasks in a sweep: a matrix file's [tasks] table, the same as --tasks; the reference row is added
when rows evaluate tasks, even without a quality pass (their drop is measured against it)."""

from __future__ import annotations

import pytest

from quantscope.errors import FormatError, UserError
from quantscope.spec import ModelSpec, QualitySpec, QuantSpec, RunSpec, TaskSpec, WorkloadSpec
from quantscope.sweep.matrix import reference_first, tasks_from_toml
from quantscope.sweep.specs import sweep_specs

pytestmark = pytest.mark.unit
MATRIX = '[[config]]\nbackend = "torch"\ndtype = "bf16"\n'


def base(tasks: TaskSpec = TaskSpec()) -> RunSpec:
    return RunSpec(model=ModelSpec("bundled"), workload=WorkloadSpec(), quality=QualitySpec(enabled=False),
                   tasks=tasks)


def test_a_matrix_tasks_table_gives_every_row_and_the_reference_its_tasks(tmp_path):
    pytest.importorskip("lm_eval")
    path = tmp_path / "m.toml"
    path.write_text(MATRIX + '[tasks]\nnames = ["quantscope_cloze"]\nlimit = 50\n')
    assert tasks_from_toml(path) == TaskSpec(("quantscope_cloze",), 50)
    specs = sweep_specs(base(), path, [], [], [])
    assert [(s.backend, s.quant.dtype) for s in specs] == [("torch", "fp32"), ("torch", "bf16")]
    assert all(s.tasks == TaskSpec(("quantscope_cloze",), 50) for s in specs)
    with pytest.raises(UserError, match="disagree"):
        sweep_specs(base(TaskSpec(("quantscope_cloze",), 10)), path, [], [], [])


def test_a_bad_tasks_table_is_one_line(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(MATRIX + '[tasks]\nnames = "quantscope_cloze"\nlmit = 5\n')
    with pytest.raises(FormatError, match=r"\[tasks\] takes names") as exc:
        tasks_from_toml(path)
    assert "lmit" in str(exc.value) and "\n" not in str(exc.value)


def test_without_tasks_or_quality_the_order_is_left_alone():
    bf16 = RunSpec(model=ModelSpec("bundled"), quality=QualitySpec(enabled=False), quant=QuantSpec("bf16"))
    assert reference_first([bf16]) == [bf16]
