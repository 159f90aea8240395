"""Comparable groups: which key fields must match for two rows to sit in one table."""

from __future__ import annotations

import pytest
from helpers.results import make_result, make_spec

from quantscope.analysis.selection import differences, groups
from quantscope.spec import QualitySpec

pytestmark = pytest.mark.unit


def test_without_a_quality_pass_its_recipe_fields_do_not_split_groups():
    # a sweep stores 2048 scored tokens, `run` 16384; with no quality pass neither was scored
    off_sweep = QualitySpec(enabled=False, max_tokens=2048)
    off_run = QualitySpec(enabled=False)
    a = make_result(make_spec("torch", "bf16", quality=off_sweep))
    b = make_result(make_spec("torchao", "bf16", "int8-weight-only", quality=off_run))
    assert differences(a, b) == []
    assert [len(g) for g in groups([(2, b), (1, a)])] == [2]


def test_with_a_quality_pass_its_recipe_fields_still_split_groups():
    a = make_result(make_spec("torch", "bf16", quality=QualitySpec(max_tokens=2048)))
    b = make_result(make_spec("torchao", "bf16", "int8-weight-only", quality=QualitySpec()))
    assert differences(a, b) == [("quality.max_tokens", 2048, 16384)]
    assert [len(g) for g in groups([(2, b), (1, a)])] == [1, 1]
